"""DynamicStep: steps generated only when, and each time, the step really runs."""

from __future__ import annotations

from datetime import timedelta

from kubesteps import (
    DynamicStep,
    MemoryStateKeeper,
    OutcomeKind,
    ParallelSteps,
    SimpleStep,
    Step,
    StepContext,
    StepState,
    StepStatus,
    ThrottlingSettings,
    always,
)

from .conftest import EngineFactory, FakeClock, Transitions


class Generator:
    """Generates one step per item; counts its calls."""

    def __init__(self, items: list[str]) -> None:
        self.items = items
        self.calls = 0
        self.ran: list[str] = []

    def __call__(self) -> list[Step]:
        self.calls += 1
        return [
            SimpleStep(name=f"item-{i}", run=lambda i=i: self.ran.append(i)) for i in self.items
        ]


async def test_generated_steps_run_in_order(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    gen = Generator(["x", "y"])
    outcome = await make_engine([DynamicStep(name="d", generate=gen)]).run()
    assert (outcome.kind, gen.ran) == (OutcomeKind.DONE, ["x", "y"])
    assert keeper.states["item-x"].status is StepStatus.SUCCEEDED
    assert keeper.states["d"].status is StepStatus.SUCCEEDED


async def test_generate_may_return_a_single_step_and_take_the_context(
    make_engine: EngineFactory,
) -> None:
    ran: list[str] = []

    async def generate(ctx: StepContext) -> Step:
        return SimpleStep(name=f"{ctx.name}-child", run=lambda: ran.append("child"))

    await make_engine([DynamicStep(name="d", generate=generate)]).run()
    assert ran == ["child"]


async def test_generate_is_not_called_when_skipped_by_state(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    gen = Generator(["x"])
    keeper.states["d"] = StepState(name="d", status=StepStatus.SUCCEEDED)
    await make_engine([DynamicStep(name="d", generate=gen)]).run()
    assert gen.calls == 0


async def test_generate_is_not_called_when_skipped_by_predicates(
    make_engine: EngineFactory,
) -> None:
    gen = Generator(["x"])
    await make_engine([DynamicStep(name="d", generate=gen, predicates=[always(False)])]).run()
    assert gen.calls == 0


async def test_generate_is_not_called_when_throttled(
    make_engine: EngineFactory, clock: FakeClock
) -> None:
    gen = Generator(["x"])
    step = DynamicStep(
        name="d", generate=gen, throttling=ThrottlingSettings(interval=timedelta(minutes=5))
    )
    engine = make_engine([step])
    await engine.run()
    clock.advance(60)
    await engine.run()
    assert gen.calls == 1


async def test_generate_is_called_afresh_on_every_run(make_engine: EngineFactory) -> None:
    gen = Generator(["x"])
    engine = make_engine([DynamicStep(name="d", generate=gen, state=None)])
    await engine.run()
    gen.items = ["x", "y"]
    await engine.run()
    assert gen.calls == 2
    assert gen.ran == ["x", "y"]  # item-x succeeded on the first run and is skipped by state


async def test_a_parallel_fan_out_over_a_list(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    hosts = ["h1", "h2", "h3"]
    done: list[str] = []

    def fan_out() -> Step:
        return ParallelSteps(
            name="upgrade-all",
            max_concurrency=2,
            steps=[SimpleStep(name=f"upgrade-{h}", run=lambda h=h: done.append(h)) for h in hosts],
        )

    outcome = await make_engine([DynamicStep(name="d", generate=fan_out)]).run()
    assert outcome.kind is OutcomeKind.DONE
    assert sorted(done) == hosts
    assert keeper.states["upgrade-all"].status is StepStatus.SUCCEEDED


async def test_colliding_generated_names_fail_the_step_not_the_engine(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    def generate() -> list[Step]:
        return [SimpleStep(name="other", run=list)]

    engine = make_engine(
        [SimpleStep(name="other", run=list), DynamicStep(name="d", generate=generate)]
    )
    outcome = await engine.run()
    assert (outcome.kind, outcome.step) == (OutcomeKind.FAILED, "d")
    assert "more than one step" in outcome.message
    assert keeper.states["d"].status is StepStatus.FAILED


async def test_generating_something_that_is_not_a_step_fails_the_step(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    step = DynamicStep(name="d", generate=lambda: ["not a step"])  # type: ignore[arg-type]
    outcome = await make_engine([step]).run()
    assert (outcome.kind, outcome.step) == (OutcomeKind.FAILED, "d")
    assert "generate: must return a Step" in keeper.states["d"].message


async def test_generating_an_empty_list_succeeds_with_nothing_to_do(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    outcome = await make_engine([DynamicStep(name="d", generate=list)]).run()
    assert outcome.kind is OutcomeKind.DONE
    assert keeper.states["d"].status is StepStatus.SUCCEEDED


async def test_each_state_is_written_once_per_transition(
    make_engine: EngineFactory, transitions: Transitions
) -> None:
    await make_engine([DynamicStep(name="d", generate=Generator(["x"]))]).run()
    assert transitions.of("d") == ["running", "succeeded"]
    assert transitions.of("item-x") == ["succeeded"]  # a simple step that never suspends


async def test_generated_steps_are_found_by_tag_once_generated(
    make_engine: EngineFactory,
) -> None:
    found: list[list[str]] = []

    def generate() -> Step:
        return SimpleStep(name="gen", run=list, tags={"db"})

    async def look(ctx: StepContext) -> None:
        found.append(ctx.find_by_tag("db"))

    await make_engine(
        [
            SimpleStep(name="before", run=look, state=None),
            DynamicStep(name="d", generate=generate),
            SimpleStep(name="after", run=look, state=None),
        ]
    ).run()
    assert found == [[], ["gen"]]
