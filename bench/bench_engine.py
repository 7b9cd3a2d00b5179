"""The steps engine's own cost: per-step overhead against a bare loop, a wide parallel
fan-out, and what tracing adds.

Figures are printed with their targets; nothing here asserts on time (machines differ).
"""

from __future__ import annotations

import asyncio
import gc
import time
import timeit
from collections.abc import Awaitable, Callable

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from kubesteps import MemoryStateKeeper, ParallelSteps, SimpleStep, StepsEngine

STEPS = 10_000
REPEATS = 5
FAN_OUT = 1_000
FAN_OUT_SLEEP = 0.010


async def noop() -> None:
    return None


def best_of(repeats: int, measure: Callable[[], Awaitable[float]]) -> float:
    """The fastest of ``repeats`` runs (the least disturbed by the rest of the machine)."""

    async def all_runs() -> float:
        return min([await measure() for _ in range(repeats)])

    return asyncio.run(all_runs())


async def bare_loop() -> float:
    calls = [noop for _ in range(STEPS)]
    gc.collect()
    start = time.perf_counter()
    for call in calls:
        await call()
    return time.perf_counter() - start


def engine_of(steps: int, **options: object) -> StepsEngine:
    return StepsEngine(
        [SimpleStep(name=f"s{i}", run=noop) for i in range(steps)],
        keeper=MemoryStateKeeper(history=0),
        **options,  # type: ignore[arg-type]
    )


async def engine_run(**options: object) -> float:
    engine = engine_of(STEPS, **options)
    gc.collect()
    start = time.perf_counter()
    await engine.run()
    return time.perf_counter() - start


async def fan_out() -> float:
    async def sleeper() -> None:
        await asyncio.sleep(FAN_OUT_SLEEP)

    group = ParallelSteps(
        name="fan-out",
        max_concurrency=FAN_OUT,
        steps=[SimpleStep(name=f"f{i}", run=sleeper) for i in range(FAN_OUT)],
    )
    engine = StepsEngine([group], keeper=MemoryStateKeeper(history=0))
    gc.collect()
    start = time.perf_counter()
    await engine.run()
    return time.perf_counter() - start


def verdict(met: bool) -> str:
    return "MET" if met else "MISSED"


def main() -> None:
    bare = best_of(REPEATS, bare_loop)
    plain = best_of(REPEATS, engine_run)
    bare_us, plain_us = bare / STEPS * 1e6, plain / STEPS * 1e6
    ratio = plain / bare
    print(f"engine overhead, {STEPS:,} no-op steps, memory keeper, tracing off "
          f"(best of {REPEATS}):")
    print(f"  bare loop        {bare_us:8.2f} µs/step")
    print(f"  engine           {plain_us:8.2f} µs/step   target <= 10 µs/step: "
          f"{verdict(plain_us <= 10)}")
    print(f"  ratio            {ratio:8.1f} x        target <= 20 x: {verdict(ratio <= 20)}")

    wall = best_of(3, fan_out)
    print(f"parallel fan-out, {FAN_OUT:,} sub-steps sleeping {FAN_OUT_SLEEP * 1e3:g} ms, "
          f"max_concurrency {FAN_OUT:,}:")
    print(f"  wall time        {wall * 1e3:8.1f} ms       target <= 100 ms: "
          f"{verdict(wall <= 0.100)}")

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bench")

    async def traced() -> float:
        exporter.clear()
        return await engine_run(tracer=tracer)

    with_spans = best_of(REPEATS, traced)
    spans = len(exporter.get_finished_spans())
    traced_us = with_spans / STEPS * 1e6
    overhead = with_spans / plain
    print(f"tracing on (SDK provider, in-memory exporter, {spans:,} spans) vs off:")
    print(f"  tracing on       {traced_us:8.2f} µs/step   (+{traced_us - plain_us:.2f} µs/step)")
    print(f"  ratio on/off     {overhead:8.2f} x        target <= 2 x: {verdict(overhead <= 2)}")
    # For scale: what the SDK itself charges for one span, with no engine around it.
    bare_span = bare_span_cost(tracer)
    print(f"  one bare SDK span {bare_span * 1e6:7.2f} µs         (the floor of the overhead)")
    provider.shutdown()


def bare_span_cost(tracer: trace.Tracer) -> float:
    def once() -> None:
        with tracer.start_as_current_span("bare", attributes={"k": "v"}) as span:
            span.set_attribute("outcome", "ok")

    rounds = 5_000
    return min(timeit.repeat(once, number=rounds, repeat=REPEATS)) / rounds
