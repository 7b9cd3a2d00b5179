"""kopf handlers for Pipelines: one reconcile pass per create, update and resume.

The pass's result maps to kopf the controller-runtime way: done returns (or, when a resync
or a throttled step is due, asks to be called again), waiting and retrying raise
``kopf.TemporaryError(delay=...)``, a failure for good or an invalid spec raises
``kopf.PermanentError`` (no retries until the spec changes). No finalizer: objects a
Pipeline creates carry an ownerReference and go with it through garbage collection.

A pass that kopf did not start (an approval or spec change arriving while kopf holds
back a delayed retry) keeps its own next pass with a timer; passes of one Pipeline never
overlap.

A pass that fails outright (its status write refused even after the API client's retries,
the API server unreachable) is tried again with a backoff of its own, counted per
Pipeline (1 s, 2 s, 4 s ... at most 2 min), and logged in one line; only an error nobody
foresaw (a bug) is logged with its traceback. Every message kopf gets is redacted first:
kopf keeps it in the Pipeline's annotations.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import aiohttp
import kopf

from kubesteps.controller.reconciler import PassOutcome, PassResult, Reconciler
from kubesteps.engine import RetryPolicy
from kubesteps.engine.errors import short_message
from kubesteps.keepers.status_keeper import status_digest
from kubesteps.kube.client import ApiError
from kubesteps.kube.meta import meta_of
from kubesteps.pipeline.model import API_VERSION
from kubesteps.pipeline.runs import APPROVAL_PREFIX, VERB_ANNOTATIONS
from kubesteps.telemetry.redaction import redact

GROUP, VERSION = API_VERSION.split("/")
PLURAL = "pipelines"

log = logging.getLogger("kubesteps.controller")


# The backoff of passes that fail outright; the limit is never reached (a pass is always
# tried again), only the delay's growth stops at max_delay.
FAILED_PASS_BACKOFF = RetryPolicy(
    limit=1_000_000,
    initial=timedelta(seconds=1),
    max_delay=timedelta(minutes=2),
    jitter=timedelta(seconds=0.5),
)
# What a pass may meet from the outside world: an API refusal, no answer, a timeout.
FORESEEN = (ApiError, aiohttp.ClientError, TimeoutError, OSError)
# How the message kopf gets for such a pass begins (kopf keeps it in its annotations).
PASS_FAILED = "pass failed: "


def to_kopf(result: PassResult) -> None:
    """Return for done-with-nothing-due, raise for everything else."""
    if result.permanent:
        raise kopf.PermanentError(redact(f"{result.outcome}: {result.message}"))
    if result.delay is not None:
        label = "resync" if result.outcome is PassOutcome.DONE else result.outcome
        raise kopf.TemporaryError(
            redact(f"{label}: {result.message}"), delay=max(result.delay, 0.1)
        )


def failed_pass(body: Mapping[str, Any], schedule: _Schedule, error: Exception) -> float:
    """Count a pass that raised, log it in one line, and return the delay to the next try."""
    schedule.failures += 1
    delay = FAILED_PASS_BACKOFF.delay(schedule.failures, schedule.rng)
    meta = meta_of(body)
    what = f"{meta.namespace}/{meta.name}"
    text = redact(short_message(error))
    if isinstance(error, FORESEEN):
        log.warning(
            "pass of %s failed (%d in a row), next try in %.3gs: %s",
            what,
            schedule.failures,
            delay,
            text,
        )
    else:
        log.error(
            "pass of %s failed unexpectedly (%d in a row), next try in %.3gs",
            what,
            schedule.failures,
            delay,
            exc_info=error,
        )
    return delay


def _temporary(
    body: Mapping[str, Any], schedule: _Schedule, error: Exception
) -> kopf.TemporaryError:
    delay = failed_pass(body, schedule, error)
    return kopf.TemporaryError(f"{PASS_FAILED}{redact(short_message(error))}", delay=delay)


@dataclass
class _Schedule:
    """Per-Pipeline bookkeeping, kept in kopf's per-object memo."""

    # kopf runs one Pipeline's event and change handlers one after another, but a requeued
    # pass (below) runs beside them: the passes of one Pipeline take turns through this lock.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # The next pass asked for by a pass kopf did not schedule itself.
    timer: asyncio.TimerHandle | None = None
    task: asyncio.Task[None] | None = None
    seen: tuple[Any, ...] | None = None
    # The status as our last pass left it (a digest): a pass handed a body whose status is
    # another (the same event for kopf's handler and the nudge, a body from before our last
    # write) reads the object afresh first, or it would act again on what the last pass
    # already did: run a step whose success it recorded, act on a verb or an approval.
    # kopf's own writes (its annotations, status.kopf) do not count, so they cost no read.
    status: str | None = None
    # Passes that raised in a row (their backoff), and the jitter's randomness.
    failures: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


def _schedule(memo: kopf.Memo) -> _Schedule:
    schedule = memo.get("kubesteps")
    if not isinstance(schedule, _Schedule):
        schedule = memo["kubesteps"] = _Schedule()
    return schedule


