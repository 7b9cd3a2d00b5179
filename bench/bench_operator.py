"""The kubesteps operator under kopf against the API emulator: status writes per reconcile
pass and the API requests one Pipeline costs, the throughput of 200 Pipelines created at
once beside a no-op kopf handler, and the operator process's memory with 2,000 Pipelines.

Figures are printed with their targets (MET / MISSED); nothing asserts on time. Every wait
is bounded: a timeout is reported as a figure, never a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kopf

from bench._operator_support import (
    count_ready,
    create,
    difference,
    memory_kib,
    mib,
    passes,
    pipeline,
    quiet_routine_noise,
    request_table,
    status_writes,
    verdict,
    wait_quiet,
    wait_until_ready,
    without_cel_rules,
)
from kubesteps.controller.operator import Connection, build_registry, settings_hook
from kubesteps.pipeline.crd import crd
from kubesteps.telemetry.metrics import configure_metrics
from kubesteps.testing import Emulator, run_operator, write_kubeconfig

PASS_STEPS = 20
PASS_TARGET = 3
PASS_TIMEOUT = 30.0
QUIET = 0.5  # no request for this long: the operator is done with what it was given
QUIET_TIMEOUT = 5.0
STARTUP_QUIET = 0.2

FLEET = 200
FLEET_STEPS = 5
FLEET_TIMEOUT = 40.0
# The best of several rounds of each: the one least disturbed by the rest of the machine.
# With the CEL rules the emulator dominates and one round is telling; without them the
# operator's own cost shows, and the ratio is close enough to its target to need more.
FLEET_ROUNDS_CEL = 1
FLEET_ROUNDS = 3
RATIO_TARGET = 0.5

MEMORY_PIPELINES = 2_000
MEMORY_STEPS = 3
STARTUP_TIMEOUT = 30.0
IDLE = 2.0  # seconds the idle operator runs before its baseline is read
MEMORY_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0

RegistryFactory = Callable[[str], kopf.OperatorRegistry]


def operator_settings(settings: kopf.OperatorSettings) -> None:
    """The operator's own kopf settings, for the kubesteps and the no-op runs alike."""
    settings_hook(settings, {})


def kubesteps_registry(url: str) -> kopf.OperatorRegistry:
    return build_registry(Connection(kopf.ConnectionInfo(server=url, insecure=True)))


