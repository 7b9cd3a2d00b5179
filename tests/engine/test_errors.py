"""What each kind of error does to the step, the run and the outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from kubesteps import (
    ExpectedError,
    GroupedSteps,
    MemoryStateKeeper,
    OutcomeKind,
    PermanentError,
    RetryableError,
    RetryPolicy,
    SimpleStep,
    SQLiteStateKeeper,
    StepContext,
    StepState,
    StepStatus,
    WaitError,
)

from .conftest import EngineFactory, FakeClock, Transitions

FailCalls = list[tuple[str, BaseException]]


def raising(error: BaseException) -> SimpleStep:
    def run() -> None:
        raise error

    return SimpleStep(name="a", run=run)


def record_failures(calls: FailCalls) -> Callable[[StepContext, str, BaseException], None]:
    def on_fail(ctx: StepContext, name: str, err: BaseException) -> None:
        calls.append((name, err))

    return on_fail


# -- ExpectedError -------------------------------------------------------------------


async def test_expected_error_carries_on_with_the_next_step(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    steps = [raising(ExpectedError("fine")), SimpleStep(name="b", run=list)]
    outcome = await make_engine(steps).run()
    assert outcome.kind is OutcomeKind.DONE
    assert keeper.states["b"].status is StepStatus.SUCCEEDED


async def test_expected_error_puts_back_the_previous_state(
    make_engine: EngineFactory, keeper: MemoryStateKeeper, transitions: Transitions
) -> None:
    before = StepState(name="a", status=StepStatus.SKIPPED, reason="PredicateFalse")
    keeper.states["a"] = before
    await make_engine([raising(ExpectedError("fine"))]).run()
    assert keeper.states["a"] == before
    assert transitions.of("a") == []  # it never suspended, so nothing was written

    async def suspends() -> None:
        await asyncio.sleep(0)
        raise ExpectedError("fine")

    await make_engine([SimpleStep(name="a", run=suspends)]).run()
    assert keeper.states["a"] == before
    assert transitions.of("a") == ["running", "skipped"]


async def test_expected_error_on_a_new_step_leaves_it_pending_not_running(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    await make_engine([raising(ExpectedError("fine"))]).run()
    assert "a" not in keeper.states  # never suspended: never recorded, so still pending

    async def suspends() -> None:
        await asyncio.sleep(0)
        raise ExpectedError("fine")

    await make_engine([SimpleStep(name="b", run=suspends)]).run()
    assert keeper.states["b"].status is StepStatus.PENDING


async def test_expected_error_does_not_call_on_fail(make_engine: EngineFactory) -> None:
    calls: FailCalls = []
    step = raising(ExpectedError("fine"))
    step.on_fail = record_failures(calls)
    await make_engine([step]).run()
    assert calls == []


async def test_expected_error_is_found_through_a_from_chain(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    def run() -> None:
        try:
            raise ExpectedError("already there")
        except ExpectedError as err:
            raise RuntimeError("wrapper") from err

    outcome = await make_engine([SimpleStep(name="a", run=run)]).run()
    assert outcome.kind is OutcomeKind.DONE
    assert "a" not in keeper.states


async def test_an_error_raised_while_handling_a_wait_is_a_failure_not_a_wait(
    make_engine: EngineFactory,
) -> None:
    # Only explicit ``from`` chains count: catching a signal and raising something else
    # is the step deciding to fail.
    def run() -> None:
        try:
            raise WaitError("pods")
        except WaitError:
            raise RuntimeError("gave up") from None

    outcome = await make_engine([SimpleStep(name="a", run=run)]).run()
    assert outcome.kind is OutcomeKind.RETRY


# -- WaitError -----------------------------------------------------------------------


async def test_wait_error_records_waiting_with_reason_and_next_check(
    make_engine: EngineFactory, keeper: MemoryStateKeeper, clock: FakeClock
) -> None:
    await make_engine([raising(WaitError("pods not ready", timedelta(seconds=30)))]).run()
    state = keeper.states["a"]
    assert (state.status, state.reason) == (StepStatus.WAITING, "Waiting")
    assert "pods not ready" in state.message
    assert "2025-01-01T12:00:30" in state.message
    assert state.next_run_at == clock.now + timedelta(seconds=30)


async def test_wait_error_counts_no_attempt(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    engine = make_engine([raising(WaitError("pods", 5))])
    for _ in range(4):
        await engine.run()
    assert keeper.states["a"].attempts == 0


async def test_wait_error_does_not_call_on_fail(make_engine: EngineFactory) -> None:
    calls: FailCalls = []
    step = raising(WaitError("pods", 5))
    step.on_fail = record_failures(calls)
    await make_engine([step]).run()
    assert calls == []


async def test_wait_error_gives_outcome_wait_with_its_delay_and_stops_the_run(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    outcome = await make_engine(
        [raising(WaitError("pods", timedelta(minutes=1))), SimpleStep(name="b", run=list)]
    ).run()
    assert (outcome.kind, outcome.delay, outcome.step) == (OutcomeKind.WAIT, 60.0, "a")
    assert outcome.message == "pods"
    assert "b" not in keeper.states


async def test_wait_error_without_delay_gives_a_wait_without_delay(
    make_engine: EngineFactory,
) -> None:
    outcome = await make_engine([raising(WaitError("pods"))]).run()
    assert (outcome.kind, outcome.delay) == (OutcomeKind.WAIT, None)


async def test_wait_error_is_found_through_a_from_chain(make_engine: EngineFactory) -> None:
    def run() -> None:
        raise RuntimeError("wrapper") from WaitError("pods", 7)

    outcome = await make_engine([SimpleStep(name="a", run=run)]).run()
    assert (outcome.kind, outcome.delay) == (OutcomeKind.WAIT, 7.0)


async def test_wait_error_is_found_inside_an_exception_group(
    make_engine: EngineFactory,
) -> None:
    def run() -> None:
        raise ExceptionGroup("x", [WaitError("pods", 9)])

    outcome = await make_engine([SimpleStep(name="a", run=run)]).run()
    assert (outcome.kind, outcome.delay) == (OutcomeKind.WAIT, 9.0)


async def test_a_failure_outranks_a_wait_in_the_same_exception_group(
    make_engine: EngineFactory,
) -> None:
    def run() -> None:
        raise ExceptionGroup("x", [WaitError("pods", 9), RetryableError("flaky", 3)])

    outcome = await make_engine([SimpleStep(name="a", run=run)]).run()
    assert (outcome.kind, outcome.delay) == (OutcomeKind.RETRY, 3.0)


async def test_wait_inside_a_group_names_the_waiting_child(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    group = GroupedSteps(name="g", steps=[raising(WaitError("pods", 4))])
    outcome = await make_engine([group]).run()
    assert (outcome.kind, outcome.step, outcome.delay) == (OutcomeKind.WAIT, "a", 4.0)
    assert keeper.states["g"].status is StepStatus.WAITING
    assert "step 'a': pods" in keeper.states["g"].message


# -- retries -------------------------------------------------------------------------


async def test_unexpected_exception_records_retrying_with_the_backoff(
    make_engine: EngineFactory, keeper: MemoryStateKeeper, clock: FakeClock
) -> None:
    outcome = await make_engine([raising(ValueError("bad input"))]).run()
    # The test policy starts at 2 s without jitter.
    assert (outcome.kind, outcome.delay, outcome.step) == (OutcomeKind.RETRY, 2.0, "a")
    state = keeper.states["a"]
    assert (state.status, state.reason, state.attempts) == (StepStatus.RETRYING, "Retrying", 1)
    assert state.next_run_at == clock.now + timedelta(seconds=2)
    assert "attempt 1/3 failed: bad input" in state.message


async def test_retryable_error_retry_after_overrides_the_backoff(
    make_engine: EngineFactory,
) -> None:
    outcome = await make_engine([raising(RetryableError("429", retry_after=45))]).run()
    assert (outcome.kind, outcome.delay) == (OutcomeKind.RETRY, 45.0)


async def test_backoff_grows_with_each_attempt(
    make_engine: EngineFactory, clock: FakeClock
) -> None:
    engine = make_engine(
        [raising(ValueError("bad"))],
        retry=RetryPolicy(limit=5, initial=timedelta(seconds=1), factor=3, jitter=timedelta(0)),
    )
    delays = []
    for _ in range(3):
        outcome = await engine.run()
        assert outcome.delay is not None
        delays.append(outcome.delay)
        clock.advance(outcome.delay)
    assert delays == [1.0, 3.0, 9.0]


async def test_a_retrying_step_is_not_run_again_before_it_is_due(
    make_engine: EngineFactory, clock: FakeClock
) -> None:
    calls: list[int] = []

    def run() -> None:
        calls.append(1)
        raise ValueError("bad")

    engine = make_engine([SimpleStep(name="a", run=run)])
    await engine.run()
    clock.advance(0.5)
    outcome = await engine.run()
    assert (outcome.kind, outcome.delay, len(calls)) == (OutcomeKind.RETRY, 1.5, 1)


async def test_after_the_limit_the_step_fails_for_good(
    make_engine: EngineFactory, keeper: MemoryStateKeeper, clock: FakeClock
) -> None:
    calls: FailCalls = []
    step = raising(ValueError("bad"))
    step.on_fail = record_failures(calls)
    engine = make_engine([step])
    kinds = []
    for _ in range(3):
        outcome = await engine.run()
        kinds.append(outcome.kind)
        clock.advance(60)
    assert kinds == [OutcomeKind.RETRY, OutcomeKind.RETRY, OutcomeKind.FAILED]
    state = keeper.states["a"]
    assert (state.status, state.reason, state.attempts) == (StepStatus.FAILED, "Failed", 3)
    assert [(name, str(err)) for name, err in calls] == [("a", "bad")]


async def test_a_step_failed_for_good_is_not_run_again_and_keeps_reporting_failed(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    calls: list[int] = []

    def run() -> None:
        calls.append(1)
        raise ValueError("bad")

    engine = make_engine([SimpleStep(name="a", run=run, retry=RetryPolicy(limit=1))])
    first = await engine.run()
    second = await engine.run()
    assert (first.kind, second.kind, len(calls)) == (OutcomeKind.FAILED, OutcomeKind.FAILED, 1)
    assert second.step == "a"


async def test_continue_on_error_records_the_failure_and_carries_on(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    calls: FailCalls = []

    def run() -> None:
        raise ValueError("bad")

    step = SimpleStep(
        name="a",
        run=run,
        retry=RetryPolicy(limit=1),
        continue_on_error=True,
        on_fail=record_failures(calls),
    )
    engine = make_engine([step, SimpleStep(name="b", run=list)])
    outcome = await engine.run()
    again = await engine.run()
    assert (outcome.kind, again.kind) == (OutcomeKind.DONE, OutcomeKind.DONE)
    assert keeper.states["a"].status is StepStatus.FAILED
    assert keeper.states["b"].status is StepStatus.SUCCEEDED
    assert len(calls) == 1


async def test_failure_stops_the_run_before_later_steps(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    step = raising(ValueError("bad"))
    step.retry = RetryPolicy(limit=1)
    await make_engine([step, SimpleStep(name="b", run=list)]).run()
    assert "b" not in keeper.states


async def test_attempts_survive_a_new_engine_on_the_same_sqlite_file(
    make_engine: EngineFactory, clock: FakeClock, tmp_path: Path
) -> None:
    def run() -> None:
        raise ValueError("bad")

    path = tmp_path / "states.db"
    kinds = []
    for _ in range(3):
        keeper = SQLiteStateKeeper(path, scope="obj")
        outcome = await make_engine([SimpleStep(name="a", run=run)], keeper=keeper).run()
        kinds.append(outcome.kind)
        keeper.close()
        clock.advance(60)
    assert kinds == [OutcomeKind.RETRY, OutcomeKind.RETRY, OutcomeKind.FAILED]


async def test_an_expected_error_resets_nothing_about_the_attempt_count(
    make_engine: EngineFactory, keeper: MemoryStateKeeper, clock: FakeClock
) -> None:
    # A retrying step that then reports an expected condition keeps its earlier state.
    errors: list[BaseException] = [ValueError("bad"), ExpectedError("fine")]

    def run() -> None:
        raise errors.pop(0)

    engine = make_engine([SimpleStep(name="a", run=run)])
    await engine.run()
    clock.advance(60)
    await engine.run()
    state = keeper.states["a"]
    assert (state.status, state.attempts) == (StepStatus.RETRYING, 1)


# -- nothing a step does crashes the engine ------------------------------------------


async def test_a_step_raising_system_exit_is_a_failed_attempt(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    def run() -> None:
        raise SystemExit(3)

    outcome = await make_engine([SimpleStep(name="a", run=run)]).run()
    assert outcome.kind is OutcomeKind.RETRY
    assert keeper.states["a"].status is StepStatus.RETRYING


async def test_a_step_returning_an_unawaited_error_coroutine_still_fails_cleanly(
    make_engine: EngineFactory,
) -> None:
    async def inner() -> None:
        raise KeyError("missing")

    def run() -> object:
        return inner()  # a sync function handing back a coroutine: the engine awaits it

    outcome = await make_engine([SimpleStep(name="a", run=run)]).run()
    assert (outcome.kind, outcome.message) == (OutcomeKind.RETRY, "attempt 1/3 failed: 'missing'")


# -- PermanentError ------------------------------------------------------------------


async def test_permanent_error_fails_the_step_for_good_at_once(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    calls: FailCalls = []
    step = raising(PermanentError("spec.replicas must be >= 0"))
    step.on_fail = record_failures(calls)
    outcome = await make_engine([step]).run()
    assert (outcome.kind, outcome.step) == (OutcomeKind.FAILED, "a")
    state = keeper.states["a"]
    assert (state.status, state.attempts) == (StepStatus.FAILED, 1)
    assert [name for name, _ in calls] == ["a"]


async def test_permanent_error_is_found_through_a_from_chain(make_engine: EngineFactory) -> None:
    def run() -> None:
        raise RuntimeError("apply failed") from PermanentError("422 Invalid")

    outcome = await make_engine([SimpleStep(name="a", run=run)]).run()
    assert outcome.kind is OutcomeKind.FAILED
