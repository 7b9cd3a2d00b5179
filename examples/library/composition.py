"""Composing steps: a group, a parallel fan-out generated at run time, finish_on_success."""

import asyncio

from kubesteps import (
    DynamicStep,
    GroupedSteps,
    MemoryStateKeeper,
    OutcomeKind,
    ParallelSteps,
    SimpleStep,
    Step,
    StepsEngine,
    WaitError,
    is_true_condition,
)

conditions: list[dict[str, str]] = []  # e.g. the object's status.conditions, read lazily
upgraded: list[str] = []


def upgrade(host: str) -> SimpleStep:
    async def run() -> None:
        await asyncio.sleep(0.01)
        upgraded.append(host)

    return SimpleStep(name=f"upgrade-{host}", run=run)


def fan_out() -> Step:
    # Called only when the step really runs, afresh on every pass.
    hosts = ["node-a", "node-b", "node-c", "node-d"]
    return ParallelSteps(name="upgrade-all", steps=[upgrade(h) for h in hosts], max_concurrency=2)


def check_slow_node() -> None:
    raise WaitError("node-x still draining", delay=20)


deletion = GroupedSteps(
    name="deletion",
    predicates=[is_true_condition("Deleting", conditions)],
    finish_on_success=True,  # when deleting, nothing after this group runs
    steps=[SimpleStep(name="remove-finalizer", run=lambda: None)],
)
steps: list[Step] = [
    deletion,
    DynamicStep(name="upgrades", generate=fan_out),
    ParallelSteps(
        name="health",
        steps=[
            SimpleStep(name="check-fast-node", run=lambda: None),
            SimpleStep(name="check-slow-node", run=check_slow_node),
        ],
    ),
]


async def main() -> None:
    keeper = MemoryStateKeeper()
    outcome = await StepsEngine(steps, keeper=keeper).run()
    assert sorted(upgraded) == ["node-a", "node-b", "node-c", "node-d"]
    # A wait deep inside a parallel group is seen: the run waits for the shortest wait.
    assert (outcome.kind, outcome.step, outcome.delay) == (OutcomeKind.WAIT, "check-slow-node", 20)
    assert keeper.states["deletion"].status.value == "skipped"
    print(outcome)


asyncio.run(main())