def noop_registry(_: str) -> kopf.OperatorRegistry:
    """The least any operator does for a Pipeline: one handler that states it is Ready."""
    registry = kopf.OperatorRegistry()

    # async, like the kubesteps handler: kopf runs a sync handler through a thread pool,
    # which would slow the baseline down and flatter the ratio.
    @kopf.on.create("kubesteps.dev", "v1alpha1", "pipelines", registry=registry)
    async def ready(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        patch.status["conditions"] = [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Succeeded",
                "message": "no-op",
                "observedGeneration": body.metadata.get("generation"),
                "lastTransitionTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        ]

    return registry


def pipelines_emulator(definition: dict[str, Any] | None = None) -> Emulator:
    emulator = Emulator()
    emulator.register_crd(definition or crd())
    return emulator


# -- 1. one Pipeline: status writes per pass, API requests to Ready -------------------------


@dataclass
class PassFigures:
    steps: int
    seconds: float | None  # to Ready; None: not Ready within the timeout
    passes: int
    status_patches: int  # as the emulator counted them
    status_writes_metric: int  # as the operator counted them
    startup: dict[tuple[str, str], int]  # kopf start-up requests, until the API was quiet
    to_ready: dict[tuple[str, str], int]  # requests from the create to Ready
    after_ready: dict[tuple[str, str], int]  # requests after Ready, until the API is quiet
    quiet_after: float | None  # seconds from Ready to the last request; None: never quiet

    @property
    def writes_per_pass(self) -> float:
        return self.status_patches / self.passes if self.passes else float("nan")


async def measure_pass(
    steps: int = PASS_STEPS, *, within: float = PASS_TIMEOUT, quiet: float = QUIET
) -> PassFigures:
    """One Pipeline under the operator (kopf in a thread), from its creation until the API
    is quiet again; requests are counted by the emulator, passes by the operator."""
    emulator = pipelines_emulator()
    metrics = configure_metrics()  # fresh counters, picked up by build_registry
    async with (
        emulator.serving() as url,
        run_operator(
            kubesteps_registry(url),
            emulator,
            wait_for=["pipelines"],
            settings_hook=operator_settings,
        ),
    ):
        # kopf opens its other watches (CRDs, namespaces) on its own time: let it finish.
        await wait_quiet(emulator, quiet=STARTUP_QUIET, within=QUIET_TIMEOUT)
        startup = emulator.requests.snapshot()
        emulator.requests.reset()
        create(emulator, [pipeline("one", steps)])
        seconds = await wait_until_ready(emulator, 1, within=within, interval=0.005)
        to_ready = emulator.requests.snapshot()
        quiet_after = await wait_quiet(emulator, quiet=quiet, within=QUIET_TIMEOUT)
        return PassFigures(
            steps=steps,
            seconds=seconds,
            passes=passes(metrics),
            status_patches=emulator.requests.count("patch", "pipelines.kubesteps.dev/status"),
            status_writes_metric=status_writes(metrics),
            startup=startup,
            to_ready=to_ready,
            after_ready=difference(emulator.requests.snapshot(), to_ready),
            quiet_after=quiet_after,
        )


def report_pass(figures: PassFigures) -> None:
    print(f"1. one Pipeline of {figures.steps} python steps, under kopf:")
    if figures.seconds is None:
        print(f"  NOT Ready within {PASS_TIMEOUT:.0f}s (timeout)")
    else:
        print(f"  Ready {figures.seconds * 1000:.0f} ms after its creation")
    per_pass = figures.writes_per_pass
    print(
        f"  reconcile passes: {figures.passes}; status patches: {figures.status_patches}"
        f" (the operator's own count: {figures.status_writes_metric})"
    )
    print(
        f"  status writes per pass: {per_pass:.2f} (target <= {PASS_TARGET}):"
        f" {verdict(per_pass <= PASS_TARGET)}"
    )
    quiet = (
        "still busy after the timeout"
        if figures.quiet_after is None
        else f"last request {figures.quiet_after * 1000:.0f} ms after Ready"
    )
    print(f"  API requests by verb and resource ({quiet}):")
    for row in request_table({"to Ready": figures.to_ready, "after Ready": figures.after_ready}):
        print(row)
    print(f"  operator start-up, before the create: {sum(figures.startup.values())} requests")


# -- 2. 200 Pipelines at once: kubesteps against a no-op kopf handler -------------------------


@dataclass
class FleetFigures:
    count: int
    seconds: float | None  # None: not all Ready within the timeout
    ready: int
    at_ready: int  # requests from the creates until all are Ready
    until_quiet: int  # requests from the creates until the API is quiet

    @property
    def rate(self) -> float | None:
        return self.count / self.seconds if self.seconds else None


async def measure_fleet(
    registry_of: RegistryFactory,
    *,
    definition: dict[str, Any] | None = None,
    count: int = FLEET,
    steps: int = FLEET_STEPS,
    within: float = FLEET_TIMEOUT,
) -> FleetFigures:
    """``count`` Pipelines created together; the time until every one is Ready."""
    emulator = pipelines_emulator(definition)
    configure_metrics()
    async with (
        emulator.serving() as url,
        run_operator(
            registry_of(url),
            emulator,
            wait_for=["pipelines"],
            settings_hook=operator_settings,
        ),
    ):
        await wait_quiet(emulator, quiet=STARTUP_QUIET, within=QUIET_TIMEOUT)
        emulator.requests.reset()
        start = time.perf_counter()
        create(emulator, (pipeline(f"p{index}", steps) for index in range(count)))
        waited = await wait_until_ready(emulator, count, within=within)
        seconds = None if waited is None else time.perf_counter() - start
        at_ready = emulator.requests.total
        # Stopping kopf with events still queued makes it warn; let it finish first.
        await wait_quiet(emulator, within=QUIET_TIMEOUT)
        return FleetFigures(
            count, seconds, count_ready(emulator), at_ready, emulator.requests.total
        )


def best(runs: list[FleetFigures]) -> FleetFigures:
    finished = [run for run in runs if run.seconds is not None]
    return min(finished, key=lambda run: run.seconds or 0.0) if finished else runs[-1]


async def compare_fleets(
    definition: dict[str, Any], rounds: int = FLEET_ROUNDS
) -> tuple[FleetFigures, FleetFigures]:
    """The best of ``rounds`` alternating rounds for each operator, a fresh emulator each."""
    kubesteps: list[FleetFigures] = []
    noop: list[FleetFigures] = []
    for _ in range(rounds):
        kubesteps.append(await measure_fleet(kubesteps_registry, definition=definition))
        noop.append(await measure_fleet(noop_registry, definition=definition))
    return best(kubesteps), best(noop)


def report_fleet(title: str, rounds: int, kubesteps: FleetFigures, noop: FleetFigures) -> None:
    print(f"  {title}, best of {rounds}:")
    for label, figures in (("kubesteps operator", kubesteps), ("no-op kopf handler", noop)):
        if figures.seconds is None:
            timing = f"TIMEOUT after {FLEET_TIMEOUT:.0f}s, {figures.ready}/{figures.count} Ready"
        else:
            timing = f"{figures.seconds:5.2f}s = {figures.rate:5.1f} pipelines/s"
        print(
            f"    {label:<19} {timing}; requests per Pipeline:"
            f" {figures.at_ready / figures.count:.2f} to Ready,"
            f" {figures.until_quiet / figures.count:.2f} in all"
        )
    if kubesteps.rate is None or noop.rate is None:
        print(
            f"    ratio kubesteps/no-op rate: n/a, a run timed out (target >= {RATIO_TARGET}):"
            f" {verdict(False)}"
        )
        return
    ratio = kubesteps.rate / noop.rate
    print(
        f"    ratio kubesteps/no-op rate: {ratio:.2f} (target >= {RATIO_TARGET}):"
        f" {verdict(ratio >= RATIO_TARGET)}"
    )


# -- 3. the operator process's memory with 2,000 Pipelines ----------------------------------

# The operator exactly as `kubesteps operator` runs it, in a process of its own: its RSS is
# not mixed with the emulator's, which serves from this process.
CHILD = "import sys; from kubesteps.cli import main; sys.exit(main())"


@dataclass
class MemoryFigures:
    count: int
    baseline_kib: int | None  # idle operator, watching, no Pipelines
    peak_kib: int | None  # VmHWM once all are Ready and the API is quiet (or at the timeout)
    settled_kib: int | None  # VmRSS at the same moment
    seconds: float | None
    ready: int
    exit_code: int | None
    stop_seconds: float | None
    children_maxrss_kib: int
    cel_rules: bool  # whether the emulator evaluated the CRD's CEL rules
    log_tail: str = ""


async def _stop(child: asyncio.subprocess.Process) -> float | None:
    """SIGTERM, as Kubernetes stops a pod; SIGKILL if it is not gone in time. None: killed."""
    if child.returncode is not None:
        return 0.0
    start = time.perf_counter()
    child.send_signal(signal.SIGTERM)
    try:
        async with asyncio.timeout(STOP_TIMEOUT):
            await child.wait()
    except TimeoutError:
        child.kill()
        await child.wait()
        return None
    return time.perf_counter() - start


async def measure_memory(
    count: int = MEMORY_PIPELINES,
    *,
    steps: int = MEMORY_STEPS,
    definition: dict[str, Any] | None = None,
    within: float = MEMORY_TIMEOUT,
) -> MemoryFigures:
    """The operator in a child process, the emulator in this one. By default the CRD goes
    without its CEL rules: the operator never sees them, and evaluating them in Python makes
    the emulator, not the operator, the bottleneck (a slow API server is its own case: the
    operator then holds more work in flight, and its peak grows; see docs/benchmarks.md)."""
    definition = definition or without_cel_rules(crd())
    emulator = pipelines_emulator(definition)
    baseline = peak = settled = seconds = None
    with tempfile.TemporaryDirectory(prefix="kubesteps-bench-") as scratch:
        log_path = Path(scratch) / "operator.log"
        async with emulator.serving() as url:
            kubeconfig = write_kubeconfig(Path(scratch) / "kubeconfig", url)
            env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
            with log_path.open("wb") as log:
                child = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-c",
                    CHILD,
                    "operator",
                    "--standalone",
                    "--metrics-port",
                    "0",
                    "--log-level",
                    "WARNING",
                    env=env,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                )
            try:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(STARTUP_TIMEOUT):
                        await emulator.wait_for_watch("pipelines")
                if emulator.watches("pipelines"):
                    await asyncio.sleep(IDLE)
                    baseline = memory_kib(child.pid).get("VmRSS")
                    start = time.perf_counter()
                    create(emulator, (pipeline(f"m{index}", steps) for index in range(count)))
                    if await wait_until_ready(emulator, count, within=within) is not None:
                        seconds = time.perf_counter() - start
                    # What follows Ready (kopf's own patches, Events) is part of the peak.
                    await wait_quiet(emulator, within=QUIET_TIMEOUT)
                    figures = memory_kib(child.pid)
                    peak, settled = figures.get("VmHWM"), figures.get("VmRSS")
            finally:
                stop_seconds = await _stop(child)
            ready = count_ready(emulator)
        tail = log_path.read_text(errors="replace").strip().splitlines()[-10:]
    return MemoryFigures(
        count=count,
        baseline_kib=baseline,
        peak_kib=peak,
        settled_kib=settled,
        seconds=seconds,
        ready=ready,
        exit_code=child.returncode,
        stop_seconds=stop_seconds,
        children_maxrss_kib=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
        cel_rules="x-kubernetes-validations" in json.dumps(definition),
        log_tail="\n".join(tail),
    )


def report_memory(figures: MemoryFigures) -> None:
    rules = "with" if figures.cel_rules else "without"
    print(
        f"3. the operator process (`kubesteps operator`) with {figures.count} Pipelines"
        f" of {MEMORY_STEPS} python steps (the emulator in this process, the CRD {rules}"
        " its CEL rules):"
    )
    if figures.baseline_kib is None:
        print(
            f"  no idle figure: the operator did not watch Pipelines within"
            f" {STARTUP_TIMEOUT:.0f}s, or it exited"
        )
    else:
        print(f"  idle RSS (watching, no Pipelines): {mib(figures.baseline_kib)}")
        if figures.seconds is None:
            print(
                f"  TIMEOUT after {MEMORY_TIMEOUT:.0f}s with {figures.ready}/{figures.count}"
                " Ready (memory read at the timeout)"
            )
        else:
            print(
                f"  all Ready after {figures.seconds:.1f}s"
                f" = {figures.count / figures.seconds:.0f} pipelines/s"
            )
    if figures.baseline_kib is not None and figures.peak_kib is not None:
        increment = (figures.peak_kib - figures.baseline_kib) / figures.count
        print(
            f"  peak RSS once all are Ready and the API is quiet (VmHWM):"
            f" {mib(figures.peak_kib)}; RSS then: {mib(figures.settled_kib or 0)}"
        )
        print(f"  per Pipeline: {increment:.1f} KiB over idle")
    stopped = (
        f"killed: no exit within {STOP_TIMEOUT:.0f}s"
        if figures.stop_seconds is None
        else f"exit code {figures.exit_code} after SIGTERM in {figures.stop_seconds:.1f}s"
    )
    print(
        f"  {stopped}; peak RSS over its whole life, shutdown included (getrusage of this"
        f" process's children): {mib(figures.children_maxrss_kib)}"
    )
    if figures.exit_code != 0 and figures.log_tail:
        print("  operator log (last lines):")
        for line in figures.log_tail.splitlines():
            print(f"    {line}")


def main() -> None:
    quiet_routine_noise()
    report_pass(asyncio.run(measure_pass()))
    print()
    print(
        f"2. {FLEET} Pipelines of {FLEET_STEPS} python steps created at once, until all are"
        f" Ready; against a no-op kopf handler (Ready=True on create) on {FLEET} Pipelines;"
        " a fresh emulator each round:"
    )
    shipped = crd()
    for title, definition, rounds in (
        (
            "the CRD as shipped (the emulator evaluates its CEL rules on every write)",
            shipped,
            FLEET_ROUNDS_CEL,
        ),
        (
            "the CRD without its CEL rules (the emulator's share of the CPU is smaller)",
            without_cel_rules(shipped),
            FLEET_ROUNDS,
        ),
    ):
        report_fleet(title, rounds, *asyncio.run(compare_fleets(definition, rounds)))
    print()
    report_memory(asyncio.run(measure_memory()))
