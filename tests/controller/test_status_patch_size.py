"""Status writes as small as the change: after the first write, the keeper sends a JSON
patch (RFC 6902) of the entries that changed, guarded by the resourceVersion it read,
where a merge patch would resend every step record and condition. Against the emulator
over HTTP; tests/cluster/test_real_cluster.py checks the real API server agrees."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from bench.bench_status import MergeOnly  # the writer without JSON patches

from kubesteps.engine import StepState, StepStatus
from kubesteps.keepers.status_keeper import ConditionsKeeper
from kubesteps.keepers.summary import Summary
from kubesteps.kube.client import KubeClient
from kubesteps.kube.status_writer import ObjectRef, StatusWriter
from kubesteps.testing import Emulator

from .conftest import API, pipeline, python_step

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DONE = Summary(
    ready="True", reason="Succeeded", message="all steps are done", reconciling=False, stalled=False
)
RUNNING = Summary(
    ready="False",
    reason="Running",
    message="step 'step-40' is running",
    reconciling=True,
    stalled=False,
    current_step="step-40",
)


@pytest.fixture
def sent(k8s_emulator: Emulator) -> Iterator[list[tuple[str, str, Any, int]]]:
    """Every status patch the emulator received: (object, patch type, body, HTTP status)."""
    seen: list[tuple[str, str, Any, int]] = []
    api = k8s_emulator.api
    original = api.patch

    def patch(
        info: Any,
        namespace: str,
        name: str,
        subresource: str | None,
        patch_type: str,
        body: Any,
        **options: Any,
    ) -> Any:
        if subresource != "status":
            return original(info, namespace, name, subresource, patch_type, body, **options)
        try:
            result = original(info, namespace, name, subresource, patch_type, body, **options)
        except Exception as error:
            seen.append((name, patch_type, body, getattr(error, "code", 0)))
            raise
        seen.append((name, patch_type, body, 200))
        return result

    api.patch = patch  # type: ignore[method-assign]
    yield seen
    api.patch = original  # type: ignore[method-assign]


def keeper_of(
    api: KubeClient, body: dict[str, Any], store: Callable[[StatusWriter], Any] = lambda w: w
) -> ConditionsKeeper:
    """A pass's keeper for ``body``, writing through ``store`` (the writer itself)."""
    writer = StatusWriter(api, ObjectRef.of(body))
    return ConditionsKeeper(store(writer), body, clock=lambda: NOW, flush_running_after=None)


def succeeded(name: str) -> StepState:
    return StepState(
        name=name, status=StepStatus.SUCCEEDED, attempts=1, started_at=NOW, finished_at=NOW
    )


def size(body: Any) -> int:
    return len(json.dumps(body, separators=(",", ":")))


async def three_passes(
    api: KubeClient, name: str, store: Callable[[StatusWriter], Any], fetch: Callable[[str], Any]
) -> dict[str, Any]:
    """40 steps succeed; a pass starts step 40 (Running); the next one finishes it."""
    await api.create(pipeline(name, [python_step(f"step-{i}") for i in range(41)]))
    for summary, states in (
        (RUNNING, [succeeded(f"step-{i}") for i in range(40)]),
        (
            RUNNING,
            [StepState(name="step-40", status=StepStatus.RUNNING, attempts=1, started_at=NOW)],
        ),
        (DONE, [succeeded("step-40")]),
    ):
        body = await fetch(name)
        keeper = keeper_of(api, body, store)
        for state in states:
            await keeper.set_step_state(state)
        await keeper.commit(summary)
    status: dict[str, Any] = (await fetch(name))["status"]
    return status


async def test_later_writes_send_only_what_changed_and_store_the_same_status(
    api: KubeClient, fetch: Callable[[str], Any], sent: list[tuple[str, str, Any, int]]
) -> None:
    merged = await three_passes(api, "by-merge", MergeOnly, fetch)
    patched = await three_passes(api, "by-operation", lambda writer: writer, fetch)

    assert patched == merged, "both kinds of write leave the same status"
    by_merge = [(kind, size(body)) for name, kind, body, _ in sent if name == "by-merge"]
    by_operation = [
        (kind, size(body), body) for name, kind, body, _ in sent if name == "by-operation"
    ]
    assert [kind for kind, _ in by_merge] == ["merge"] * 3
    assert [kind for kind, _, _ in by_operation] == ["merge", "json", "json"]
    # The first write is the whole status either way; the later ones shrink from
    # 40-odd records to the one that changed (and the summary conditions).
    assert abs(by_operation[0][1] - by_merge[0][1]) <= 2  # (resourceVersion digits)
    for (_, merge_size), (_, json_size, body) in zip(by_merge[1:], by_operation[1:], strict=True):
        assert json_size * 4 < merge_size, (json_size, merge_size, body)
    guard = by_operation[1][2][0]
    assert guard["path"] == "/metadata/resourceVersion"
    assert all(op["path"].startswith("/status/") for op in by_operation[1][2][1:])


async def test_a_json_patch_from_a_stale_version_conflicts_and_is_replayed(
    api: KubeClient, fetch: Callable[[str], Any], sent: list[tuple[str, str, Any, int]]
) -> None:
    await three_passes(api, "contended", lambda writer: writer, fetch)
    body = await fetch("contended")
    keeper = keeper_of(api, body)
    await keeper.set_step_state(
        StepState(
            name="step-3",
            status=StepStatus.FAILED,
            attempts=2,
            started_at=NOW,
            finished_at=NOW,
            message="boom",
        )
    )
    # Another writer gets in first: a condition of its own, one more step record ahead.
    other = dict(body["status"])
    other["conditions"] = [
        *other["conditions"],
        {
            "type": "Audited",
            "status": "True",
            "reason": "Checked",
            "message": "",
            "lastTransitionTime": "2026-03-01T12:00:00Z",
        },
    ]
    await api.patch(
        API, "Pipeline", "contended", "default", {"status": other}, subresource="status"
    )
    sent.clear()

    await keeper.commit(DONE)

    assert [(kind, code) for _, kind, _, code in sent] == [("json", 409), ("json", 200)]
    status = (await fetch("contended"))["status"]
    assert {c["type"] for c in status["conditions"]} >= {"Audited", "Ready"}
    step3 = next(r for r in status["steps"] if r["name"] == "step-3")
    assert (step3["phase"], step3["message"], step3["attempts"]) == ("Failed", "boom", 2)
    assert len(status["steps"]) == 41


async def test_a_refused_json_patch_is_sent_again_as_a_merge_patch(
    api: KubeClient,
    fetch: Callable[[str], Any],
    sent: list[tuple[str, str, Any, int]],
    k8s_emulator: Emulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await three_passes(api, "refused", lambda writer: writer, fetch)
    keeper = keeper_of(api, await fetch("refused"))
    await keeper.set_step_state(
        StepState(
            name="step-7",
            status=StepStatus.FAILED,
            attempts=1,
            started_at=NOW,
            finished_at=NOW,
            message="late failure",
        )
    )
    k8s_emulator.inject(
        verb="patch", resource="pipelines", subresource="status", status=422, times=1
    )
    sent.clear()

    await keeper.commit(DONE)

    assert [kind for _, kind, _, _ in sent] == ["merge"], "the refused one never reached the store"
    step7 = next(r for r in (await fetch("refused"))["status"]["steps"] if r["name"] == "step-7")
    assert (step7["phase"], step7["message"]) == ("Failed", "late failure")
    assert "refused a JSON patch of the status" in caplog.text
