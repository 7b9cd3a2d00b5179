"""The operator at scale: 1,000 and 10,000 Pipelines of 5 python steps created at once,
under `kubesteps operator` and under the floor, a no-op kopf operator with the same kopf
settings (``bench/noop_operator.py``), each in a child process of its own.

Per run: the time until every Pipeline is Ready, the API requests and writes per Pipeline
and the bytes per status patch (counted by the emulator, which serves from this process),
the operator's CPU time per Pipeline (its /proc stat, from the creates until the API is
quiet), its idle RSS and peak RSS (VmHWM) and the MiB per 1,000 Pipelines over idle.
Figures are printed with their targets; nothing asserts on time.

``python -m bench scale`` runs both sizes; ``KUBESTEPS_BENCH_SCALE=1000`` only the smaller.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._operator_support import (
    count_ready,
    create,
    memory_kib,
    pipeline,
    quiet_routine_noise,
    verdict,
    wait_quiet,
    wait_until_ready,
    without_cel_rules,
)
from kubesteps.pipeline.crd import crd
from kubesteps.testing import Emulator, write_kubeconfig

SIZES = (1_000, 10_000)
STEPS = 5
CPU_TARGET = 2.5  # kubesteps' CPU per Pipeline, at most this times the floor's (at 1,000)
RSS_TARGET = 2.0  # kubesteps' peak RSS, at most this times the floor's (at 10,000)
LINEAR_TARGET = 1.5  # CPU per Pipeline at 10,000 at most this times that at 1,000
STARTUP_TIMEOUT = 60.0
IDLE = 2.0
STOP_TIMEOUT = 15.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

KUBESTEPS = [
    sys.executable,
    "-c",
    "import sys; from kubesteps.cli import main; sys.exit(main())",
    "operator",
    "--standalone",
    "--metrics-port",
    "0",
    "--log-level",
    "WARNING",
]
FLOOR = [sys.executable, "-m", "bench.noop_operator"]
ROOT = str(Path(__file__).resolve().parent.parent)  # where `bench` is, for the floor


def within(count: int) -> float:
    """How long ``count`` Pipelines may take to be Ready (generous: a loaded machine)."""
    return 60.0 + count * 0.06


@dataclass
class ScaleFigures:
    label: str
    count: int
    seconds: float | None  # to all Ready; None: timeout
    ready: int
    requests: int  # from the creates until the API is quiet
    writes: int  # of those, create/update/patch/delete
    status_patches: int
    status_bytes: int  # JSON bytes of all status patch bodies
    cpu_seconds: float | None  # the operator's, from the creates until quiet
    idle_kib: int | None
    peak_kib: int | None

    def per(self, value: float) -> float:
        return value / self.count

    @property
    def mib_per_1000(self) -> float | None:
        if self.peak_kib is None or self.idle_kib is None:
            return None
        return (self.peak_kib - self.idle_kib) / 1024 / self.count * 1000


def cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


@contextlib.contextmanager
def counting_status_bytes(emulator: Emulator) -> Iterator[list[int]]:
    """Sum the JSON size of every status patch body the emulator applies."""
    sizes: list[int] = []
    api = emulator.api
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
        if subresource == "status":
            sizes.append(len(json.dumps(body, separators=(",", ":"))))
        return original(info, namespace, name, subresource, patch_type, body, **options)

    api.patch = patch  # type: ignore[method-assign]
    try:
        yield sizes
    finally:
        api.patch = original  # type: ignore[method-assign]


async def stop(child: asyncio.subprocess.Process) -> None:
    if child.returncode is not None:
        return
    child.send_signal(signal.SIGTERM)
    try:
        async with asyncio.timeout(STOP_TIMEOUT):
            await child.wait()
    except TimeoutError:
        child.kill()
        await child.wait()


async def measure(label: str, command: list[str], count: int) -> ScaleFigures:
    emulator = Emulator()
    emulator.register_crd(without_cel_rules(crd()))
    figures = ScaleFigures(label, count, None, 0, 0, 0, 0, 0, None, None, None)
    with tempfile.TemporaryDirectory(prefix="kubesteps-bench-") as scratch:
        async with emulator.serving() as url:
            kubeconfig = write_kubeconfig(Path(scratch) / "kubeconfig", url)
            env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONPATH": ROOT}
            log = (Path(scratch) / "operator.log").open("wb")
            child = await asyncio.create_subprocess_exec(
                *command, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log
            )
            try:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(STARTUP_TIMEOUT):
                        await emulator.wait_for_watch("pipelines")
                if not emulator.watches("pipelines"):
                    return figures
                await asyncio.sleep(IDLE)
                await wait_quiet(emulator, quiet=0.3, within=10.0)
                figures.idle_kib = memory_kib(child.pid).get("VmRSS")
                emulator.requests.reset()
                cpu_before = cpu_seconds(child.pid)
                with counting_status_bytes(emulator) as sizes:
                    start = time.perf_counter()
                    create(emulator, (pipeline(f"p{index}", STEPS) for index in range(count)))
                    if await wait_until_ready(emulator, count, within=within(count)) is not None:
                        figures.seconds = time.perf_counter() - start
                    await wait_quiet(emulator, quiet=1.0, within=60.0)
                cpu_after = cpu_seconds(child.pid)
                if cpu_before is not None and cpu_after is not None:
                    figures.cpu_seconds = cpu_after - cpu_before
                figures.peak_kib = memory_kib(child.pid).get("VmHWM")
                snapshot = emulator.requests.snapshot()
                figures.requests = sum(snapshot.values())
                figures.writes = sum(
                    n
                    for (verb, _), n in snapshot.items()
                    if verb in ("create", "update", "patch", "delete")
                )
                figures.status_patches = len(sizes)
                figures.status_bytes = sum(sizes)
            finally:
                await stop(child)
                log.close()
            figures.ready = count_ready(emulator)
    return figures


def show(figures: ScaleFigures) -> None:
    timing = (
        f"all Ready in {figures.seconds:6.1f} s"
        if figures.seconds is not None
        else f"TIMEOUT, {figures.ready}/{figures.count} Ready"
    )
    cpu = (
        f"{figures.cpu_seconds / figures.count * 1e3:6.2f} ms CPU/Pipeline"
        if figures.cpu_seconds is not None
        else "CPU n/a"
    )
    rss = (
        "RSS n/a"
        if figures.mib_per_1000 is None
        else f"idle {figures.idle_kib / 1024:5.1f} MiB, peak {(figures.peak_kib or 0) / 1024:6.1f}"
        f" MiB = {figures.mib_per_1000:5.1f} MiB/1,000 Pipelines"
    )
    patches = figures.status_patches or 1
    print(f"  {figures.label:<10} {figures.count:>6,}: {timing}; {cpu}; {rss}")
    print(
        f"  {'':<10} {'':>6}  requests/Pipeline {figures.per(figures.requests):5.2f}, "
        f"writes/Pipeline {figures.per(figures.writes):5.2f}, status patches/Pipeline "
        f"{figures.per(figures.status_patches):4.2f} of {figures.status_bytes / patches:,.0f}"
        " bytes each"
    )


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def judged(label: str, value: float | None, target: float, *, at_most: bool = True) -> str:
    if value is None:
        return f"  {label}: n/a (a run timed out or ended early): {verdict(False)}"
    met = value <= target if at_most else value >= target
    return f"  {label}: {value:.2f} (target <= {target:g}): {verdict(met)}"


def main() -> None:
    quiet_routine_noise()
    wanted = os.environ.get("KUBESTEPS_BENCH_SCALE")
    sizes = tuple(int(n) for n in wanted.split(",")) if wanted else SIZES
    print(
        f"Pipelines of {STEPS} python steps created at once, each operator in a process of"
        " its own (the emulator, CRD without CEL rules, in this one):"
    )
    results: dict[tuple[str, int], ScaleFigures] = {}
    for count in sizes:
        for label, command in (("kubesteps", KUBESTEPS), ("floor", FLOOR)):
            results[label, count] = figures = asyncio.run(measure(label, command, count))
            show(figures)
    for count in sizes:
        ours, floor = results["kubesteps", count], results["floor", count]
        if ours.seconds is None or floor.seconds is None:
            print(
                f"at {count:,} Pipelines: a run timed out, its figures are partial and not "
                f"judged (kubesteps {ours.ready:,} Ready, floor {floor.ready:,}): "
                f"{verdict(False)}"
            )
            continue
        cpu = ratio(ours.cpu_seconds, floor.cpu_seconds)
        print(f"at {count:,} Pipelines, kubesteps against the floor:")
        print(
            judged("CPU per Pipeline, kubesteps/floor", cpu, CPU_TARGET)
            if count == min(sizes)
            else f"  CPU per Pipeline, kubesteps/floor: {cpu:.2f}"
            if cpu
            else "  CPU per Pipeline: n/a"
        )
        print(
            f"  time to all Ready, kubesteps/floor: "
            f"{ratio(ours.seconds, floor.seconds) or float('nan'):.2f}"
        )
        print(
            f"  writes per Pipeline: {ours.per(ours.writes):.2f} / {floor.per(floor.writes):.2f};"
            f" kopf's own patches (not status) per Pipeline: see the request counts"
        )
        rss = ratio(ours.peak_kib, floor.peak_kib)
        print(
            judged("peak RSS, kubesteps/floor", rss, RSS_TARGET)
            if count == max(sizes)
            else f"  peak RSS, kubesteps/floor: {rss or float('nan'):.2f}"
        )
    if len(sizes) > 1:
        small, large = min(sizes), max(sizes)
        for label in ("kubesteps", "floor"):
            a, b = results[label, small], results[label, large]
            if a.seconds is None or b.seconds is None:
                print(f"  {label}: linearity not judged, a run timed out: {verdict(False)}")
                continue
            growth = ratio(ratio(b.cpu_seconds, b.count), ratio(a.cpu_seconds, a.count))
            print(
                judged(
                    f"{label}: CPU per Pipeline at {large:,} / at {small:,} (linear: 1)",
                    growth,
                    LINEAR_TARGET,
                )
            )
