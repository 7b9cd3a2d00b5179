"""ParallelSteps: concurrency, failure collection, fail-fast, and full sub-step semantics."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from kubesteps import (
    AbortedByPredicate,
    DefinitionError,
    ExpectedError,
    MemoryStateKeeper,
    OutcomeKind,
    ParallelSteps,
    RetryableError,
    RetryPolicy,
    SimpleStep,
    StepContext,
    StepState,
    StepStatus,
    ThrottlingSettings,
    WaitError,
    always,
)

from .conftest import EngineFactory, FakeClock, Transitions


def failing(name: str, **options: object) -> SimpleStep:
    def run() -> None:
        raise RuntimeError(f"{name} broke")

    options.setdefault("retry", RetryPolicy(limit=1))
    return SimpleStep(name=name, run=run, **options)  # type: ignore[arg-type]


def waiting(name: str, seconds: float) -> SimpleStep:
    def run() -> None:
        raise WaitError(f"{name} not ready", seconds)

    return SimpleStep(name=name, run=run)


class Gauge:
    """Counts how many steps are inside their body at once."""

    def __init__(self) -> None:
        self.current = 0
        self.peak = 0

    async def run(self) -> None:
        self.current += 1
        self.peak = max(self.peak, self.current)
        await asyncio.sleep(0.001)
        self.current -= 1


async def test_all_sub_steps_run(make_engine: EngineFactory, keeper: MemoryStateKeeper) -> None:
    log: list[str] = []
    group = ParallelSteps(
        name="p", steps=[SimpleStep(name=n, run=lambda n=n: log.append(n)) for n in "abc"]
    )
    outcome = await make_engine([group]).run()
    assert outcome.kind is OutcomeKind.DONE
    assert sorted(log) == ["a", "b", "c"]
    assert keeper.states["p"].status is StepStatus.SUCCEEDED


async def test_sub_steps_really_run_concurrently(make_engine: EngineFactory) -> None:
    gauge = Gauge()
    steps = [SimpleStep(name=f"s{i}", run=gauge.run) for i in range(8)]
    await make_engine([ParallelSteps(name="p", steps=steps)]).run()
    assert gauge.peak == 8


async def test_max_concurrency_is_respected(make_engine: EngineFactory) -> None:
    gauge = Gauge()
    steps = [SimpleStep(name=f"s{i}", run=gauge.run) for i in range(10)]
    outcome = await make_engine([ParallelSteps(name="p", steps=steps, max_concurrency=3)]).run()
    assert (outcome.kind, gauge.peak) == (OutcomeKind.DONE, 3)


async def test_by_default_every_sub_step_runs_even_when_one_fails(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    async def slow() -> None:
        await asyncio.sleep(0.01)

    group = ParallelSteps(name="p", steps=[failing("a"), SimpleStep(name="b", run=slow)])
    outcome = await make_engine([group]).run()
    assert outcome.kind is OutcomeKind.FAILED
    assert keeper.states["b"].status is StepStatus.SUCCEEDED
    assert keeper.states["p"].status is StepStatus.FAILED


async def test_all_failures_are_collected_in_the_groups_state(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    group = ParallelSteps(name="p", steps=[failing("a"), failing("b")])
    outcome = await make_engine([group]).run()
    assert outcome.kind is OutcomeKind.FAILED
    message = keeper.states["p"].message
    assert "a broke" in message
    assert "b broke" in message


async def test_fail_fast_cancels_siblings_and_puts_their_state_back(
    make_engine: EngineFactory, keeper: MemoryStateKeeper, transitions: Transitions
) -> None:
    started = asyncio.Event()
    cancelled: list[str] = []

    async def long() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append("long")
            raise

    async def fail_once_long_started() -> None:
        await started.wait()
        raise RuntimeError("boom")

    before = StepState(name="long", status=StepStatus.WAITING, reason="Waiting", attempts=0)
    keeper.states["long"] = before
    group = ParallelSteps(
        name="p",
        fail_fast=True,
        steps=[
            SimpleStep(name="long", run=long),
            SimpleStep(name="a", run=fail_once_long_started, retry=RetryPolicy(limit=1)),
        ],
    )
    outcome = await make_engine([group]).run()
    assert (outcome.kind, outcome.step) == (OutcomeKind.FAILED, "a")
    assert cancelled == ["long"]
    assert keeper.states["long"] == before
    assert transitions.of("long") == ["running", "waiting"]


async def test_fail_fast_does_not_start_sub_steps_still_queued(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    group = ParallelSteps(
        name="p",
        fail_fast=True,
        max_concurrency=1,
        steps=[failing("a"), SimpleStep(name="b", run=list)],
    )
    await make_engine([group]).run()
    assert "b" not in keeper.states


async def test_a_waiting_parallel_group_waits_for_the_shortest_wait(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    group = ParallelSteps(name="p", steps=[waiting("a", 30), waiting("b", 5), waiting("c", 12)])
    outcome = await make_engine([group]).run()
    assert (outcome.kind, outcome.delay) == (OutcomeKind.WAIT, 5.0)
    assert keeper.states["p"].status is StepStatus.WAITING
    assert {keeper.states[n].status for n in "abc"} == {StepStatus.WAITING}


async def test_a_failure_outranks_a_wait_among_sub_steps(make_engine: EngineFactory) -> None:
    group = ParallelSteps(name="p", steps=[waiting("a", 5), failing("b")])
    outcome = await make_engine([group]).run()
    assert (outcome.kind, outcome.step) == (OutcomeKind.FAILED, "b")


async def test_a_retrying_sub_step_makes_the_group_retry_after_its_backoff(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    def flaky() -> None:
        raise RuntimeError("flaky")

    group = ParallelSteps(name="p", steps=[SimpleStep(name="a", run=flaky)])
    outcome = await make_engine([group]).run()
    assert (outcome.kind, outcome.step, outcome.delay) == (OutcomeKind.RETRY, "a", 2.0)
    assert (keeper.states["a"].status, keeper.states["a"].attempts) == (StepStatus.RETRYING, 1)
    assert (keeper.states["p"].status, keeper.states["p"].attempts) == (StepStatus.RETRYING, 0)


async def test_a_parallel_group_retries_when_its_first_retrying_step_is_due(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    def busy(seconds: float) -> SimpleStep:
        def run() -> None:
            raise RetryableError(f"busy for {seconds:g}s", retry_after=seconds)

        return SimpleStep(name=f"after-{seconds:g}", run=run)

    group = ParallelSteps(name="p", steps=[busy(30), busy(5), busy(12)])
    outcome = await make_engine([group]).run()
    assert (outcome.kind, outcome.delay) == (OutcomeKind.RETRY, 5.0)
    assert {keeper.states[f"after-{n}"].status for n in (30, 5, 12)} == {StepStatus.RETRYING}


async def test_a_sub_step_that_succeeded_is_skipped_by_its_state(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    log: list[str] = []
    keeper.states["a"] = StepState(name="a", status=StepStatus.SUCCEEDED)
    group = ParallelSteps(
        name="p", steps=[SimpleStep(name=n, run=lambda n=n: log.append(n)) for n in "ab"]
    )
    await make_engine([group]).run()
    assert log == ["b"]


async def test_a_false_predicate_skips_only_that_sub_step(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    log: list[str] = []
    group = ParallelSteps(
        name="p",
        steps=[
            SimpleStep(name="a", run=lambda: log.append("a"), predicates=[always(False)]),
            SimpleStep(name="b", run=lambda: log.append("b")),
        ],
    )
    outcome = await make_engine([group]).run()
    assert (outcome.kind, log) == (OutcomeKind.DONE, ["b"])
    assert keeper.states["a"].status is StepStatus.SKIPPED


async def test_a_sub_steps_predicate_abort_aborts_the_run(make_engine: EngineFactory) -> None:
    group = ParallelSteps(
        name="p",
        steps=[
            SimpleStep(
                name="a", run=list, predicates=[always(False)], abort_on_predicates_false=True
            ),
            SimpleStep(name="b", run=list),
        ],
    )
    outcome = await make_engine([group]).run()
    assert (outcome.kind, outcome.step) == (OutcomeKind.ABORTED, "a")
    assert isinstance(outcome.error, AbortedByPredicate)


async def test_sub_steps_are_throttled(
    make_engine: EngineFactory, keeper: MemoryStateKeeper, clock: FakeClock
) -> None:
    log: list[str] = []
    group = ParallelSteps(
        name="p",
        state=None,
        steps=[
            SimpleStep(
                name="a",
                run=lambda: log.append("a"),
                throttling=ThrottlingSettings(interval=timedelta(minutes=1)),
            )
        ],
    )
    engine = make_engine([group])
    await engine.run()
    clock.advance(10)
    outcome = await engine.run()
    assert log == ["a"]
    assert keeper.states["a"].status is StepStatus.THROTTLED
    assert (outcome.kind, outcome.delay) == (OutcomeKind.DONE, 50.0)


async def test_sub_step_hooks_are_called(make_engine: EngineFactory) -> None:
    calls: list[str] = []

    def on_fail(ctx: StepContext, name: str, err: BaseException) -> None:
        calls.append(f"fail:{name}")

    def on_success(ctx: StepContext, name: str) -> None:
        calls.append(f"success:{name}")

    group = ParallelSteps(
        name="p",
        steps=[
            failing("a", on_fail=on_fail),
            SimpleStep(name="b", run=list, on_success=on_success),
        ],
    )
    await make_engine([group]).run()
    assert sorted(calls) == ["fail:a", "success:b"]


async def test_an_expected_error_in_a_sub_step_does_not_fail_the_group(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    def fine() -> None:
        raise ExpectedError("nothing to do")

    group = ParallelSteps(name="p", steps=[SimpleStep(name="a", run=fine)])
    outcome = await make_engine([group]).run()
    assert outcome.kind is OutcomeKind.DONE
    assert keeper.states["p"].status is StepStatus.SUCCEEDED


async def test_a_sub_step_with_continue_on_error_does_not_fail_the_group(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    group = ParallelSteps(name="p", steps=[failing("a", continue_on_error=True)])
    outcome = await make_engine([group]).run()
    assert outcome.kind is OutcomeKind.DONE
    assert keeper.states["a"].status is StepStatus.FAILED


def test_an_empty_parallel_group_is_rejected() -> None:
    with pytest.raises(DefinitionError, match="at least one step"):
        ParallelSteps(name="p", steps=[])


def test_finish_on_success_on_a_direct_sub_step_is_rejected() -> None:
    with pytest.raises(DefinitionError, match="finish_on_success") as raised:
        ParallelSteps(name="p", steps=[SimpleStep(name="a", run=list, finish_on_success=True)])
    assert raised.value.step == "a"


def test_max_concurrency_below_one_is_rejected() -> None:
    with pytest.raises(DefinitionError, match="max_concurrency: must be >= 1, got 0"):
        ParallelSteps(name="p", steps=[SimpleStep(name="a", run=list)], max_concurrency=0)


async def test_branches_that_return_at_once_run_in_order_and_insert_into_their_own_branch(
    make_engine: EngineFactory, keeper: MemoryStateKeeper, transitions: Transitions
) -> None:
    """Plain simple steps of a parallel group start in order (without a task of their own
    when they never suspend); one that suspends goes on concurrently; steps a branch
    inserts run after it, in that branch."""
    order: list[str] = []

    def quick(name: str) -> SimpleStep:
        return SimpleStep(name=name, run=lambda: order.append(name))

    async def suspends() -> None:
        order.append("slow began")
        await asyncio.sleep(0)
        order.append("slow ended")

    def inserting(ctx: StepContext) -> None:
        order.append("inserter")
        ctx.insert_after(quick("inserted"))

    group = ParallelSteps(
        name="p",
        steps=[
            quick("a"),
            SimpleStep(name="slow", run=suspends),
            SimpleStep(name="inserter", run=inserting),
            quick("b"),
        ],
    )
    outcome = await make_engine([group]).run()

    assert outcome.kind is OutcomeKind.DONE
    # Branches start in order; what a branch inserts comes after it (the order between
    # branches after that is the event loop's).
    assert [n for n in order if n in ("a", "slow began", "inserter", "b")] == [
        "a",
        "slow began",
        "inserter",
        "b",
    ]
    assert order.index("inserter") < order.index("inserted")
    assert order.index("slow began") < order.index("slow ended")
    assert sorted(order) == sorted(["a", "slow began", "slow ended", "inserter", "inserted", "b"])
    assert {n: keeper.states[n].status for n in ("a", "slow", "inserter", "inserted", "b")} == {
        n: StepStatus.SUCCEEDED for n in ("a", "slow", "inserter", "inserted", "b")
    }
    assert transitions.of("slow") == ["running", "succeeded"]
    assert transitions.of("a") == ["succeeded"]
