"""The steps engine's own cost: per-step overhead against a bare loop (10,000 flat steps and
a mixed workload), a wide parallel fan-out, and what tracing adds.

Figures are printed with their targets; nothing here asserts on time (machines differ).
Costs are CPU time of this process (``time.process_time``), not wall time: on a machine
shared with other work, wall time counts the moments the process waited for a core. Every
ratio compares runs interleaved in the same loop (bare, engine, bare, engine, ...), the
best of each, so a slower moment of the machine hits both sides alike.
"""

from __future__ import annotations

import asyncio
import gc
import time
import timeit
from collections.abc import Awaitable, Callable, Sequence

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from kubesteps import (
    DynamicStep,
    GroupedSteps,
    MemoryStateKeeper,
    ParallelSteps,
    SimpleStep,
    Step,
    StepsEngine,
)

STEPS = 10_000
ROUNDS = 9
FAN_OUT = 1_000
FAN_OUT_SLEEP = 0.010
RATIO_TARGET = 25.0
TRACING_TARGET = 1.5


async def noop() -> None:
    return None


def flat(steps: int = STEPS) -> list[Step]:
    return [SimpleStep(name=f"s{i}", run=noop) for i in range(steps)]


def mixed() -> list[Step]:
    """Groups, a 100-way parallel group and a 100-item dynamic fan-out: 10,000 simple steps
    in all, as a large Pipeline would have them."""
    steps: list[Step] = []
    for g in range(49):  # 49 groups of 200 (sequential sub-groups of 20)
        steps.append(
            GroupedSteps(
                name=f"g{g}",
                steps=[
                    GroupedSteps(
                        name=f"g{g}.{h}",
                        steps=[SimpleStep(name=f"g{g}.{h}.{i}", run=noop) for i in range(20)],
                    )
                    for h in range(10)
                ],
            )
        )
    steps.append(
        ParallelSteps(
            name="parallel", steps=[SimpleStep(name=f"p{i}", run=noop) for i in range(100)]
        )
    )

    def items() -> Sequence[Step]:
        return [SimpleStep(name=f"item-{i}", run=noop) for i in range(100)]

    steps.append(DynamicStep(name="fan-out", generate=items))
    return steps


MIXED_SIMPLE = 49 * 10 * 20 + 100 + 100


async def bare_loop(steps: int = STEPS) -> float:
    calls = [noop for _ in range(steps)]
    gc.collect()
    start = time.process_time()
    for call in calls:
        await call()
    return time.process_time() - start


async def timed_run(steps: list[Step], **options: object) -> float:
    engine = StepsEngine(steps, keeper=MemoryStateKeeper(history=0), **options)  # type: ignore[arg-type]
    gc.collect()
    start = time.process_time()
    await engine.run()
    return time.process_time() - start


def interleaved(rounds: int, *measures: Callable[[], Awaitable[float]]) -> list[float]:
    """Each measure's best over ``rounds`` rounds, the measures taking turns in each."""

    async def all_rounds() -> list[float]:
        best = [float("inf")] * len(measures)
        for _ in range(rounds):
            for index, measure in enumerate(measures):
                best[index] = min(best[index], await measure())
        return best

    return asyncio.run(all_rounds())


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
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bench")

    async def traced() -> float:
        exporter.clear()
        return await timed_run(flat(), tracer=tracer)

    bare, plain, mix, with_spans = interleaved(
        ROUNDS, bare_loop, lambda: timed_run(flat()), lambda: timed_run(mixed()), traced
    )
    spans = len(exporter.get_finished_spans())
    bare_us, plain_us = bare / STEPS * 1e6, plain / STEPS * 1e6
    mix_us = mix / MIXED_SIMPLE * 1e6
    print(
        f"engine overhead per simple step, no-op steps, memory keeper, tracing off "
        f"(CPU time, best of {ROUNDS} interleaved rounds):"
    )
    print(f"  bare await loop   {bare_us:8.3f} µs/step")
    print(
        f"  10,000 flat steps {plain_us:8.2f} µs/step = {plain / bare:6.1f} x the bare loop"
        f"   target <= {RATIO_TARGET:g} x: {verdict(plain / bare <= RATIO_TARGET)}"
    )
    print(
        f"  mixed, {MIXED_SIMPLE:,} steps {mix_us:6.2f} µs/step = {mix_us / bare_us:6.1f} x "
        f"the bare loop   target <= {RATIO_TARGET:g} x: "
        f"{verdict(mix_us / bare_us <= RATIO_TARGET)}"
    )
    print(
        "    (49 groups of 10 groups of 20 steps, a 100-way parallel group, a 100-item "
        "dynamic fan-out)"
    )

    traced_us = with_spans / STEPS * 1e6
    overhead = with_spans / plain
    print(
        f"tracing on (SDK provider, in-memory exporter, {spans:,} span(s): quick steps get "
        "none) vs off, 10,000 flat steps:"
    )
    print(f"  tracing on        {traced_us:8.2f} µs/step   (+{traced_us - plain_us:.2f} µs/step)")
    print(
        f"  ratio on/off      {overhead:8.2f} x        target <= {TRACING_TARGET:g} x: "
        f"{verdict(overhead <= TRACING_TARGET)}"
    )
    # For scale: what the SDK itself charges for one span, with no engine around it.
    bare_span = bare_span_cost(tracer)
    print(f"  one bare SDK span {bare_span * 1e6:8.2f} µs         (what a span per step would add)")
    provider.shutdown()

    wall = asyncio.run(best_wall(3))
    print(
        f"parallel fan-out, {FAN_OUT:,} sub-steps sleeping {FAN_OUT_SLEEP * 1e3:g} ms, "
        f"max_concurrency {FAN_OUT:,} (wall time):"
    )
    print(
        f"  wall time         {wall * 1e3:8.1f} ms       target <= 100 ms: {verdict(wall <= 0.100)}"
    )


async def best_wall(rounds: int) -> float:
    return min([await fan_out() for _ in range(rounds)])


def bare_span_cost(tracer: trace.Tracer) -> float:
    def once() -> None:
        with tracer.start_as_current_span("bare", attributes={"k": "v"}) as span:
            span.set_attribute("outcome", "ok")

    rounds = 5_000
    return min(timeit.repeat(once, number=rounds, repeat=5, timer=time.process_time)) / rounds
