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

from .conftest import EngineFactory, Transitions


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
    assert "timed out after 0.01s" in state.message


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
