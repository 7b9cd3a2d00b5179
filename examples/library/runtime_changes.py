"""Run-time changes: a step disables others by tag, or inserts new steps after itself."""

import asyncio
from datetime import UTC, datetime

from kubesteps import MemoryStateKeeper, RunContext, SimpleStep, StepContext, StepsEngine

ran: list[str] = []


async def plan(ctx: StepContext) -> None:
    if ctx.run.get("dry_run", False):
        await ctx.disable(tag="writes")  # recorded in the keeper: later passes skip them too
    # Inserted steps run right after this one; until they all succeed, a later pass runs
    # `plan` again so that it can insert them again.
    ctx.insert_after(SimpleStep(name="migrate-007", run=lambda: ran.append("migrate-007")))


steps = [
    SimpleStep(name="plan", run=plan),
    SimpleStep(name="apply", run=lambda: ran.append("apply"), tags={"writes"}),
    SimpleStep(name="verify", run=lambda: ran.append("verify")),
]


async def main() -> None:
    await StepsEngine(steps, keeper=MemoryStateKeeper()).run()
    assert ran == ["migrate-007", "apply", "verify"]

    ran.clear()
    keeper = MemoryStateKeeper()
    dry_run = RunContext(lambda: datetime.now(UTC))
    dry_run.put("dry_run", True)
    await StepsEngine(steps, keeper=keeper).run(dry_run)
    assert ran == ["migrate-007", "verify"]
    assert keeper.states["apply"].disabled
    print(ran)


asyncio.run(main())
