"""Status patch size: bytes sent per status write when a pass changes one step of many.

A Pipeline of N steps runs one step per pass (as steps that wait, approvals or jobs do),
so pass k writes one new record into a status that already holds k - 1. Each pass is a
``ConditionsKeeper`` commit through the real ``StatusWriter`` to the emulator over HTTP,
once with merge patches only (how every write went before: a merge patch replaces the
``steps`` and ``conditions`` lists whole) and once as the operator writes now (a JSON patch
of what changed when that is smaller). Printed: bytes per write, the total over the run,
and the CPU time of the passes (client and emulator: both run in this process).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from bench.bench_scale import counting_status_bytes
from kubesteps.engine import StepState, StepStatus
from kubesteps.keepers.status_keeper import ConditionsKeeper, StatusStore
from kubesteps.keepers.summary import Summary
from kubesteps.kube.client import Credentials, KubeClient
from kubesteps.kube.status_writer import ObjectRef, StatusWriter
from kubesteps.pipeline.crd import crd
from kubesteps.pipeline.model import API_VERSION
from kubesteps.testing import Emulator

SIZES = (20, 100)  # (the CRD allows at most 100 steps)
TARGET = 0.25  # a later write at most this fraction of the merge patch's bytes
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class MergeOnly:
    """The writer without JSON patches."""

    def __init__(self, writer: StatusWriter) -> None:
        self.writer = writer

    async def patch(self, status: Mapping[str, Any], resource_version: str | None) -> Any:
        return await self.writer.patch(status, resource_version)

    async def read(self) -> Any:
        return await self.writer.read()

    async def remove_annotations(self, expected: Mapping[str, str]) -> Any:
        return await self.writer.remove_annotations(expected)


def summary(done: int, steps: int) -> Summary:
    if done == steps - 1:
        return Summary(
            ready="True",
            reason="Succeeded",
            message="all steps are done",
            reconciling=False,
            stalled=False,
        )
    return Summary(
        ready="False",
        reason="Waiting",
        message=f"step 'step-{done + 1}' waits",
        reconciling=True,
        stalled=False,
        current_step=f"step-{done + 1}",
    )


async def one_run(
    client: KubeClient, name: str, steps: int, store: Callable[[StatusWriter], Any]
) -> float:
    """CPU seconds of ``steps`` passes, each finishing one more step."""
    await client.create(
        {
            "apiVersion": API_VERSION,
            "kind": "Pipeline",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "steps": [
                    {"name": f"step-{i}", "action": "delay", "with": {"duration": "1s"}}
                    for i in range(steps)
                ]
            },
        }
    )
    cpu = 0.0
    for done in range(steps):
        body = await client.get(API_VERSION, "Pipeline", name, "default")
        assert body is not None
        start = time.process_time()
        writer: StatusStore = store(StatusWriter(client, ObjectRef.of(body)))
        keeper = ConditionsKeeper(writer, body, clock=lambda: NOW, flush_running_after=None)
        await keeper.set_step_state(
            StepState(
                name=f"step-{done}",
                status=StepStatus.SUCCEEDED,
                reason="Succeeded",
                message="completed",
                attempts=1,
                started_at=NOW,
                finished_at=NOW,
            )
        )
        await keeper.commit(summary(done, steps))
        cpu += time.process_time() - start
    return cpu


async def measure() -> None:
    emulator = Emulator()
    emulator.register_crd(crd())
    with counting_status_bytes(emulator) as sizes:
        await measure_with(emulator, sizes)


async def measure_with(emulator: Emulator, sizes: list[int]) -> None:
    async with (
        emulator.serving() as url,
        KubeClient(Credentials(server=url, insecure=True)) as client,
    ):
        for steps in SIZES:
            sizes.clear()
            merge_cpu = await one_run(client, f"merge-{steps}", steps, MergeOnly)
            merged = list(sizes)
            sizes.clear()
            json_cpu = await one_run(client, f"json-{steps}", steps, lambda w: w)
            patched = list(sizes)
            later = sum(patched[1:]) / max(1, len(patched) - 1)
            later_merge = sum(merged[1:]) / max(1, len(merged) - 1)
            ratio = later / later_merge
            print(f"  {steps:3d} steps, one finished per pass ({steps} writes):")
            print(
                f"    merge patches only: first {merged[0]:7,d} B, later "
                f"{later_merge:8,.0f} B/write, total {sum(merged):10,d} B, "
                f"{merge_cpu * 1e3 / steps:6.2f} ms CPU/pass"
            )
            print(
                f"    as written now:     first {patched[0]:7,d} B, later "
                f"{later:8,.0f} B/write, total {sum(patched):10,d} B, "
                f"{json_cpu * 1e3 / steps:6.2f} ms CPU/pass"
            )
            print(
                f"    later writes, now/merge: {ratio:.3f} (target <= {TARGET}): "
                f"{'MET' if ratio <= TARGET else 'MISSED'}; total bytes "
                f"{sum(patched) / sum(merged):.3f}; CPU per pass {json_cpu / merge_cpu:.2f}"
            )


def main() -> None:
    asyncio.run(measure())
