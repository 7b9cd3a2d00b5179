"""SwitchSteps: exactly one case runs, the first whose predicates hold; the rest are
recorded as not taken; a case that started stays the one taken."""

from __future__ import annotations

from datetime import timedelta

import pytest

from kubesteps import (
    Case,
    DefinitionError,
    MemoryStateKeeper,
    OutcomeKind,
    SimpleStep,
    StepStatus,
    SwitchSteps,
    WaitError,
)

from .conftest import EngineFactory


def recorder(calls: list[str], name: str) -> SimpleStep:
    return SimpleStep(name=name, run=lambda: calls.append(name))


async def test_the_first_case_whose_predicates_hold_runs_and_the_others_are_not_taken(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    calls: list[str] = []
    switch = SwitchSteps(
        name="region",
        cases=[
            Case(step=recorder(calls, "eu"), when=[lambda: False]),
            Case(step=recorder(calls, "us"), when=[lambda: True]),
            Case(step=recorder(calls, "fallback")),
        ],
    )

    outcome = await make_engine([switch]).run()

    assert outcome.kind is OutcomeKind.DONE
    assert calls == ["us"]
    for name in ("eu", "fallback"):
        state = keeper.states[name]
        assert (state.status, state.reason) == (StepStatus.SKIPPED, "NotTaken")
        assert state.message == "another case was taken: 'us'"
    assert keeper.states["region"].status is StepStatus.SUCCEEDED


async def test_the_default_runs_when_no_other_case_holds(
    make_engine: EngineFactory,
) -> None:
    calls: list[str] = []
    switch = SwitchSteps(
        name="s",
        cases=[
            Case(step=recorder(calls, "a"), when=[lambda: False]),
            Case(step=recorder(calls, "b")),
        ],
    )
    await make_engine([switch]).run()
    assert calls == ["b"]


async def test_with_no_case_taken_the_switch_is_skipped(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    calls: list[str] = []
    switch = SwitchSteps(name="s", cases=[Case(step=recorder(calls, "a"), when=[lambda: False])])

    assert (await make_engine([switch]).run()).kind is OutcomeKind.DONE

    assert calls == []
    state = keeper.states["s"]
    assert (state.status, state.reason, state.message) == (
        StepStatus.SKIPPED,
        "NoCaseTaken",
        "no case was taken",
    )


async def test_a_case_that_started_stays_taken_though_another_holds_later(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    region = {"name": "eu"}
    finished = {"eu": False}

    def deploy_eu() -> None:
        if not finished["eu"]:
            raise WaitError("rolling out", timedelta(seconds=5))

    switch = SwitchSteps(
        name="deploy",
        cases=[
            Case(step=SimpleStep(name="eu", run=deploy_eu), when=[lambda: region["name"] == "eu"]),
            Case(step=SimpleStep(name="us", run=list), when=[lambda: region["name"] == "us"]),
        ],
    )
    engine = make_engine([switch])
    assert (await engine.run()).kind is OutcomeKind.WAIT
    region["name"] = "us"
    finished["eu"] = True

    assert (await engine.run()).kind is OutcomeKind.DONE

    assert keeper.states["eu"].status is StepStatus.SUCCEEDED
    assert keeper.states["us"].reason == "NotTaken"


def test_only_the_last_case_may_go_without_predicates() -> None:
    with pytest.raises(DefinitionError, match="only the last case of switch 's'"):
        SwitchSteps(
            name="s",
            cases=[
                Case(step=SimpleStep(name="a", run=list)),
                Case(step=SimpleStep(name="b", run=list)),
            ],
        )


async def test_a_case_predicate_that_raises_fails_the_switch_naming_it(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    def broken() -> bool:
        raise KeyError("params")

    switch = SwitchSteps(name="s", cases=[Case(step=SimpleStep(name="a", run=list), when=[broken])])
    assert (await make_engine([switch]).run()).kind is OutcomeKind.FAILED
    assert keeper.states["s"].status is StepStatus.FAILED
    assert "cases" in keeper.states["s"].message
