"""Step state: what is recorded, when a step is skipped by it, and name checks."""

from __future__ import annotations

import asyncio

import pytest

from kubesteps import (
    DefinitionError,
    GroupedSteps,
    MemoryStateKeeper,
    OutcomeKind,
    SimpleStep,
    State,
    StepsEngine,
    StepState,
    StepStatus,
    always,
)

from .conftest import EngineFactory, Transitions


async def test_a_step_that_never_suspends_records_only_its_success(
    make_engine: EngineFactory, transitions: Transitions
) -> None:
    async def quick() -> None:
        return None

    await make_engine(
        [SimpleStep(name="a", run=lambda: None), SimpleStep(name="b", run=quick)]
    ).run()
    assert transitions.of("a") == ["succeeded"]
    assert transitions.of("b") == ["succeeded"]


async def test_a_step_that_suspends_is_recorded_running_while_it_is_suspended(
    make_engine: EngineFactory, keeper: MemoryStateKeeper, transitions: Transitions
) -> None:
    seen: list[StepStatus | None] = []

    async def slow() -> None:
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    async def watch() -> None:
        while "a" not in keeper.states or keeper.states["a"].status is not StepStatus.SUCCEEDED:
            state = keeper.states.get("a")
            seen.append(state.status if state is not None else None)
            await asyncio.sleep(0)

    watcher = asyncio.ensure_future(watch())
    await make_engine([SimpleStep(name="a", run=slow)]).run()
    await watcher
    assert transitions.of("a") == ["running", "succeeded"]
    assert StepStatus.RUNNING in seen
    assert keeper.states["a"].attempts == 1


async def test_success_defaults_reason_succeeded_and_message_completed(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    await make_engine([SimpleStep(name="a", run=lambda: None)]).run()
    state = keeper.states["a"]
    assert (state.reason, state.message, state.attempts) == ("Succeeded", "completed", 1)


async def test_state_option_sets_the_key_and_the_success_reason_and_message(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    step = SimpleStep(
        name="a", run=lambda: None, state=State(name="CrdsReady", reason="Ok", message="ready")
    )
    await make_engine([step]).run()
    state = keeper.states["CrdsReady"]
    assert (state.status, state.reason, state.message) == (StepStatus.SUCCEEDED, "Ok", "ready")
    assert "a" not in keeper.states


async def test_a_succeeded_step_is_skipped_without_evaluating_its_predicates(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    evaluated: list[str] = []
    ran: list[str] = []

    def predicate() -> bool:
        evaluated.append("p")
        return True

    keeper.states["a"] = StepState(name="a", status=StepStatus.SUCCEEDED)
    step = SimpleStep(name="a", run=lambda: ran.append("a"), predicates=[predicate])
    outcome = await make_engine([step]).run()
    assert (outcome.kind, evaluated, ran) == (OutcomeKind.DONE, [], [])


async def test_skip_state_check_runs_a_succeeded_step_again(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    ran: list[str] = []
    keeper.states["a"] = StepState(name="a", status=StepStatus.SUCCEEDED)
    await make_engine(
        [SimpleStep(name="a", run=lambda: ran.append("a"), skip_state_check=True)]
    ).run()
    assert ran == ["a"]


async def test_a_second_pass_runs_nothing_and_writes_nothing_after_success(
    make_engine: EngineFactory, transitions: Transitions
) -> None:
    ran: list[str] = []
    engine = make_engine([SimpleStep(name="a", run=lambda: ran.append("a"))])
    await engine.run()
    transitions.clear()
    outcome = await engine.run()
    assert (outcome.kind, ran, transitions.seen) == (OutcomeKind.DONE, ["a"], [])


async def test_a_repeated_pass_writes_a_predicate_skip_only_once(
    make_engine: EngineFactory, transitions: Transitions, keeper: MemoryStateKeeper
) -> None:
    engine = make_engine([SimpleStep(name="a", run=list, predicates=[always(False)])])
    await engine.run()
    await engine.run()
    assert transitions.of("a") == ["skipped"]
    assert keeper.states["a"].reason == "PredicateFalse"


async def test_a_step_without_state_runs_on_every_pass_and_records_nothing(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    ran: list[str] = []
    engine = make_engine([SimpleStep(name="a", run=lambda: ran.append("a"), state=None)])
    await engine.run()
    await engine.run()
    assert ran == ["a", "a"]
    assert keeper.states == {}


def test_every_status_has_its_lowercase_name() -> None:
    assert [s.value for s in StepStatus] == [
        "pending",
        "running",
        "waiting",
        "retrying",
        "succeeded",
        "failed",
        "skipped",
        "throttled",
    ]


def test_duplicate_step_names_are_rejected_before_running() -> None:
    with pytest.raises(DefinitionError, match=r"'a'.*more than one step"):
        StepsEngine([SimpleStep(name="a", run=list), SimpleStep(name="a", run=list)])


def test_duplicate_names_inside_nested_groups_are_rejected() -> None:
    inner = GroupedSteps(name="g", steps=[SimpleStep(name="a", run=list)])
    with pytest.raises(DefinitionError, match="more than one step"):
        StepsEngine([SimpleStep(name="a", run=list), inner])


def test_duplicate_state_names_are_rejected_naming_the_state() -> None:
    with pytest.raises(DefinitionError, match="state name 'Shared' is already used"):
        StepsEngine(
            [
                SimpleStep(name="a", run=list, state=State(name="Shared")),
                SimpleStep(name="b", run=list, state=State(name="Shared")),
            ]
        )


def test_a_state_name_may_not_reuse_another_steps_name() -> None:
    with pytest.raises(DefinitionError, match=r"state\.name: state name 'a'"):
        StepsEngine(
            [SimpleStep(name="a", run=list), SimpleStep(name="b", run=list, state=State(name="a"))]
        )


def test_skip_state_check_without_state_is_rejected() -> None:
    with pytest.raises(DefinitionError, match="skip_state_check"):
        SimpleStep(name="a", run=list, state=None, skip_state_check=True)


def test_a_non_step_in_the_list_is_rejected() -> None:
    with pytest.raises(DefinitionError, match="not a Step"):
        StepsEngine([lambda: None])  # type: ignore[list-item]


def test_step_state_is_immutable_and_evolves_into_a_new_value() -> None:
    first = StepState(name="a")
    second = first.evolve(status=StepStatus.RUNNING)
    assert (first.status, second.status) == (StepStatus.PENDING, StepStatus.RUNNING)
    with pytest.raises(AttributeError):
        first.status = StepStatus.FAILED  # type: ignore[misc]


def test_done_covers_succeeded_skipped_and_throttled_only() -> None:
    done = {s for s in StepStatus if StepState(name="a", status=s).done}
    assert done == {StepStatus.SUCCEEDED, StepStatus.SKIPPED, StepStatus.THROTTLED}


def test_evolve_rejects_an_unknown_field() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        StepState(name="a").evolve(colour="red")


def test_evolve_keeps_every_field_it_is_not_told_to_change() -> None:
    full = StepState(
        name="a",
        reason="r",
        message="m",
        attempts=3,
        outputs={"k": 1},
        disabled=True,
        inserted=("x",),
    )
    assert full.evolve(status=StepStatus.FAILED) == StepState(
        name="a",
        status=StepStatus.FAILED,
        reason="r",
        message="m",
        attempts=3,
        outputs={"k": 1},
        disabled=True,
        inserted=("x",),
    )
