"""Per-step and per-run timeouts, and cancellation of a run from outside."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from kubesteps import (
    DefinitionError,
    GroupedSteps,
    MemoryStateKeeper,
    OutcomeKind,
    SimpleStep,
    StepState,
    StepStatus,
    StepTimeoutError,
)

from .conftest import START, EngineFactory, FakeClock, Transitions


async def forever() -> None:
    await asyncio.Event().wait()


async def test_a_step_over_its_timeout_is_a_failed_attempt_and_retried(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    step = SimpleStep(name="a", run=forever, timeout=timedelta(milliseconds=10))
    outcome = await make_engine([step]).run()
    assert (outcome.kind, outcome.step) == (OutcomeKind.RETRY, "a")
    assert isinstance(outcome.error, StepTimeoutError)
    state = keeper.states["a"]
    assert (state.status, state.attempts) == (StepStatus.RETRYING, 1)
    assert "timed out after 10ms" in state.message


async def test_a_timeout_raised_by_the_step_itself_is_an_ordinary_error(
    make_engine: EngineFactory,
) -> None:
    def run() -> None:
        raise TimeoutError("upstream timed out")

    outcome = await make_engine([SimpleStep(name="a", run=run, timeout=timedelta(hours=1))]).run()
    assert outcome.kind is OutcomeKind.RETRY
    assert not isinstance(outcome.error, StepTimeoutError)


async def test_the_run_timeout_stops_the_running_step_as_a_failed_attempt(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    engine = make_engine(
        [SimpleStep(name="a", run=forever), SimpleStep(name="b", run=list)],
        run_timeout=timedelta(milliseconds=10),
    )
    outcome = await engine.run()
    assert (outcome.kind, outcome.step) == (OutcomeKind.RETRY, "a")
    assert isinstance(outcome.error, StepTimeoutError)
    assert keeper.states["a"].status is StepStatus.RETRYING
    assert "b" not in keeper.states


async def test_the_run_timeout_applies_to_steps_nested_in_groups(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    group = GroupedSteps(name="g", steps=[SimpleStep(name="a", run=forever)])
    outcome = await make_engine([group], run_timeout=timedelta(milliseconds=10)).run()
    assert outcome.kind is OutcomeKind.RETRY
    assert keeper.states["a"].status is StepStatus.RETRYING


def test_a_timeout_of_zero_is_rejected() -> None:
    with pytest.raises(DefinitionError, match="timeout: must be > 0"):
        SimpleStep(name="a", run=list, timeout=timedelta(0))


def test_a_run_timeout_of_zero_is_rejected(make_engine: EngineFactory) -> None:
    with pytest.raises(DefinitionError, match="run_timeout: must be > 0"):
        make_engine([SimpleStep(name="a", run=list)], run_timeout=timedelta(0))


class FlushCounter(MemoryStateKeeper):
    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0

    async def flush(self) -> None:
        self.flushes += 1


async def test_cancelling_a_run_restores_the_running_steps_state_flushes_and_propagates(
    make_engine: EngineFactory, transitions: Transitions
) -> None:
    keeper = FlushCounter()
    before = StepState(name="a", status=StepStatus.WAITING, reason="Waiting", message="pods")
    keeper.states["a"] = before
    started = asyncio.Event()

    async def run() -> None:
        started.set()
        await forever()

    task = asyncio.create_task(make_engine([SimpleStep(name="a", run=run)], keeper=keeper).run())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert keeper.states["a"] == before
    assert transitions.of("a") == ["running", "waiting"]
    assert keeper.flushes == 1


async def test_cancelling_a_run_restores_the_group_and_its_running_child(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    started = asyncio.Event()

    async def run() -> None:
        started.set()
        await forever()

    engine = make_engine([GroupedSteps(name="g", steps=[SimpleStep(name="a", run=run)])])
    task = asyncio.create_task(engine.run())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert keeper.states["g"].status is StepStatus.PENDING
    assert keeper.states["a"].status is StepStatus.PENDING


class FailsToRestore(MemoryStateKeeper):
    async def set_step_state(self, state: StepState) -> None:
        if state.status is StepStatus.PENDING:
            raise OSError("disk full")
        await super().set_step_state(state)


async def test_cancellation_propagates_even_when_the_keeper_cannot_restore_the_state(
    make_engine: EngineFactory,
) -> None:
    started = asyncio.Event()

    async def run() -> None:
        started.set()
        await forever()

    engine = make_engine([SimpleStep(name="a", run=run)], keeper=FailsToRestore())
    task = asyncio.create_task(engine.run())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# -- an attempt that waits over several runs (reconcile passes) ----------------------------


async def test_a_waiting_attempt_is_timed_from_its_start_across_runs(
    make_engine: EngineFactory, keeper: MemoryStateKeeper, clock: FakeClock
) -> None:
    """A step that waits by requeue is bounded by its timeout as a whole, not per pass."""
    from kubesteps import RetryPolicy, WaitError

    calls = []

    def poll() -> None:
        calls.append(clock.now)
        raise WaitError("not there yet", timedelta(minutes=1))

    step = SimpleStep(name="a", run=poll, timeout=timedelta(minutes=2), retry=RetryPolicy(limit=1))
    engine = make_engine([step])
    assert (await engine.run()).kind is OutcomeKind.WAIT
    clock.advance(60)
    assert (await engine.run()).kind is OutcomeKind.WAIT
    assert keeper.states["a"].attempt_started_at == calls[0]

    clock.advance(61)
    outcome = await engine.run()

    assert len(calls) == 3, "past its deadline the step gets one last look"
    assert outcome.kind is OutcomeKind.FAILED, "and as it would wait on, it timed out"
    state = keeper.states["a"]
    assert state.status is StepStatus.FAILED
    assert "timed out after 2m (the attempt ran 2m1s)" in state.message


async def test_a_wait_is_cut_short_so_the_attempt_deadline_is_checked_on_time(
    make_engine: EngineFactory, keeper: MemoryStateKeeper, clock: FakeClock
) -> None:
    from kubesteps import WaitError

    def poll() -> None:
        raise WaitError("slow", timedelta(minutes=10))

    engine = make_engine([SimpleStep(name="a", run=poll, timeout=timedelta(minutes=2))])
    first = await engine.run()
    assert first.delay == pytest.approx(120)
    clock.advance(90)
    second = await engine.run()
    assert second.delay == pytest.approx(30)
    assert keeper.states["a"].next_run_at == clock.now + timedelta(seconds=30)


async def test_after_a_timed_out_attempt_the_retry_gets_a_fresh_timeout(
    make_engine: EngineFactory, keeper: MemoryStateKeeper, clock: FakeClock
) -> None:
    from kubesteps import WaitError

    def poll() -> None:
        raise WaitError("slow", timedelta(minutes=5))

    engine = make_engine([SimpleStep(name="a", run=poll, timeout=timedelta(minutes=1))])
    await engine.run()
    clock.advance(60)
    timed_out = await engine.run()
    assert timed_out.kind is OutcomeKind.RETRY
    assert keeper.states["a"].status is StepStatus.RETRYING
    clock.advance(2)  # the policy's backoff

    again = await engine.run()

    assert again.kind is OutcomeKind.WAIT
    state = keeper.states["a"]
    assert state.attempts == 1, "the second attempt is waiting (a wait counts no attempt)"
    assert state.attempt_started_at == clock.now
    assert state.started_at == START, "the streak still began with the first attempt"


async def test_a_permanent_error_may_name_its_reason_and_keep_outputs(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    from kubesteps import PermanentError

    def reject() -> None:
        raise PermanentError("rejected by bob", reason="Rejected", outputs={"rejectedBy": "bob"})

    outcome = await make_engine([SimpleStep(name="gate", run=reject)]).run()

    assert outcome.kind is OutcomeKind.FAILED
    state = keeper.states["gate"]
    assert (state.reason, state.outputs) == ("Rejected", {"rejectedBy": "bob"})


async def test_work_done_before_the_deadline_counts_at_the_last_look_after_it(
    make_engine: EngineFactory, keeper: MemoryStateKeeper, clock: FakeClock
) -> None:
    from kubesteps import WaitError

    done_at = START + timedelta(seconds=50)

    def poll() -> dict[str, str]:
        if clock.now < done_at:
            raise WaitError("running", timedelta(seconds=45))
        return {"result": "ok"}

    engine = make_engine([SimpleStep(name="a", run=poll, timeout=timedelta(minutes=1))])
    await engine.run()
    clock.advance(45)
    await engine.run()
    clock.advance(20)  # the next look is due at the deadline, and comes a little after it

    outcome = await engine.run()

    assert outcome.kind is OutcomeKind.DONE
    assert keeper.states["a"].outputs == {"result": "ok"}


async def test_a_finish_only_run_starts_no_step_afresh(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    from kubesteps import WaitError

    state = {"done": False}

    def poll() -> None:
        if not state["done"]:
            raise WaitError("running", timedelta(seconds=5))

    started = []
    engine = make_engine(
        [SimpleStep(name="a", run=poll), SimpleStep(name="b", run=lambda: started.append("b"))]
    )
    await engine.run()
    state["done"] = True

    outcome = await engine.run(finish_only=True)

    assert (outcome.kind, outcome.step) == (OutcomeKind.RETRY, "b")
    assert keeper.states["a"].status is StepStatus.SUCCEEDED
    assert started == []
