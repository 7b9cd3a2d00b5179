"""Run-time changes: tags, disabling and enabling steps, inserting steps."""

from __future__ import annotations

from pathlib import Path

from kubesteps import (
    GroupedSteps,
    MemoryStateKeeper,
    OutcomeKind,
    SimpleStep,
    SQLiteStateKeeper,
    State,
    StepContext,
    StepStatus,
    WaitError,
)

from .conftest import EngineFactory, Transitions


def logging_step(log: list[str], name: str, **options: object) -> SimpleStep:
    return SimpleStep(name=name, run=lambda: log.append(name), **options)  # type: ignore[arg-type]


async def test_find_by_tag_lists_the_steps_carrying_a_tag(make_engine: EngineFactory) -> None:
    found: list[list[str]] = []

    def look(ctx: StepContext) -> None:
        found.append(sorted(ctx.find_by_tag("db")))

    await make_engine(
        [
            SimpleStep(name="look", run=look, tags={"meta"}),
            SimpleStep(name="a", run=list, tags={"db"}),
            GroupedSteps(name="g", steps=[SimpleStep(name="b", run=list, tags={"db", "x"})]),
        ]
    ).run()
    assert found == [["a", "b"]]


async def test_a_step_sees_its_own_tags(make_engine: EngineFactory) -> None:
    seen: list[frozenset[str]] = []
    await make_engine(
        [SimpleStep(name="a", run=lambda ctx: seen.append(ctx.tags), tags=["x", "y"])]
    ).run()
    assert seen == [frozenset({"x", "y"})]


async def test_a_disabled_step_is_skipped_and_recorded_as_disabled(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    log: list[str] = []

    async def disable_b(ctx: StepContext) -> None:
        assert await ctx.disable("b") == ["b"]

    await make_engine(
        [SimpleStep(name="a", run=disable_b), logging_step(log, "b"), logging_step(log, "c")]
    ).run()
    assert log == ["c"]
    state = keeper.states["b"]
    assert (state.status, state.reason, state.disabled) == (StepStatus.SKIPPED, "Disabled", True)
    assert "'a'" in state.message


async def test_disable_by_tag_disables_every_step_with_the_tag_but_never_itself(
    make_engine: EngineFactory,
) -> None:
    log: list[str] = []

    async def disable_optional(ctx: StepContext) -> None:
        await ctx.disable(tag="optional")

    await make_engine(
        [
            SimpleStep(name="a", run=disable_optional, tags={"optional"}),
            logging_step(log, "b", tags={"optional"}),
            logging_step(log, "c"),
            logging_step(log, "d", tags={"optional"}),
        ]
    ).run()
    assert log == ["c"]


async def test_disabling_is_remembered_by_a_new_engine_on_the_same_keeper(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    log: list[str] = []

    async def disable_b(ctx: StepContext) -> None:
        await ctx.disable("b")

    path = tmp_path / "k.db"
    first = SQLiteStateKeeper(path)
    await make_engine(
        [SimpleStep(name="a", run=disable_b), logging_step(log, "b")], keeper=first
    ).run()
    first.close()
    second = SQLiteStateKeeper(path)
    # The new engine does not even contain the disabling step.
    await make_engine([logging_step(log, "b", skip_state_check=True)], keeper=second).run()
    second.close()
    assert log == []


async def test_enable_lets_a_disabled_step_run_again(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    log: list[str] = []
    mode = {"enable": False}

    async def toggle(ctx: StepContext) -> None:
        if mode["enable"]:
            await ctx.enable("b")
        else:
            await ctx.disable("b")

    engine = make_engine(
        [SimpleStep(name="toggle", run=toggle, state=None), logging_step(log, "b")]
    )
    await engine.run()
    mode["enable"] = True
    await engine.run()
    assert log == ["b"]
    assert keeper.states["b"].disabled is False


async def test_disabling_an_already_disabled_step_changes_nothing(
    make_engine: EngineFactory,
) -> None:
    results: list[list[str]] = []

    async def disable_b(ctx: StepContext) -> None:
        results.append(await ctx.disable("b"))

    engine = make_engine([SimpleStep(name="a", run=disable_b, state=None), logging_step([], "b")])
    await engine.run()
    await engine.run()
    assert results == [["b"], []]


async def test_inserted_steps_run_right_after_the_inserting_step(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    log: list[str] = []

    def plan(ctx: StepContext) -> None:
        log.append("plan")
        ctx.insert_after(logging_step(log, "x"), logging_step(log, "y"))

    group = GroupedSteps(
        name="g", steps=[SimpleStep(name="plan", run=plan), logging_step(log, "z")]
    )
    await make_engine([group, logging_step(log, "after")]).run()
    assert log == ["plan", "x", "y", "z", "after"]
    assert keeper.states["plan"].inserted == ("x", "y")


async def test_the_inserting_step_runs_again_while_an_inserted_step_has_not_succeeded(
    make_engine: EngineFactory, keeper: MemoryStateKeeper, transitions: Transitions
) -> None:
    calls = {"plan": 0, "x": 0}

    def plan(ctx: StepContext) -> None:
        calls["plan"] += 1
        ctx.insert_after(SimpleStep(name="x", run=flaky))

    def flaky() -> None:
        calls["x"] += 1
        if calls["x"] == 1:
            raise WaitError("not yet", 1)

    engine = make_engine([SimpleStep(name="plan", run=plan)])
    first = await engine.run()
    second = await engine.run()
    third = await engine.run()
    assert [o.kind for o in (first, second, third)] == [
        OutcomeKind.WAIT,
        OutcomeKind.DONE,
        OutcomeKind.DONE,
    ]
    assert calls == {"plan": 2, "x": 2}
    assert keeper.states["x"].status is StepStatus.SUCCEEDED


async def test_inserting_a_step_with_a_taken_name_fails_the_inserting_step(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    def plan(ctx: StepContext) -> None:
        ctx.insert_after(SimpleStep(name="other", run=list))

    outcome = await make_engine(
        [SimpleStep(name="plan", run=plan), SimpleStep(name="other", run=list)]
    ).run()
    assert (outcome.kind, outcome.step) == (OutcomeKind.FAILED, "plan")
    assert keeper.states["plan"].status is StepStatus.FAILED


async def test_an_inserted_step_with_its_own_state_name_does_not_rerun_the_inserting_step(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    calls: list[str] = []

    def plan(ctx: StepContext) -> None:
        calls.append("plan")
        ctx.insert_after(SimpleStep(name="x", run=list, state=State(name="XDone")))

    engine = make_engine([SimpleStep(name="plan", run=plan)])
    for _ in range(3):
        await engine.run()
    assert calls == ["plan"]
    assert keeper.states["XDone"].status is StepStatus.SUCCEEDED


async def test_an_inserted_step_without_state_does_not_rerun_the_inserting_step(
    make_engine: EngineFactory,
) -> None:
    calls: list[str] = []

    def plan(ctx: StepContext) -> None:
        calls.append("plan")
        ctx.insert_after(SimpleStep(name="x", run=lambda: calls.append("x"), state=None))

    engine = make_engine([SimpleStep(name="plan", run=plan)])
    await engine.run()
    await engine.run()
    assert calls == ["plan", "x"]
