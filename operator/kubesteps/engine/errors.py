"""What a step can raise to steer the engine, and what the engine raises back.

Steps signal intent with exceptions. The engine looks for them through explicit exception
chains (``raise X from WaitError(...)``) and inside ``ExceptionGroup``s, so a signal raised
deep inside a parallel fan-out or a nested group is never lost (the reference library lost
them: its errors had no ``Unwrap``); ``signals.py`` reads them.
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
        self,
        step: str,
        seconds: float,
        *,
        ran: float | None = None,
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


class PendingChild(Exception):
    """A step inside a group is waiting or retrying, as an exception: the error of the
    group's result, and what a middleware around the group sees raised.

    The group then records itself as waiting or retrying too, without counting an attempt
    of its own.
    """

    def __init__(self, kind: str, step: str, message: str, delay: float | None) -> None:
        super().__init__(f"step {step!r}: {message}")
        self.kind = kind  # "wait" or "retry"
        self.step = step
        self.message = message
        self.delay = delay


def short_message(error: BaseException, limit: int = 300) -> str:
    """A one-line, bounded message for status fields (tracebacks belong in the logs)."""
    if isinstance(error, BaseExceptionGroup):
        members = "; ".join(short_message(e, limit) for e in error.exceptions)
        text = f"{error.message}: {members}" if error.message else members
    else:
        text = str(error).strip() or type(error).__name__
    return short_text(text, limit)


def short_text(text: str, limit: int = 300) -> str:
    """``text`` on one line, bounded."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
