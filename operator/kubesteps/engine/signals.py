"""What the end of an attempt means to the engine: abort, fail for good, retry, wait, or
carry on (an expected error).

Two sources are read into the same ``Signal``: an exception a step (or a middleware) raised,
followed down its explicit chain and into ``ExceptionGroup``s; and the results of the steps
inside a group, which are values and are read as such. Only where a middleware wraps a group
do those results become exceptions (``as_exception``), since a middleware deals in them.
``judge`` then decides what the step's attempt comes to (a ``Verdict``): the engine records
that and passes it up.
"""

from __future__ import annotations

import enum
import logging
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from kubesteps.engine.errors import (
    AbortedByPredicate,
    DefinitionError,
    ExpectedError,
    KeeperError,
    PendingChild,
    PermanentError,
    RetryableError,
    StepRunError,
    StepTimeoutError,
    WaitError,
    short_message,
    short_text,
)
from kubesteps.engine.results import GroupResult, ResultKind, StepResult
from kubesteps.engine.retry import RetryPolicy
from kubesteps.engine.steps import Step

log = logging.getLogger("kubesteps.engine")


class SignalKind(enum.Enum):
    """What an attempt's end asks of the engine, strongest first."""

    ABORT = "abort"
    FAILED = "failed"
    RETRY = "retry"
    WAIT = "wait"
    EXPECTED = "expected"


ABORT: Final = SignalKind.ABORT
FAILED: Final = SignalKind.FAILED
RETRY: Final = SignalKind.RETRY
WAIT: Final = SignalKind.WAIT
EXPECTED: Final = SignalKind.EXPECTED
_STRENGTH: Final = {kind: index for index, kind in enumerate(SignalKind)}


class Signal:
    """The engine's reading of an attempt's end: its kind, the delay, the deciding error,
    and (a failure read from a group of problems) the message that lists them all."""

    __slots__ = ("delay", "error", "kind", "summary")

    def __init__(
        self,
        kind: SignalKind,
        error: BaseException,
        delay: float | None = None,
        summary: str | None = None,
    ) -> None:
        self.kind = kind
        self.error = error
        self.delay = delay
        self.summary = summary


def classify(error: BaseException) -> Signal:
    """Read what ``error`` asks of the engine.

    Each exception is followed down its explicit ``from`` chain (``__cause__``) to the first
    exception the engine knows; a plain exception with none below it is an unexpected error
    (retried). The implicit ``__context__`` is not followed: a step that catches a
    ``WaitError`` and raises something else has decided to fail. Members of an
    ``ExceptionGroup`` are read one by one and combined: the strongest kind wins (abort,
    then failure, retry, wait, expected), and among waits or retries the shortest delay.
    """
    signal = _read(error)
    if signal.kind is FAILED and isinstance(error, BaseExceptionGroup):
        signal.summary = short_message(error)
    return signal


def read_children(group: str, problems: Sequence[StepResult], *, parallel: bool) -> Signal:
    """Read the results of a group's steps that did not end well, as ``classify`` reads
    the exceptions ``as_exception`` makes of them."""
    members = [child_exception(result) for result in problems]
    if not parallel:
        return _read(members[0])
    signal = _combine([_read(member) for member in members])
    if signal.kind is FAILED:
        signal.summary = _group_summary(group, members)
    return signal


def as_exception(group: str, result: GroupResult, *, parallel: bool) -> Exception:
    """What a middleware around a group sees raised when the group's steps did not all end
    well: its step's problem, or an ``ExceptionGroup`` of a parallel group's problems."""
    members = [child_exception(problem) for problem in result.problems]
    if parallel:
        return ExceptionGroup(f"parallel group {group!r}", members)
    return members[0]


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """What a step's attempt comes to, and what to record for it.

    ``kind``: ``OK`` (an expected error: put the previous state back), ``ABORTED``,
    ``WAIT``, ``RETRY`` or ``FAILED`` (for good). ``step``, ``message``, ``delay`` and
    ``error`` make the step's result; ``recorded`` is the message its state gets (for a
    failure: only when it is not the error's own), ``until`` when it is looked at again,
    ``reason`` the reason of a retry, and ``counted`` whether the attempt counts (not when
    a step inside it is what retries).
    """

    kind: ResultKind
    error: BaseException
    step: str = ""
    message: str = ""
    recorded: str | None = None
    delay: float | None = None
    until: datetime | None = None
    reason: str = ""
    counted: bool = True


