"""Outcome as a value, and its mapping to a requeue delay (every row of the table)."""

from __future__ import annotations

import pytest

from kubesteps import Outcome, OutcomeKind, requeue_delay


def test_outcomes_are_values_compared_without_their_error() -> None:
    a = Outcome(OutcomeKind.FAILED, None, "s", "boom", RuntimeError("x"))
    b = Outcome(OutcomeKind.FAILED, None, "s", "boom", ValueError("y"))
    assert a == b
    assert Outcome.done() == Outcome(OutcomeKind.DONE)


@pytest.mark.parametrize(
    ("outcome", "resync", "expected"),
    [
        (Outcome.done(), None, None),
        (Outcome.done(), 300.0, 300.0),
        (Outcome.done(delay=40.0), None, 40.0),
        (Outcome.done(delay=40.0), 300.0, 40.0),
        (Outcome.done(delay=400.0), 300.0, 300.0),
    ],
)
def test_done_requeues_at_the_sooner_of_resync_and_the_next_throttled_step(
    outcome: Outcome, resync: float | None, expected: float | None
) -> None:
    assert requeue_delay(outcome, resync_period=resync) == expected


def test_wait_requeues_after_its_delay() -> None:
    assert requeue_delay(Outcome(OutcomeKind.WAIT, 12.0, "s")) == 12.0


def test_wait_without_a_delay_requeues_after_the_default_wait() -> None:
    assert requeue_delay(Outcome(OutcomeKind.WAIT, None, "s"), default_wait=7.0) == 7.0


def test_retry_requeues_after_the_backoff() -> None:
    assert requeue_delay(Outcome(OutcomeKind.RETRY, 4.0, "s")) == 4.0


def test_retry_without_a_delay_requeues_after_the_default_wait() -> None:
    assert requeue_delay(Outcome(OutcomeKind.RETRY, None, "s"), default_wait=9.0) == 9.0


def test_failed_never_requeues_even_with_a_resync_period() -> None:
    assert requeue_delay(Outcome(OutcomeKind.FAILED, None, "s"), resync_period=60.0) is None


def test_aborted_rechecks_after_aborted_recheck() -> None:
    outcome = Outcome(OutcomeKind.ABORTED, None, "s")
    assert requeue_delay(outcome) == 30.0
    assert requeue_delay(outcome, aborted_recheck=5.0) == 5.0
    assert requeue_delay(outcome, aborted_recheck=None) is None
