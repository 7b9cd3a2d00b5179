"""Predicates: evaluation, skip or abort, the helpers and their combinators."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from kubesteps import (
    MemoryStateKeeper,
    OutcomeKind,
    Predicate,
    SimpleStep,
    StepContext,
    StepsEngine,
    StepState,
    StepStatus,
    always,
    and_,
    is_not_true_condition,
    is_true_condition,
    not_,
    or_,
    step_failed,
    step_in,
    step_succeeded,
)

from .conftest import EngineFactory


async def holds(predicate: Predicate, keeper: MemoryStateKeeper | None = None) -> bool:
    """Whether ``predicate`` lets a step run, as the engine sees it."""
    ran: list[bool] = []
    step = SimpleStep(
        name="probe", run=lambda: ran.append(True), predicates=[predicate], state=None
    )
    await StepsEngine([step], keeper=keeper or MemoryStateKeeper()).run()
    return bool(ran)


def counting(value: bool, log: list[bool]) -> Callable[[], bool]:
    def check() -> bool:
        log.append(value)
        return value

    return check


# -- in the engine -------------------------------------------------------------------


async def test_a_false_predicate_skips_the_step_and_later_steps_run(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    ran: list[str] = []
    outcome = await make_engine(
        [
            SimpleStep(name="a", run=lambda: ran.append("a"), predicates=[always(False)]),
            SimpleStep(name="b", run=lambda: ran.append("b")),
        ]
    ).run()
    assert (outcome.kind, ran) == (OutcomeKind.DONE, ["b"])
    state = keeper.states["a"]
    assert (state.status, state.reason) == (StepStatus.SKIPPED, "PredicateFalse")
    assert "always(False)" in state.message


async def test_abort_on_predicates_false_aborts_the_run_naming_the_step(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    ran: list[str] = []
    outcome = await make_engine(
        [
            SimpleStep(
                name="a", run=list, predicates=[always(False)], abort_on_predicates_false=True
            ),
            SimpleStep(name="b", run=lambda: ran.append("b")),
        ]
    ).run()
    assert (outcome.kind, outcome.step, ran) == (OutcomeKind.ABORTED, "a", [])
    assert "always(False)" in outcome.message
    assert keeper.states["a"].reason == "AbortedByPredicate"


async def test_a_step_that_skipped_runs_once_its_predicate_turns_true(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    flag = {"ready": False}
    engine = make_engine([SimpleStep(name="a", run=list, predicates=[lambda: flag["ready"]])])
    await engine.run()
    flag["ready"] = True
    await engine.run()
    assert keeper.states["a"].status is StepStatus.SUCCEEDED


async def test_predicates_may_be_sync_or_async_with_or_without_context() -> None:
    seen: list[str] = []

    def sync_plain() -> bool:
        seen.append("sync_plain")
        return True

    def sync_ctx(ctx: StepContext) -> bool:
        seen.append(f"sync_ctx:{ctx.name}")
        return True

    async def async_plain() -> bool:
        seen.append("async_plain")
        return True

    async def async_ctx(ctx: StepContext) -> bool:
        await asyncio.sleep(0)
        seen.append(f"async_ctx:{ctx.name}")
        return True

    assert await holds(and_(sync_plain, sync_ctx, async_plain, async_ctx))
    assert seen == ["sync_plain", "sync_ctx:probe", "async_plain", "async_ctx:probe"]


async def test_predicates_are_evaluated_in_order_and_stop_at_the_first_false(
    make_engine: EngineFactory,
) -> None:
    log: list[bool] = []
    step = SimpleStep(
        name="a",
        run=list,
        predicates=[counting(True, log), counting(False, log), counting(True, log)],
    )
    await make_engine([step]).run()
    assert log == [True, False]


async def test_a_predicate_that_raises_fails_the_step_naming_the_predicate(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    def cluster_is_reachable() -> bool:
        raise ConnectionError("no route")

    outcome = await make_engine(
        [SimpleStep(name="a", run=list, predicates=[cluster_is_reachable])]
    ).run()
    assert outcome.kind is OutcomeKind.FAILED
    state = keeper.states["a"]
    assert state.status is StepStatus.FAILED
    assert "cluster_is_reachable" in state.message
    assert "no route" in state.message


async def test_a_predicate_returning_a_non_bool_fails_the_step_naming_it(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    def replicas() -> Any:
        return 3

    outcome = await make_engine([SimpleStep(name="a", run=list, predicates=[replicas])]).run()
    assert outcome.kind is OutcomeKind.FAILED
    assert "replicas" in keeper.states["a"].message
    assert "not a bool" in keeper.states["a"].message


# -- helpers -------------------------------------------------------------------------


async def test_empty_and_is_true_and_empty_or_is_false() -> None:
    assert await holds(and_()) is True
    assert await holds(or_()) is False


async def test_and_stops_at_the_first_false() -> None:
    log: list[bool] = []
    assert not await holds(and_(counting(False, log), counting(True, log)))
    assert log == [False]


async def test_or_stops_at_the_first_true() -> None:
    log: list[bool] = []
    assert await holds(or_(counting(True, log), counting(False, log)))
    assert log == [True]


async def test_not_negates() -> None:
    assert await holds(not_(always(False)))
    assert not await holds(not_(always(True)))


async def test_combinators_describe_what_they_combine() -> None:
    described = and_(always(True), not_(or_(always(False))))
    assert getattr(described, "__qualname__", "") == (
        "and_(always(True), not_(or_(always(False))))"
    )


async def test_condition_helpers_read_the_conditions_when_evaluated() -> None:
    conditions: list[dict[str, str]] = []
    ready = is_true_condition("Ready", conditions)
    not_ready = is_not_true_condition("Ready", conditions)
    assert (await holds(ready), await holds(not_ready)) == (False, True)
    conditions.append({"type": "Ready", "status": "True"})
    assert (await holds(ready), await holds(not_ready)) == (True, False)
    conditions[0]["status"] = "Unknown"
    assert (await holds(ready), await holds(not_ready)) == (False, True)


async def test_condition_helpers_accept_a_callable_returning_the_conditions() -> None:
    source: dict[str, list[dict[str, str]] | None] = {"conditions": None}
    ready = is_true_condition("Ready", lambda: source["conditions"])
    assert not await holds(ready)
    source["conditions"] = [{"type": "Ready", "status": "True"}]
    assert await holds(ready)


async def test_step_state_helpers_read_other_steps_states_when_evaluated() -> None:
    keeper = MemoryStateKeeper()
    succeeded, failed = step_succeeded("other"), step_failed("other")
    waiting_or_retrying = step_in("other", StepStatus.WAITING, StepStatus.RETRYING)
    assert [await holds(p, keeper) for p in (succeeded, failed, waiting_or_retrying)] == [
        False,
        False,
        False,
    ]
    keeper.states["other"] = StepState(name="other", status=StepStatus.RETRYING)
    assert [await holds(p, keeper) for p in (succeeded, failed, waiting_or_retrying)] == [
        False,
        False,
        True,
    ]
    keeper.states["other"] = StepState(name="other", status=StepStatus.SUCCEEDED)
    assert await holds(succeeded, keeper)


async def test_step_in_treats_an_unknown_step_as_pending() -> None:
    assert await holds(step_in("nobody", StepStatus.PENDING))


# -- properties of the combinators ---------------------------------------------------

booleans = st.lists(st.booleans(), max_size=8)


def evaluate(predicate: Predicate) -> bool:
    return asyncio.run(holds(predicate))


@given(booleans)
def test_and_agrees_with_all(values: list[bool]) -> None:
    assert evaluate(and_(*(always(v) for v in values))) is all(values)


@given(booleans)
def test_or_agrees_with_any(values: list[bool]) -> None:
    assert evaluate(or_(*(always(v) for v in values))) is any(values)


@given(st.booleans())
def test_not_agrees_with_not(value: bool) -> None:
    assert evaluate(not_(always(value))) is (not value)


@given(booleans)
def test_de_morgan_holds(values: list[bool]) -> None:
    preds = [always(v) for v in values]
    assert evaluate(not_(and_(*preds))) is evaluate(or_(*(not_(p) for p in preds)))
    assert evaluate(not_(or_(*preds))) is evaluate(and_(*(not_(p) for p in preds)))


@given(booleans)
def test_and_evaluates_up_to_the_first_false_only(values: list[bool]) -> None:
    log: list[bool] = []
    evaluate(and_(*(counting(v, log) for v in values)))
    expected = values[: values.index(False) + 1] if False in values else values
    assert log == expected


@given(booleans)
def test_or_evaluates_up_to_the_first_true_only(values: list[bool]) -> None:
    log: list[bool] = []
    evaluate(or_(*(counting(v, log) for v in values)))
    expected = values[: values.index(True) + 1] if True in values else values
    assert log == expected