def judge(
    signal: Signal,
    err: BaseException,
    *,
    step: Step,
    attempt: int,
    attempt_started_at: datetime,
    now: datetime,
    policy: RetryPolicy,
    rng: random.Random,
) -> Verdict:
    """Decide what attempt ``attempt`` of ``step`` comes to, ended by ``err`` (read as
    ``signal``): a retry within ``policy`` or a failure for good once it is used up; a wait
    no longer than the step's timeout allows. Retries and failures for good are logged."""
    kind = signal.kind
    if kind is EXPECTED:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("step %r: expected error: %s", step.name, err)
        return Verdict(kind=ResultKind.OK, error=err)
    if kind is ABORT:
        cause = signal.error
        name = cause.step if isinstance(cause, AbortedByPredicate) else step.name
        return Verdict(
            kind=ResultKind.ABORTED, error=cause, step=name, message=short_message(cause)
        )
    if kind is WAIT:
        pending = signal.error
        if isinstance(pending, PendingChild):
            where, what = pending.step, pending.message
            shown = f"step {where!r}: {what}"
        else:
            where, what = step.name, short_message(pending)
            shown = what
        delay = signal.delay
        if step.timeout is not None:
            # Look again no later than the attempt's deadline, so it is enforced on time.
            deadline = attempt_started_at + step.timeout
            left = max(0.0, (deadline - now).total_seconds())
            delay = left if delay is None else min(delay, left)
        until = now + timedelta(seconds=delay) if delay is not None else None
        return Verdict(
            kind=ResultKind.WAIT,
            error=pending,
            step=where,
            message=what,
            delay=delay,
            until=until,
            recorded=shown if until is None else f"{shown} (next check {_stamp(until)})",
        )
    if kind is FAILED:
        return Verdict(kind=ResultKind.FAILED, error=signal.error, recorded=signal.summary)
    # A retry: a RetryableError, an unexpected error, or a step inside that is retrying.
    cause = signal.error
    if isinstance(cause, PendingChild):
        # A parallel group retries as soon as the first of its pending members is due.
        delay = next((d for d in (signal.delay, cause.delay) if d is not None), 0.0)
        return Verdict(
            kind=ResultKind.RETRY,
            error=cause,
            step=cause.step,
            message=cause.message,
            delay=delay,
            until=now + timedelta(seconds=delay),
            reason="Retrying",
            recorded=f"step {cause.step!r}: {cause.message}",
            counted=False,
        )
    # A RetryableError is a failure the step foresaw: its message says it all. Anything
    # else is a surprise, and its traceback is what whoever reads the log needs.
    trace = None if isinstance(cause, RetryableError) else err
    if attempt >= policy.limit:
        log.error(
            "step %r failed for good after %d attempt(s): %s",
            step.name,
            attempt,
            short_message(cause),
            exc_info=trace,
        )
        return Verdict(kind=ResultKind.FAILED, error=err)
    delay = signal.delay if signal.delay is not None else policy.delay(attempt, rng)
    log.warning(
        "step %r attempt %d/%d failed; retrying in %.1fs: %s",
        step.name,
        attempt,
        policy.limit,
        delay,
        short_message(cause),
        exc_info=trace,
    )
    message = f"attempt {attempt}/{policy.limit} failed: {short_message(cause)}"
    return Verdict(
        kind=ResultKind.RETRY,
        error=err,
        step=step.name,
        message=message,
        delay=delay,
        until=now + timedelta(seconds=delay),
        reason=attempt_reason(cause, "Retrying"),
        recorded=message,
    )


def child_exception(result: StepResult) -> Exception:
    """A step's result as the error its group passes up (a wait or retry: ``PendingChild``)."""
    kind = result.kind
    if kind is ResultKind.WAIT or kind is ResultKind.RETRY:
        return PendingChild(kind.value, result.step, result.message, result.delay)
    if isinstance(result.error, StepRunError | AbortedByPredicate):
        return result.error
    return StepRunError(result.step, result.error or RuntimeError(result.message))


def attempt_reason(cause: BaseException, default: str) -> str:
    """The recorded reason of a failed attempt: ``TimedOut`` when the step's own timeout
    ended it (not the pass's deadline: that cuts the step off, it does not judge it)."""
    if isinstance(cause, StepTimeoutError) and cause.attempt_timeout:
        return "TimedOut"
    return default


def keeper_error_in(error: BaseException) -> KeeperError | None:
    """The first ``KeeperError`` in ``error`` or its groups: a keeper failure inside a step
    stops the run, whatever else went wrong."""
    for member in _flatten(error):
        if isinstance(member, KeeperError):
            return member
    return None


def _read(error: BaseException) -> Signal:
    current: BaseException | None = error
    while current is not None:
        if isinstance(current, BaseExceptionGroup):
            return _combine([_read(member) for member in current.exceptions])
        signal = _known(current)
        if signal is not None:
            return signal
        current = current.__cause__
    return Signal(RETRY, error, None)


def _known(error: BaseException) -> Signal | None:
    if isinstance(error, AbortedByPredicate):
        return Signal(ABORT, error)
    if isinstance(error, StepRunError | PermanentError | DefinitionError):
        return Signal(FAILED, error)
    if isinstance(error, PendingChild):
        return Signal(WAIT if error.kind == WAIT.value else RETRY, error, error.delay)
    if isinstance(error, WaitError):
        return Signal(WAIT, error, error.delay)
    if isinstance(error, RetryableError):
        return Signal(RETRY, error, error.retry_after)
    if isinstance(error, ExpectedError):
        return Signal(EXPECTED, error)
    return None


def _combine(signals: list[Signal]) -> Signal:
    strongest = min(signals, key=lambda s: _STRENGTH[s.kind])
    if strongest.kind is WAIT or strongest.kind is RETRY:
        # Whoever is pending, the group must be looked at again as soon as the first of
        # its members is due.
        delays = [
            s.delay for s in signals if (s.kind is WAIT or s.kind is RETRY) and s.delay is not None
        ]
        if delays:
            return Signal(strongest.kind, strongest.error, min(delays))
    return strongest


def _group_summary(group: str, members: Iterable[BaseException]) -> str:
    """``short_message`` of the ``ExceptionGroup`` ``as_exception`` would make."""
    return short_text(
        f"parallel group {group!r}: " + "; ".join(short_message(member) for member in members)
    )


def _flatten(error: BaseException) -> Iterable[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        for member in error.exceptions:
            yield from _flatten(member)
    else:
        yield error


def _stamp(when: datetime) -> str:
    return when.isoformat(timespec="seconds")
