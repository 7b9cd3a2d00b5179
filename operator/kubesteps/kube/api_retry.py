"""The one retry policy of the operator's own Kubernetes API calls.

Worth another try: throttling (429), server-side failures (5xx but 501), and requests that
got no answer (connection refused or reset, a response cut short, a timeout). The wait is
the server's ``Retry-After`` when it sent one (capped), otherwise exponential backoff with
jitter, computed by tenacity.

Conflicts (409) are never retried here: on a conditional write a stale ``resourceVersion``
means somebody else wrote in between, and only the caller can rebuild its change on top of
theirs (and a retried write whose first answer was lost meets its own earlier success as a
conflict, which the caller's re-read resolves). Any other refusal is final.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import aiohttp
import tenacity
from opentelemetry import trace

from kubesteps.kube.api_errors import ApiError

log = logging.getLogger("kubesteps.kube")

ATTEMPTS = 5
# A server asking for more than this is still retried, only sooner: a reconcile pass must not
# sit on one request for minutes (the pass's own requeue backoff takes over after the last try).
MAX_RETRY_AFTER = 10.0


def transient(error: BaseException) -> bool:
    """Whether a failed API call may succeed if simply sent again."""
    if isinstance(error, ApiError):
        return error.status == 429 or (error.status >= 500 and error.status != 501)
    return isinstance(
        error, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError | TimeoutError
    )


def _wait(state: tenacity.RetryCallState) -> float:
    outcome = state.outcome
    error = outcome.exception() if outcome is not None else None
    if isinstance(error, ApiError) and error.retry_after is not None:
        return min(error.retry_after, MAX_RETRY_AFTER)
    return float(tenacity.wait_exponential_jitter(multiplier=0.1, max=5.0, jitter=0.2)(state))


def _note_retry(state: tenacity.RetryCallState) -> None:
    """One debug line, and an event ``retry`` on the current span (a status write, if traced)."""
    outcome = state.outcome
    error = outcome.exception() if outcome is not None else None
    delay = float(state.next_action.sleep) if state.next_action is not None else 0.0
    log.debug(
        "API call failed (attempt %d), retrying in %.2fs: %s", state.attempt_number, delay, error
    )
    span = trace.get_current_span()
    if span.is_recording():
        attributes: dict[str, int | float] = {
            "kubesteps.retry.attempt": state.attempt_number,
            "kubesteps.retry.delay_s": delay,
        }
        if isinstance(error, ApiError):
            attributes["http.response.status_code"] = error.status
        span.add_event("retry", attributes)


Sleep = Callable[[float], Awaitable[None]]


def retrying(attempts: int = ATTEMPTS, *, sleep: Sleep = asyncio.sleep) -> tenacity.AsyncRetrying:
    """A fresh tenacity controller for one API call (or one status write)."""
    return tenacity.AsyncRetrying(
        sleep=sleep,
        retry=tenacity.retry_if_exception(transient),
        wait=_wait,
        stop=tenacity.stop_after_attempt(attempts),
        before_sleep=_note_retry,
        reraise=True,
    )
