"""What a step can raise to steer the engine, and what the engine raises back.

Steps signal intent with exceptions. The engine looks for them through explicit exception
chains (``raise X from WaitError(...)``) and inside ``ExceptionGroup``s, so a signal raised
deep inside a parallel fan-out or a nested group is never lost (the reference library lost
them: its errors had no ``Unwrap``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from kubesteps.engine.elapsed import format_elapsed


def _seconds(value: float | timedelta | None) -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    return max(0.0, seconds)


class ExpectedError(Exception):
    """An anticipated condition: the run carries on and nothing is recorded for the step."""


class WaitError(Exception):
    """The step is not done yet and should be looked at again after ``delay``.

    Not a failure: the step is recorded as waiting (with ``reason`` and until when), no retry
    attempt is counted and ``on_fail`` is not called. ``delay=None`` leaves the choice of
    when to look again to the caller (the outcome carries no delay).
    """

    def __init__(self, reason: str, delay: float | timedelta | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = _seconds(delay)


class RetryableError(Exception):
    """A transient failure: retry the step with its retry policy.

    ``retry_after`` overrides the policy's computed backoff for this attempt (for example a
    server's ``Retry-After``). Attempts still count towards the policy's limit.
    """

    def __init__(self, message: str, retry_after: float | timedelta | None = None) -> None:
        super().__init__(message)
        self.retry_after = _seconds(retry_after)


class PermanentError(Exception):
    """A failure no retry can fix (bad input, a 4xx answer): the step fails for good now.

    ``reason`` (CamelCase) is recorded as the step's reason instead of ``Failed``, and
    ``outputs`` as its outputs: a failed step can still say what it found (who rejected an
    approval, the last status seen).
    """

    def __init__(
        self, message: str, *, reason: str = "", outputs: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.outputs = outputs


class AbortedByPredicate(Exception):
    """A predicate was false on a step with ``abort_on_predicates_false``: the run stops."""

    def __init__(self, step: str, predicate: str) -> None:
        super().__init__(f"predicate {predicate} is false for step {step!r}")
        self.step = step
        self.predicate = predicate


class StepRunError(Exception):
    """A step failed for good (its retries are used up, or it cannot be retried)."""

    def __init__(self, step: str, error: BaseException) -> None:
        super().__init__(f"step {step!r} failed: {short_message(error)}")
        self.step = step
        self.error = error


class StepTimeoutError(RetryableError):
    """A step ran longer than its timeout (or than what was left of the run's timeout)."""

    def __init__(
        self, step: str, seconds: float, *, ran: float | None = None,
        attempt_timeout: bool = False,
    ) -> None:
        text = f"step {step!r} timed out after {format_elapsed(seconds)}"
        if ran is not None:
            # An attempt that waits over several passes: it is measured from its start.
            text += f" (the attempt ran {format_elapsed(ran)})"
        super().__init__(text)
        self.step = step
        self.seconds = seconds
        # The step's own timeout ended the attempt (not a deadline of the whole run).
        self.attempt_timeout = attempt_timeout


class KeeperError(Exception):
    """The state keeper could not record a transition: the run stops rather than lose it."""

    def __init__(self, step: str, operation: str, error: BaseException) -> None:
        super().__init__(
            f"state keeper could not {operation} for step {step!r}: {short_message(error)}"
        )
        self.step = step
        self.operation = operation
        self.error = error


class DefinitionError(ValueError):
    """A step definition is invalid. Raised before anything runs; names the step and field."""

    def __init__(self, step: str | None, field: str, problem: str) -> None:
        where = f"step {step!r}: " if step else ""
        super().__init__(f"{where}{field}: {problem}")
        self.step = step
        self.field = field
        self.problem = problem


def short_message(error: BaseException, limit: int = 300) -> str:
    """A one-line, bounded message for status fields (tracebacks belong in the logs)."""
    if isinstance(error, BaseExceptionGroup):
        members = "; ".join(short_message(e, limit) for e in error.exceptions)
        text = f"{error.message}: {members}" if error.message else members
    else:
        text = str(error).strip() or type(error).__name__
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class PendingChild(Exception):
    """Internal: a step inside a group or parallel set is waiting or retrying.

    Raised by composite steps so the enclosing step records itself as waiting/retrying too,
    without counting an attempt of its own.
    """

    def __init__(self, kind: str, step: str, message: str, delay: float | None) -> None:
        super().__init__(f"step {step!r}: {message}")
        self.kind = kind  # "wait" or "retry"
        self.step = step
        self.message = message
        self.delay = delay


# What a raised exception means for the engine, strongest first.
ABORT, FAILED, RETRY, WAIT, EXPECTED = "abort", "failed", "retry", "wait", "expected"
_STRENGTH = {ABORT: 0, FAILED: 1, RETRY: 2, WAIT: 3, EXPECTED: 4}


class Signal:
    """The engine's reading of an exception: its kind, the delay and the deciding error."""

    __slots__ = ("delay", "error", "kind")

    def __init__(self, kind: str, error: BaseException, delay: float | None = None) -> None:
        self.kind = kind
        self.error = error
        self.delay = delay


def classify(error: BaseException) -> Signal:
    """Read what ``error`` asks of the engine.

    Each exception is followed down its explicit ``from`` chain (``__cause__``) to the first
    exception the engine knows; a plain exception with none below it is an unexpected error
    (retried). The implicit ``__context__`` is not followed: a step that catches a
    ``WaitError`` and raises something else has decided to fail. Members of an
    ``ExceptionGroup`` are read one by one and combined: the strongest kind wins (abort,
    then failure, retry, wait, expected), and among waits or retries the shortest delay.
    """
    current: BaseException | None = error
    while current is not None:
        if isinstance(current, BaseExceptionGroup):
            return _combine([classify(member) for member in current.exceptions])
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
        return Signal(WAIT if error.kind == WAIT else RETRY, error, error.delay)
    if isinstance(error, WaitError):
        return Signal(WAIT, error, error.delay)
    if isinstance(error, RetryableError):
        return Signal(RETRY, error, error.retry_after)
    if isinstance(error, ExpectedError):
        return Signal(EXPECTED, error)
    return None


def _combine(signals: list[Signal]) -> Signal:
    strongest = min(signals, key=lambda s: _STRENGTH[s.kind])
    if strongest.kind in (WAIT, RETRY):
        # Whoever is pending, the group must be looked at again as soon as the first of
        # its members is due.
        delays = [s.delay for s in signals if s.kind in (WAIT, RETRY) and s.delay is not None]
        if delays:
            return Signal(strongest.kind, strongest.error, min(delays))
    return strongest
