"""Reading an attempt's end: a group's step results, read as values, mean what the same
problems mean raised; and what the engine decides from them."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from kubesteps import (
    AbortedByPredicate,
    GroupedSteps,
    PermanentError,
    RetryableError,
    RetryPolicy,
    SimpleStep,
    StepRunError,
    WaitError,
)
from kubesteps.engine.errors import PendingChild
from kubesteps.engine.results import GroupResult, ResultKind, StepResult
from kubesteps.engine.signals import (
    FAILED,
    RETRY,
    WAIT,
    Signal,
    Verdict,
    as_exception,
    classify,
    judge,
    read_children,
)

from .conftest import START


def waits(step: str, delay: float | None) -> StepResult:
    return StepResult(kind=ResultKind.WAIT, step=step, message="job", delay=delay)


def retries(step: str, delay: float | None) -> StepResult:
    return StepResult(kind=ResultKind.RETRY, step=step, message="flaky", delay=delay)


def fails(step: str) -> StepResult:
    error = StepRunError(step, PermanentError("nope"))
    return StepResult(kind=ResultKind.FAILED, step=step, message="nope", error=error)


def aborts(step: str) -> StepResult:
    error = AbortedByPredicate(step, "always(False)")
    return StepResult(kind=ResultKind.ABORTED, step=step, message=str(error), error=error)


PROBLEMS = [
    pytest.param([waits("a", 30)], False, id="a waiting step"),
    pytest.param([retries("a", None)], False, id="a retrying step"),
    pytest.param([fails("a")], False, id="a failed step"),
    pytest.param([aborts("a")], False, id="an aborting step"),
    pytest.param([waits("a", 30), waits("b", 5)], True, id="parallel waits"),
    pytest.param([waits("a", None), waits("b", 5)], True, id="parallel waits, one undated"),
    pytest.param([retries("a", 30), retries("b", 5)], True, id="parallel retries"),
    pytest.param([waits("a", 3), retries("b", 50)], True, id="parallel wait and retry"),
    pytest.param([waits("a", 3), fails("b"), retries("c", 1)], True, id="parallel failure"),
    pytest.param([fails("a"), aborts("b")], True, id="parallel abort"),
]


@pytest.mark.parametrize(("problems", "parallel"), PROBLEMS)
def test_a_groups_step_results_read_as_the_exceptions_its_middleware_sees(
    problems: list[StepResult], parallel: bool
) -> None:
    by_value = read_children("g", problems, parallel=parallel)
    raised = as_exception("g", GroupResult(problems=tuple(problems)), parallel=parallel)
    by_exception = classify(raised)

    def seen(signal: Signal) -> tuple[object, ...]:
        return (signal.kind, type(signal.error), str(signal.error), signal.delay, signal.summary)

    assert seen(by_value) == seen(by_exception)


def test_a_parallel_group_is_looked_at_again_when_its_first_waiting_step_is_due() -> None:
    signal = read_children("p", [waits("a", 30), waits("b", 5)], parallel=True)
    assert (signal.kind, signal.delay) == (WAIT, 5)
    assert isinstance(signal.error, PendingChild)
    assert signal.error.step == "a"


def test_a_failure_in_a_parallel_group_outranks_its_waits_and_lists_every_problem() -> None:
    signal = read_children("p", [waits("a", 3), fails("b")], parallel=True)
    assert signal.kind is FAILED
    assert signal.summary == "parallel group 'p': step 'a': job; step 'b' failed: nope"


def test_a_failed_step_fails_its_sequence_group_with_its_own_error() -> None:
    failed = fails("a")
    signal = read_children("g", [failed], parallel=False)
    assert (signal.kind, signal.error, signal.summary) == (FAILED, failed.error, None)


def test_a_retrying_step_makes_its_group_retry() -> None:
    assert read_children("g", [retries("a", 4)], parallel=False).kind is RETRY


# -- judge ----------------------------------------------------------------------------


def verdict_for(
    error: BaseException, *, attempt: int = 1, timeout: timedelta | None = None
) -> Verdict:
    step = SimpleStep(name="s", run=list, timeout=timeout)
    return judge(
        classify(error),
        error,
        step=step,
        attempt=attempt,
        attempt_started_at=START,
        now=START,
        policy=RetryPolicy(limit=3),
        rng=random.Random(1),
    )


def test_a_failed_attempt_within_the_policy_is_retried_and_counts() -> None:
    verdict = verdict_for(RetryableError("flaky", retry_after=7))
    assert (verdict.kind, verdict.delay, verdict.counted) == (ResultKind.RETRY, 7, True)
    assert verdict.until == START + timedelta(seconds=7)
    assert verdict.recorded == "attempt 1/3 failed: flaky"


def test_the_last_attempt_of_the_policy_fails_for_good() -> None:
    error = RuntimeError("boom")
    verdict = verdict_for(error, attempt=3)
    assert (verdict.kind, verdict.error) == (ResultKind.FAILED, error)


def test_a_wait_is_looked_at_again_no_later_than_the_steps_timeout() -> None:
    verdict = verdict_for(WaitError("job", 600), timeout=timedelta(seconds=60))
    assert (verdict.kind, verdict.delay) == (ResultKind.WAIT, 60)
    assert verdict.recorded == "job (next check 2025-01-01T12:01:00+00:00)"


def test_a_step_inside_a_group_that_retries_counts_no_attempt_of_the_group() -> None:
    group = GroupedSteps(name="g", steps=[SimpleStep(name="a", run=list)])
    error = PendingChild("retry", "a", "flaky", 4)
    verdict = judge(
        classify(error),
        error,
        step=group,
        attempt=1,
        attempt_started_at=START,
        now=START,
        policy=RetryPolicy(),
        rng=random.Random(1),
    )
    assert (verdict.kind, verdict.step, verdict.delay, verdict.counted) == (
        ResultKind.RETRY,
        "a",
        4,
        False,
    )
    assert verdict.recorded == "step 'a': flaky"
