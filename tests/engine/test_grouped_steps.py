"""GroupedSteps: a nested sequence that is one step to its parent."""

from __future__ import annotations

import pytest

from kubesteps import (
    DefinitionError,
    ExpectedError,
    GroupedSteps,
    MemoryStateKeeper,
    OutcomeKind,
    RetryPolicy,
    SimpleStep,
    StepContext,
    StepStatus,
    always,
)

from .conftest import EngineFactory, Transitions


def recorder(log: list[str], name: str, **options: object) -> SimpleStep:
    return SimpleStep(name=name, run=lambda: log.append(name), **options)  # type: ignore[arg-type]


def failing(name: str) -> SimpleStep:
    def run() -> None:
        raise RuntimeError(f"{name} broke")

    return SimpleStep(name=name, run=run, retry=RetryPolicy(limit=1))


async def test_a_group_runs_its_steps_in_order_and_succeeds(
    make_engine: EngineFactory, keeper: MemoryStateKeeper, transitions: Transitions
) -> None:
    log: list[str] = []
    group = GroupedSteps(name="g", steps=[recorder(log, "a"), recorder(log, "b")])
    outcome = await make_engine([group, recorder(log, "after")]).run()
    assert (outcome.kind, log) == (OutcomeKind.DONE, ["a", "b", "after"])
    assert transitions.of("g") == ["running", "succeeded"]


async def test_finish_on_success_inside_a_group_ends_only_the_group(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    log: list[str] = []
    group = GroupedSteps(
        name="g", steps=[recorder(log, "a", finish_on_success=True), recorder(log, "b")]
    )
    await make_engine([group, recorder(log, "after")]).run()
    assert log == ["a", "after"]
    assert keeper.states["g"].status is StepStatus.SUCCEEDED
    assert "b" not in keeper.states


async def test_finish_on_success_at_top_level_ends_the_run_done(
    make_engine: EngineFactory,
) -> None:
    log: list[str] = []
    outcome = await make_engine(
        [recorder(log, "a", finish_on_success=True), recorder(log, "b")]
    ).run()
    assert (outcome.kind, log) == (OutcomeKind.DONE, ["a"])


async def test_a_group_with_finish_on_success_ends_the_run(make_engine: EngineFactory) -> None:
    log: list[str] = []
    group = GroupedSteps(name="g", steps=[recorder(log, "a")], finish_on_success=True)
    await make_engine([group, recorder(log, "after")]).run()
    assert log == ["a"]


async def test_a_childs_failure_fails_the_group_and_the_outcome_names_the_child(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    log: list[str] = []
    group = GroupedSteps(name="g", steps=[failing("inner"), recorder(log, "b")])
    outcome = await make_engine([group]).run()
    assert (outcome.kind, outcome.step, outcome.message) == (
        OutcomeKind.FAILED,
        "inner",
        "inner broke",
    )
    assert log == []
    assert keeper.states["g"].status is StepStatus.FAILED
    assert "inner" in keeper.states["g"].message


async def test_the_groups_on_fail_is_called_when_a_child_fails(
    make_engine: EngineFactory,
) -> None:
    calls: list[str] = []

    def on_fail(ctx: StepContext, name: str, err: BaseException) -> None:
        calls.append(name)

    group = GroupedSteps(name="g", steps=[failing("inner")], on_fail=on_fail)
    await make_engine([group]).run()
    assert calls == ["g"]


async def test_a_group_with_continue_on_error_lets_the_run_carry_on(
    make_engine: EngineFactory,
) -> None:
    log: list[str] = []
    group = GroupedSteps(name="g", steps=[failing("inner")], continue_on_error=True)
    outcome = await make_engine([group, recorder(log, "after")]).run()
    assert (outcome.kind, log) == (OutcomeKind.DONE, ["after"])


async def test_an_expected_error_in_a_child_is_absorbed_inside_the_group(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    log: list[str] = []

    def fine() -> None:
        raise ExpectedError("nothing to do")

    group = GroupedSteps(name="g", steps=[SimpleStep(name="a", run=fine), recorder(log, "b")])
    await make_engine([group]).run()
    assert log == ["b"]
    assert keeper.states["g"].status is StepStatus.SUCCEEDED


async def test_a_succeeded_group_is_skipped_without_running_its_children(
    make_engine: EngineFactory,
) -> None:
    log: list[str] = []
    engine = make_engine([GroupedSteps(name="g", steps=[recorder(log, "a")])])
    await engine.run()
    await engine.run()
    assert log == ["a"]


async def test_a_group_resumes_after_its_succeeded_children(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    log: list[str] = []
    ready = {"b": False}
    group = GroupedSteps(
        name="g",
        steps=[
            recorder(log, "a"),
            SimpleStep(
                name="b",
                run=lambda: log.append("b"),
                predicates=[lambda: ready["b"]],
                abort_on_predicates_false=True,
            ),
        ],
    )
    engine = make_engine([group])
    first = await engine.run()
    ready["b"] = True
    second = await engine.run()
    assert (first.kind, second.kind) == (OutcomeKind.ABORTED, OutcomeKind.DONE)
    assert log == ["a", "b"]


async def test_a_childs_predicate_abort_aborts_the_whole_run(
    make_engine: EngineFactory,
) -> None:
    log: list[str] = []
    group = GroupedSteps(
        name="g",
        steps=[
            SimpleStep(
                name="a", run=list, predicates=[always(False)], abort_on_predicates_false=True
            )
        ],
    )
    outcome = await make_engine([group, recorder(log, "after")]).run()
    assert (outcome.kind, outcome.step, log) == (OutcomeKind.ABORTED, "a", [])


async def test_a_group_with_predicates_false_skips_its_children(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    log: list[str] = []
    group = GroupedSteps(name="g", steps=[recorder(log, "a")], predicates=[always(False)])
    await make_engine([group]).run()
    assert log == []
    assert keeper.states["g"].status is StepStatus.SKIPPED


def test_an_empty_group_is_rejected() -> None:
    with pytest.raises(DefinitionError, match="at least one step"):
        GroupedSteps(name="g", steps=[])
