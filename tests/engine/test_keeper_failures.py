"""A keeper that cannot record a state stops the run with RETRY; nothing is swallowed."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from kubesteps import (
    GroupedSteps,
    KeeperError,
    MemoryStateKeeper,
    OutcomeKind,
    ParallelSteps,
    SimpleStep,
    StepState,
    StepStatus,
    ThrottlingSettings,
)

from .conftest import EngineFactory


class BrokenKeeper(MemoryStateKeeper):
    """Fails writes of chosen statuses, the throttling store, or the flush."""

    def __init__(
        self,
        *,
        fail_status: StepStatus | None = None,
        fail_last_run: bool = False,
        fail_flush: bool = False,
    ) -> None:
        super().__init__()
        self.fail_status = fail_status
        self.fail_last_run = fail_last_run
        self.fail_flush = fail_flush

    async def set_step_state(self, state: StepState) -> None:
        if state.status is self.fail_status:
            raise OSError("disk full")
        await super().set_step_state(state)

    async def get_last_run(self, key: str) -> datetime | None:
        if self.fail_last_run:
            raise OSError("database locked")
        return await super().get_last_run(key)

    async def flush(self) -> None:
        if self.fail_flush:
            raise ConnectionError("API server gone")


async def test_a_failing_running_write_stops_the_step_where_it_first_suspends(
    make_engine: EngineFactory,
) -> None:
    ran: list[str] = []

    async def run() -> None:
        ran.append("started")
        try:
            await asyncio.sleep(0)  # `running` is recorded here
        finally:
            ran.append("closed")
        ran.append("went on")

    keeper = BrokenKeeper(fail_status=StepStatus.RUNNING)
    outcome = await make_engine(
        [SimpleStep(name="a", run=run), SimpleStep(name="b", run=list)],
        keeper=keeper,
        keeper_retry_delay=12.0,
    ).run()
    assert (outcome.kind, outcome.delay, outcome.step) == (OutcomeKind.RETRY, 12.0, "a")
    assert outcome.message == (
        "state keeper could not record state 'running' for step 'a': disk full"
    )
    assert isinstance(outcome.error, KeeperError)
    assert ran == ["started", "closed"]
    assert "b" not in keeper.states


async def test_a_failing_success_write_stops_the_run(make_engine: EngineFactory) -> None:
    ran: list[str] = []
    keeper = BrokenKeeper(fail_status=StepStatus.SUCCEEDED)
    outcome = await make_engine(
        [SimpleStep(name="a", run=list), SimpleStep(name="b", run=lambda: ran.append("b"))],
        keeper=keeper,
    ).run()
    assert (outcome.kind, outcome.step) == (OutcomeKind.RETRY, "a")
    assert "could not record state 'succeeded'" in outcome.message
    assert ran == []


async def test_a_failing_write_of_a_failure_is_not_turned_into_an_ordinary_retry(
    make_engine: EngineFactory,
) -> None:
    def run() -> None:
        raise ValueError("bad")

    keeper = BrokenKeeper(fail_status=StepStatus.RETRYING)
    outcome = await make_engine([SimpleStep(name="a", run=run)], keeper=keeper).run()
    assert outcome.kind is OutcomeKind.RETRY
    assert isinstance(outcome.error, KeeperError)
    assert "could not record state 'retrying'" in outcome.message


async def test_a_keeper_failure_inside_a_group_stops_the_run(make_engine: EngineFactory) -> None:
    keeper = BrokenKeeper(fail_status=StepStatus.SUCCEEDED)
    group = GroupedSteps(name="g", steps=[SimpleStep(name="inner", run=list)])
    outcome = await make_engine([group], keeper=keeper).run()
    assert (outcome.kind, outcome.step) == (OutcomeKind.RETRY, "inner")
    assert isinstance(outcome.error, KeeperError)


async def test_a_keeper_failure_inside_a_parallel_group_stops_the_run(
    make_engine: EngineFactory,
) -> None:
    keeper = BrokenKeeper(fail_status=StepStatus.SUCCEEDED)
    group = ParallelSteps(name="p", steps=[SimpleStep(name="a", run=list)])
    outcome = await make_engine([group], keeper=keeper).run()
    assert outcome.kind is OutcomeKind.RETRY
    assert isinstance(outcome.error, KeeperError)


async def test_a_failing_throttling_store_stops_the_run(make_engine: EngineFactory) -> None:
    keeper = BrokenKeeper(fail_last_run=True)
    step = SimpleStep(
        name="a", run=list, throttling=ThrottlingSettings(interval=timedelta(minutes=1))
    )
    outcome = await make_engine([step], keeper=keeper).run()
    assert outcome.kind is OutcomeKind.RETRY
    assert "could not read the last run for step 'a': database locked" in outcome.message


async def test_a_failing_flush_gives_retry(make_engine: EngineFactory) -> None:
    keeper = BrokenKeeper(fail_flush=True)
    outcome = await make_engine(
        [SimpleStep(name="a", run=list)], keeper=keeper, keeper_retry_delay=3.0
    ).run()
    assert (outcome.kind, outcome.delay) == (OutcomeKind.RETRY, 3.0)
    assert "could not save the run's states: API server gone" in outcome.message


async def test_a_transition_listener_that_raises_is_ignored(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    def listener(old: StepState | None, new: StepState) -> None:
        raise RuntimeError("listener broke")

    outcome = await make_engine([SimpleStep(name="a", run=list)], on_transition=listener).run()
    assert outcome.kind is OutcomeKind.DONE
    assert keeper.states["a"].status is StepStatus.SUCCEEDED


class BrokenQuickKeeper(MemoryStateKeeper):
    """Keeps its synchronous access (the quick path) but fails the write for one step."""

    def _set_now(self, state: StepState) -> None:
        if state.name == "boom":
            raise OSError("disk full")
        super()._set_now(state)


async def test_a_keeper_failure_on_a_quick_parallel_branch_takes_the_begun_branches_down(
    make_engine: EngineFactory,
) -> None:
    seen: list[str] = []

    async def slow() -> None:
        seen.append("slow started")
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            seen.append("slow cancelled")
            raise

    keeper = BrokenQuickKeeper()
    group = ParallelSteps(
        name="p", steps=[SimpleStep(name="slow", run=slow), SimpleStep(name="boom", run=list)]
    )
    outcome = await make_engine([group], keeper=keeper).run()

    assert (outcome.kind, outcome.step) == (OutcomeKind.RETRY, "boom")
    assert isinstance(outcome.error, KeeperError)
    assert seen == ["slow started", "slow cancelled"]
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
