"""Throttling: at most once per interval, remembered by the keeper, on an injected clock."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubesteps import (
    DefinitionError,
    MemoryStateKeeper,
    OutcomeKind,
    RetryPolicy,
    SimpleStep,
    SQLiteStateKeeper,
    StepStatus,
    ThrottlingSettings,
    WaitError,
)
from kubesteps.engine.throttling import decide

from .conftest import START, EngineFactory, FakeClock, Transitions

MINUTE = timedelta(minutes=1)
SECOND = timedelta(seconds=1)


def counted(log: list[str], name: str = "a", **throttle: object) -> SimpleStep:
    settings = ThrottlingSettings(interval=MINUTE, **throttle)  # type: ignore[arg-type]
    return SimpleStep(name=name, run=lambda: log.append(name), throttling=settings)


@pytest.mark.parametrize("interval", [timedelta(0), timedelta(seconds=-1)])
def test_an_interval_of_zero_or_less_is_rejected_when_built(interval: timedelta) -> None:
    with pytest.raises(DefinitionError, match=r"throttling\.interval: must be > 0"):
        ThrottlingSettings(interval=interval)


def test_an_initial_delay_longer_than_the_interval_is_rejected() -> None:
    with pytest.raises(DefinitionError, match=r"throttling\.initial_delay"):
        ThrottlingSettings(interval=MINUTE, initial_delay=2 * MINUTE)


async def test_first_sight_runs_at_once(make_engine: EngineFactory) -> None:
    log: list[str] = []
    await make_engine([counted(log)]).run()
    assert log == ["a"]


async def test_within_the_interval_the_step_is_throttled_with_its_next_run(
    make_engine: EngineFactory, keeper: MemoryStateKeeper, clock: FakeClock
) -> None:
    log: list[str] = []
    engine = make_engine([counted(log)])
    await engine.run()
    clock.advance(20)
    outcome = await engine.run()
    assert log == ["a"]
    state = keeper.states["a"]
    assert (state.status, state.reason) == (StepStatus.THROTTLED, "Throttled")
    assert state.next_run_at == START + MINUTE
    assert (outcome.kind, outcome.delay) == (OutcomeKind.DONE, 40.0)


async def test_a_successful_run_reports_when_the_step_is_next_due(
    make_engine: EngineFactory,
) -> None:
    outcome = await make_engine([counted([])]).run()
    assert (outcome.kind, outcome.delay) == (OutcomeKind.DONE, 60.0)


async def test_after_the_interval_it_runs_again(
    make_engine: EngineFactory, clock: FakeClock
) -> None:
    log: list[str] = []
    engine = make_engine([counted(log)])
    await engine.run()
    clock.advance(60)
    await engine.run()
    assert log == ["a", "a"]


async def test_a_throttled_pass_writes_the_throttled_state_once(
    make_engine: EngineFactory, clock: FakeClock, transitions: Transitions
) -> None:
    engine = make_engine([counted([])])
    await engine.run()
    for _ in range(3):
        clock.advance(5)
        await engine.run()
    assert transitions.of("a") == ["succeeded", "throttled"]


def failing(calls: list[str], name: str = "a", **options: object) -> SimpleStep:
    def run() -> None:
        calls.append(name)
        raise RuntimeError("down")

    options.setdefault("retry", RetryPolicy(limit=1))
    return SimpleStep(
        name=name,
        run=run,
        throttling=ThrottlingSettings(interval=MINUTE),
        **options,  # type: ignore[arg-type]
    )


async def test_with_continue_on_error_a_failure_stays_recorded_until_the_next_due_run(
    make_engine: EngineFactory, keeper: MemoryStateKeeper, clock: FakeClock
) -> None:
    calls: list[str] = []
    log: list[str] = []
    engine = make_engine(
        [failing(calls, continue_on_error=True), SimpleStep(name="b", run=lambda: log.append("b"))]
    )
    await engine.run()
    clock.advance(5)
    outcome = await engine.run()
    # Without ensure_step_success the failed run counts: not run again within the interval,
    # and the failure is not written over with a throttled record.
    assert calls == ["a"]
    state = keeper.states["a"]
    assert (state.status, state.message) == (StepStatus.FAILED, "down")
    assert (outcome.kind, outcome.delay) == (OutcomeKind.DONE, 55.0)
    assert log == ["b"]
    clock.advance(55)
    await engine.run()
    assert calls == ["a", "a"]


async def test_a_throttled_step_that_failed_for_good_fails_every_later_pass(
    make_engine: EngineFactory,
    keeper: MemoryStateKeeper,
    clock: FakeClock,
    transitions: Transitions,
) -> None:
    calls: list[str] = []
    engine = make_engine([failing(calls), counted(calls, "b")])
    first = await engine.run()
    assert (first.kind, first.step) == (OutcomeKind.FAILED, "a")
    for seconds in (5, 120):  # within the interval, and long after it
        clock.advance(seconds)
        outcome = await engine.run()
        assert (outcome.kind, outcome.step, outcome.message) == (OutcomeKind.FAILED, "a", "down")
    assert calls == ["a"]
    assert keeper.states["a"].status is StepStatus.FAILED
    assert "b" not in keeper.states
    assert transitions.of("a") == ["failed"]


async def test_a_throttled_step_that_is_retrying_reports_the_remaining_backoff(
    make_engine: EngineFactory, keeper: MemoryStateKeeper, clock: FakeClock
) -> None:
    calls: list[str] = []
    engine = make_engine(
        [
            failing(calls, retry=RetryPolicy(limit=3, initial=10 * SECOND, jitter=timedelta(0))),
            counted(calls, "b"),
        ]
    )
    first = await engine.run()
    assert (first.kind, first.delay) == (OutcomeKind.RETRY, 10.0)
    clock.advance(4)
    outcome = await engine.run()
    assert (outcome.kind, outcome.step, outcome.delay) == (OutcomeKind.RETRY, "a", 6.0)
    state = keeper.states["a"]
    assert (state.status, state.attempts) == (StepStatus.RETRYING, 1)
    assert calls == ["a"]


async def test_a_due_retry_of_a_throttled_step_runs_although_the_interval_has_not_passed(
    make_engine: EngineFactory, keeper: MemoryStateKeeper, clock: FakeClock
) -> None:
    results: list[Exception | None] = [RuntimeError("down"), None]

    def run() -> None:
        error = results.pop(0)
        if error is not None:
            raise error

    step = SimpleStep(
        name="a",
        run=run,
        throttling=ThrottlingSettings(interval=MINUTE),
        retry=RetryPolicy(limit=3, initial=10 * SECOND, jitter=timedelta(0)),
    )
    engine = make_engine([step])
    await engine.run()
    clock.advance(10)
    outcome = await engine.run()
    assert results == []
    state = keeper.states["a"]
    assert (state.status, state.attempts) == (StepStatus.SUCCEEDED, 2)
    assert outcome.kind is OutcomeKind.DONE


async def test_a_waiting_throttled_step_is_checked_again_on_the_next_pass(
    make_engine: EngineFactory, keeper: MemoryStateKeeper, clock: FakeClock
) -> None:
    checks: list[int] = []

    def run() -> None:
        checks.append(1)
        if len(checks) == 1:
            raise WaitError("not ready", delay=5)

    step = SimpleStep(name="a", run=run, throttling=ThrottlingSettings(interval=MINUTE))
    engine = make_engine([step])
    first = await engine.run()
    assert first.kind is OutcomeKind.WAIT
    clock.advance(5)
    await engine.run()
    assert len(checks) == 2
    assert keeper.states["a"].status is StepStatus.SUCCEEDED


async def test_ensure_step_success_counts_only_successful_runs(
    make_engine: EngineFactory, clock: FakeClock
) -> None:
    results = [RuntimeError("down"), None, None]
    calls: list[int] = []

    def run() -> None:
        calls.append(1)
        error = results.pop(0)
        if error is not None:
            raise error

    step = SimpleStep(
        name="a",
        run=run,
        retry=RetryPolicy(limit=1),
        continue_on_error=True,
        throttling=ThrottlingSettings(interval=MINUTE, ensure_step_success=True),
    )
    engine = make_engine([step])
    await engine.run()  # fails: not counted
    clock.advance(5)
    await engine.run()  # runs again at once, succeeds
    clock.advance(5)
    await engine.run()  # within the interval of the success: throttled
    assert len(calls) == 2


async def test_steps_sharing_a_partition_key_share_one_budget(
    make_engine: EngineFactory, clock: FakeClock
) -> None:
    log: list[str] = []
    engine = make_engine(
        [counted(log, "a", partition_key="api"), counted(log, "b", partition_key="api")]
    )
    await engine.run()
    assert log == ["a"]


async def test_initial_delay_postpones_the_first_run_by_a_bounded_random_time(
    make_engine: EngineFactory, keeper: MemoryStateKeeper, clock: FakeClock
) -> None:
    log: list[str] = []
    step = counted(log, initial_delay=timedelta(seconds=30))
    engine = make_engine([step], rng=random.Random(3))
    outcome = await engine.run()
    expected = random.Random(3).uniform(0, 30)
    assert log == []
    assert outcome.delay == pytest.approx(expected)
    next_run = keeper.states["a"].next_run_at
    assert next_run is not None
    clock.now = next_run - timedelta(seconds=0.001)
    await engine.run()
    assert log == []
    clock.now = next_run
    await engine.run()
    assert log == ["a"]


async def test_the_last_run_survives_a_new_engine_on_the_same_sqlite_file(
    make_engine: EngineFactory, clock: FakeClock, tmp_path: Path
) -> None:
    log: list[str] = []
    for _ in range(2):
        keeper = SQLiteStateKeeper(tmp_path / "t.db")
        await make_engine([counted(log)], keeper=keeper).run()
        keeper.close()
        clock.advance(10)
    assert log == ["a"]


# -- properties of decide ------------------------------------------------------------

seconds = st.floats(min_value=0.001, max_value=86_400, allow_nan=False)
offsets = st.floats(min_value=0, max_value=10 * 86_400, allow_nan=False)
ANCHOR = datetime(2025, 1, 1, tzinfo=UTC)


@given(interval=seconds, ensure=st.booleans(), gaps=st.lists(offsets, max_size=20))
def test_decide_never_runs_twice_within_an_interval(
    interval: float, ensure: bool, gaps: list[float]
) -> None:
    settings = ThrottlingSettings(interval=timedelta(seconds=interval), ensure_step_success=ensure)
    rng = random.Random(0)
    last: datetime | None = None
    runs: list[datetime] = []
    now = ANCHOR
    for gap in gaps:
        now += timedelta(seconds=gap)
        decision = decide(settings, last, now, rng)
        if decision.run:
            runs.append(now)
            last = now  # the caller records a run (or a success) at this time
        elif decision.record is not None:
            last = decision.record
    assert all(b - a >= settings.interval for a, b in itertools.pairwise(runs))


@given(interval=seconds, ensure=st.booleans(), since=offsets)
def test_decide_always_runs_once_the_interval_has_passed(
    interval: float, ensure: bool, since: float
) -> None:
    settings = ThrottlingSettings(interval=timedelta(seconds=interval), ensure_step_success=ensure)
    last = ANCHOR
    now = last + settings.interval + timedelta(seconds=since)
    assert decide(settings, last, now, random.Random(0)).run


@given(
    interval_us=st.integers(min_value=1, max_value=86_400 * 10**6),
    fraction=st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_decide_does_not_run_before_the_interval_has_passed(
    interval_us: int, fraction: float
) -> None:
    settings = ThrottlingSettings(interval=timedelta(microseconds=interval_us))
    now = ANCHOR + timedelta(microseconds=int(interval_us * fraction))
    decision = decide(settings, ANCHOR, now, random.Random(0))
    assert not decision.run
    assert decision.next_run_at == ANCHOR + settings.interval


@given(
    interval=seconds,
    fraction=st.floats(min_value=0, max_value=1),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_initial_delay_stays_within_its_bound(interval: float, fraction: float, seed: int) -> None:
    bound = timedelta(seconds=interval) * fraction
    settings = ThrottlingSettings(interval=timedelta(seconds=interval), initial_delay=bound)
    decision = decide(settings, None, ANCHOR, random.Random(seed))
    if decision.run:
        return  # a zero delay (or no delay at all) runs at once
    assert decision.next_run_at is not None
    assert ANCHOR <= decision.next_run_at <= ANCHOR + bound
    # The recorded time makes the step due exactly when the delay ends.
    assert decision.record is not None
    assert decision.record + settings.interval == decision.next_run_at
