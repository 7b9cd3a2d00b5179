"""Helpers for ``bench_operator``: Pipelines of fast steps, readiness polling straight from
the emulator's store (no HTTP requests that would skew the request counts), a request
table, and a process's memory from ``/proc``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from kubesteps.telemetry.metrics import RECONCILE_OUTCOMES, OperatorMetrics
from kubesteps.testing import Emulator

API_VERSION = "kubesteps.dev/v1alpha1"
NAMESPACE = "default"
PIPELINES = "pipelines.kubesteps.dev"


def verdict(met: bool) -> str:
    return "MET" if met else "MISSED"


def without_cel_rules(node: Any) -> Any:
    """A copy of a CRD (or any part of it) without its ``x-kubernetes-validations``."""
    if isinstance(node, dict):
        return {
            key: without_cel_rules(value)
            for key, value in node.items()
            if key != "x-kubernetes-validations"
        }
    if isinstance(node, list):
        return [without_cel_rules(value) for value in node]
    return node


class _HangUps(logging.Filter):
    """Drops aiohttp's traceback for a watch client that hung up while an event was being
    written to it (kopf stopping): routine at shutdown, and pages long."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ConnectionResetError))


class _InThread(logging.Filter):
    """Drops kopf's notice that it cannot handle OS signals outside the main thread: the
    benchmark runs it in a thread on purpose and stops it with a flag."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("OS signals are ignored")


def quiet_routine_noise() -> None:
    """Keep the benchmark's output to its figures: every other warning still shows."""
    for name, kind in (("aiohttp.server", _HangUps), ("kopf._core.reactor.running", _InThread)):
        logger = logging.getLogger(name)
        if not any(isinstance(existing, kind) for existing in logger.filters):
            logger.addFilter(kind())


def pipeline(name: str, steps: int) -> dict[str, Any]:
    """A Pipeline of ``steps`` python steps calling the built-in ``greet`` (no I/O)."""
    return {
        "apiVersion": API_VERSION,
        "kind": "Pipeline",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "steps": [
                {
                    "name": f"s{index}",
                    "action": "python",
                    "with": {"function": "kubesteps.examples.greet", "args": {}},
                }
                for index in range(steps)
            ]
        },
    }


def create(emulator: Emulator, bodies: Iterable[Mapping[str, Any]]) -> None:
    """Create the objects through the emulator's own API, all before the loop runs again.

    They reach the operator's watch together, as if created at once, and the benchmark's
    writes do not show up in the request counts.
    """
    info = emulator.resource(PIPELINES)
    for body in bodies:
        emulator.api.create(info, NAMESPACE, dict(body), field_validation="Strict")


def is_ready(obj: Mapping[str, Any]) -> bool:
    """Ready=True, stated for the object's current generation."""
    generation = obj.get("metadata", {}).get("generation")
    for condition in (obj.get("status") or {}).get("conditions") or ():
        if condition.get("type") == "Ready":
            return bool(
                condition.get("status") == "True"
                and condition.get("observedGeneration") == generation
            )
    return False


def count_ready(emulator: Emulator) -> int:
    info = emulator.resource(PIPELINES)
    return sum(1 for obj in emulator.store.items(info.storage_key, NAMESPACE) if is_ready(obj))


async def wait_until_ready(
    emulator: Emulator, expected: int, *, within: float, interval: float = 0.1
) -> float | None:
    """Seconds until ``expected`` Pipelines are ready (from now), or None on timeout."""
    start = time.perf_counter()
    deadline = start + within
    while True:
        if count_ready(emulator) >= expected:
            return time.perf_counter() - start
        if time.perf_counter() >= deadline:
            return None
        await asyncio.sleep(interval)


async def wait_quiet(
    emulator: Emulator, *, quiet: float = 0.5, within: float = 5.0, interval: float = 0.05
) -> float | None:
    """Seconds until no request has reached the emulator for ``quiet`` seconds (the time of
    the last request), or None if requests still came after ``within`` seconds."""
    start = last_change = time.perf_counter()
    seen = emulator.requests.total
    while True:
        await asyncio.sleep(interval)
        now = time.perf_counter()
        if emulator.requests.total != seen:
            seen, last_change = emulator.requests.total, now
        elif now - last_change >= quiet:
            return last_change - start
        if now - start >= within:
            return None


def passes(metrics: OperatorMetrics) -> int:
    """Reconcile passes counted by the operator's own metrics, whatever their outcome."""
    return int(
        sum(
            metrics.registry.get_sample_value("kubesteps_reconciles_total", {"outcome": outcome})
            or 0
            for outcome in RECONCILE_OUTCOMES
        )
    )


def status_writes(metrics: OperatorMetrics) -> int:
    return int(metrics.registry.get_sample_value("kubesteps_status_writes_total") or 0)


def request_table(columns: Mapping[str, Mapping[tuple[str, str], int]]) -> list[str]:
    """A table of request counts by verb and resource, one count column per phase, the
    busiest first, with totals."""
    keys = sorted(
        {key for counts in columns.values() for key in counts},
        key=lambda key: (-sum(c.get(key, 0) for c in columns.values()), key),
    )
    width = max((len(resource) for _, resource in keys), default=8)
    heads = "".join(f" {title:>12}" for title in columns)
    rows = [f"  {'verb':<8} {'resource':<{width}}{heads}"]
    for key in keys:
        cells = "".join(f" {counts.get(key, 0):>12}" for counts in columns.values())
        rows.append(f"  {key[0]:<8} {key[1]:<{width}}{cells}")
    totals = "".join(f" {sum(counts.values()):>12}" for counts in columns.values())
    rows.append(f"  {'total':<8} {'':<{width}}{totals}")
    return rows


def difference(
    after: Mapping[tuple[str, str], int], before: Mapping[tuple[str, str], int]
) -> dict[tuple[str, str], int]:
    return {
        key: count - before.get(key, 0)
        for key, count in after.items()
        if count > before.get(key, 0)
    }


def memory_kib(pid: int) -> dict[str, int]:
    """``VmRSS`` (now) and ``VmHWM`` (peak so far) of a process in KiB; empty once it is
    gone (an exited child that was not yet waited for has no memory figures either)."""
    figures: dict[str, int] = {}
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return figures
    for line in status.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            figures[key] = int(value.split()[0])
    return figures


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f} MiB"
