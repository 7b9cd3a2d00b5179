"""Outcome as a value, and its mapping to a requeue delay (every row of the table)."""

from __future__ import annotations

import pytest

from kubesteps import Outcome, OutcomeKind, requeue_delay


def test_outcomes_are_values_compared_without_their_error() -> None:
    a = Outcome(
        kind=OutcomeKind.FAILED, delay=None, step="s", message="boom", error=RuntimeError("x")
    )
    b = Outcome(
        kind=OutcomeKind.FAILED, delay=None, step="s", message="boom", error=ValueError("y")
    )
    assert a == b
    assert Outcome.done() == Outcome(kind=OutcomeKind.DONE)


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
    assert requeue_delay(Outcome(kind=OutcomeKind.WAIT, delay=12.0, step="s")) == 12.0


def test_wait_without_a_delay_requeues_after_the_default_wait() -> None:
    assert (
        requeue_delay(Outcome(kind=OutcomeKind.WAIT, delay=None, step="s"), default_wait=7.0) == 7.0
    )


def test_retry_requeues_after_the_backoff() -> None:
    assert requeue_delay(Outcome(kind=OutcomeKind.RETRY, delay=4.0, step="s")) == 4.0


def test_retry_without_a_delay_requeues_after_the_default_wait() -> None:
    assert (
        requeue_delay(Outcome(kind=OutcomeKind.RETRY, delay=None, step="s"), default_wait=9.0)
        == 9.0
    )


def test_failed_never_requeues_even_with_a_resync_period() -> None:
    assert (
        requeue_delay(Outcome(kind=OutcomeKind.FAILED, delay=None, step="s"), resync_period=60.0)
        is None
    )


def test_aborted_rechecks_after_aborted_recheck() -> None:
    outcome = Outcome(kind=OutcomeKind.ABORTED, delay=None, step="s")
    assert requeue_delay(outcome) == 30.0
    assert requeue_delay(outcome, aborted_recheck=5.0) == 5.0
    assert requeue_delay(outcome, aborted_recheck=None) is None
