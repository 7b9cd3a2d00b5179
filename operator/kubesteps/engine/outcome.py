"""The outcome of a run as a pure value, and its mapping to a requeue delay."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class OutcomeKind(enum.StrEnum):
    DONE = "done"
    WAIT = "wait"
    RETRY = "retry"
    FAILED = "failed"
    ABORTED = "aborted"


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What a run ended with: the kind, when to look again, which step and why.

    ``delay`` is in seconds. For ``DONE`` it is the time until the next throttled step is
    due (``None`` when nothing is scheduled). ``error`` is the exception behind a failure,
    for logs; it is not part of the value's equality.
    """

    kind: OutcomeKind
    delay: float | None = None
    step: str | None = None
    message: str = ""
    error: BaseException | None = field(default=None, compare=False, repr=False)

    @classmethod
    def done(cls, delay: float | None = None, message: str = "") -> Outcome:
        return cls(kind=OutcomeKind.DONE, delay=delay, message=message)


def requeue_delay(
    outcome: Outcome,
    *,
    resync_period: float | None = None,
    aborted_recheck: float | None = 30.0,
    default_wait: float = 30.0,
) -> float | None:
    """Seconds until the next reconcile pass, or ``None`` for "only when something changes".

    | outcome | requeue after                                             |
    |---------|-----------------------------------------------------------|
    | done    | the sooner of ``resync_period`` and the next throttled step |
    | wait    | the wait's delay (``default_wait`` if the step gave none)   |
    | retry   | the backoff delay                                         |
    | failed  | never: a failure for good waits for a change              |
    | aborted | ``aborted_recheck`` (the predicate may become true)        |
    """
    if outcome.kind is OutcomeKind.DONE:
        candidates = [d for d in (outcome.delay, resync_period) if d is not None]
        return min(candidates) if candidates else None
    if outcome.kind is OutcomeKind.WAIT:
        return outcome.delay if outcome.delay is not None else default_wait
    if outcome.kind is OutcomeKind.RETRY:
        return outcome.delay if outcome.delay is not None else default_wait
    if outcome.kind is OutcomeKind.ABORTED:
        return aborted_recheck
    return None
