"""Predicates decide whether a step runs; throttling how often. Time is injected."""

import asyncio
from datetime import UTC, datetime, timedelta

from kubesteps import (
    MemoryStateKeeper,
    OutcomeKind,
    SimpleStep,
    StepContext,
    StepsEngine,
    ThrottlingSettings,
    and_,
    not_,
    step_succeeded,
)

now = datetime(2025, 1, 1, tzinfo=UTC)
runs: list[str] = []


def clock() -> datetime:
    return now


async def maintenance_window(ctx: StepContext) -> bool:  # sync or async, ctx optional
    return bool(ctx.run.get("maintenance", False))


steps = [
    SimpleStep(name="backup", run=lambda: runs.append("backup")),
    SimpleStep(
        name="compact",
        run=lambda: runs.append("compact"),
        predicates=[and_(step_succeeded("backup"), not_(maintenance_window))],
    ),
    SimpleStep(
        name="report",
        run=lambda: runs.append("report"),
        throttling=ThrottlingSettings(interval=timedelta(hours=1)),
    ),
]


async def main() -> None:
    global now
    engine = StepsEngine(steps, keeper=MemoryStateKeeper(), clock=clock)
    outcome = await engine.run()
    assert runs == ["backup", "compact", "report"]
    assert (outcome.kind, outcome.delay) == (OutcomeKind.DONE, 3600.0)  # report is next due

    now += timedelta(minutes=15)
    outcome = await engine.run()
    assert runs == ["backup", "compact", "report"]  # report is throttled
    assert outcome.delay == 45 * 60

    now += timedelta(minutes=45)
    await engine.run()
    assert runs[-1] == "report"
    print(runs)


asyncio.run(main())