def _fingerprint(body: Mapping[str, Any]) -> tuple[Any, ...]:
    """What, when it changes, deserves a pass at once: the spec, approvals and verbs."""
    meta = meta_of(body)
    verbs = set(VERB_ANNOTATIONS.values())
    steering = sorted(
        (key, value)
        for key, value in meta.annotations.items()
        if key.startswith(APPROVAL_PREFIX) or key in verbs
    )
    return (meta.generation, tuple(steering))


async def _run_pass(
    reconciler: Reconciler, body: Mapping[str, Any], schedule: _Schedule, *, by_kopf: bool
) -> PassResult:
    async with schedule.lock:
        schedule.cancel()
        if schedule.status is not None and status_digest(body.get("status")) != schedule.status:
            fresh = await reconciler.fetch(body)
            if fresh is None:
                return PassResult(
                    outcome=PassOutcome.DONE, delay=None, message="the Pipeline is gone"
                )
            body = fresh
        schedule.seen = _fingerprint(body)
        result = await reconciler.reconcile(dict(body))
        schedule.status = result.status_digest or None
        schedule.failures = 0
    if not by_kopf and result.delay is not None and not result.permanent:
        # kopf's own retry (from to_kopf) schedules the next pass of passes it started;
        # this one it did not start, so we keep its time ourselves. No kopf daemon or
        # timer for this: those would put a finalizer on every Pipeline.
        _later(reconciler, body, schedule, result.delay)
    return result


def _later(
    reconciler: Reconciler, body: Mapping[str, Any], schedule: _Schedule, delay: float
) -> None:
    loop = asyncio.get_running_loop()
    schedule.timer = loop.call_later(delay, _requeue, reconciler, dict(body), schedule)


def _requeue(reconciler: Reconciler, body: Mapping[str, Any], schedule: _Schedule) -> None:
    schedule.timer = None

    async def again() -> None:
        try:
            fresh = await reconciler.fetch(body)
            if fresh is None:
                return  # deleted meanwhile
            await _run_pass(reconciler, fresh, schedule, by_kopf=False)
        except Exception as error:
            _later(reconciler, body, schedule, failed_pass(body, schedule, error))

    schedule.task = asyncio.ensure_future(again())


def register(
    registry: kopf.OperatorRegistry,
    reconciler: Reconciler,
    *,
    login: Callable[..., kopf.ConnectionInfo | None] | None = None,
) -> None:
    """Attach the Pipeline handlers (and optionally a login handler) to ``registry``."""

    @kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry, id="reconcile")
    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry, id="reconcile")
    @kopf.on.update(GROUP, VERSION, PLURAL, registry=registry, id="reconcile")
    async def reconcile(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        schedule = _schedule(memo)
        try:
            result = await _run_pass(reconciler, body, schedule, by_kopf=True)
        except Exception as error:
            raise _temporary(body, schedule, error) from error
        to_kopf(result)

    # While a pass waits out its requeue delay, kopf holds its handler back even when the
    # object changes. Approvals and spec changes should not wait that long: when one
    # arrives, run a pass at once, and keep the time that pass asks for. Our own status
    # writes change neither, so they cause no pass.
    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry, id="nudge")
    async def nudge(body: kopf.Body, memo: kopf.Memo, type: str | None, **_: Any) -> None:
        schedule = _schedule(memo)
        if type == "DELETED":
            schedule.cancel()
            reconciler.forget(dict(body))  # no finalizer, so no delete handler: it is gone
            try:
                await reconciler.release_mutexes(dict(body))
            except Exception as error:  # the next run that asks finds it gone
                log.warning("could not release the mutexes of %s: %s", body.meta.name, error)
            return
        if schedule.seen is None or schedule.seen == _fingerprint(body):
            return
        if body.meta.deletion_timestamp:
            return
        try:
            await _run_pass(reconciler, body, schedule, by_kopf=False)
        except Exception as error:
            _later(reconciler, body, schedule, failed_pass(body, schedule, error))

    if login is not None:
        kopf.on.login(registry=registry, id="kubesteps-login")(login)


def quiet_temporary_errors() -> logging.Filter:
    """Leave out what kopf logs on every pass and our own lines say already.

    kopf logs each ``TemporaryError`` (a requeue: routine) at ERROR, each pass of the
    ``nudge`` handler (every watch event) at INFO; the pass line of the reconciler says
    how the pass ended and when the next one is, the engine logs each failed attempt with
    its retry delay, and a pass that failed outright was logged already, in one line
    (``failed_pass``): one line per attempt, not three.
    """

    class Requeues(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            message = record.getMessage()
            if "failed temporarily: " in message:
                return False
            if message.startswith("Unresolved resources") and GROUP in message:
                # kopf says "try creating their CRDs", also of a CRD that is there but not
                # served yet; the operator's start-up check said which it is.
                record.msg, record.args = (
                    f"{PLURAL}.{GROUP}/{VERSION} is not served by the API server (yet): the "
                    "CRD is missing, not established, or does not serve this version",
                    (),
                )
            return not message.startswith("Handler 'nudge' succeeded")

    return Requeues()
