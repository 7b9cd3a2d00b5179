"""kopf handlers for Pipelines: one reconcile pass per create, update and resume.

The pass's result maps to kopf the controller-runtime way: done returns (or, when a resync
or a throttled step is due, asks to be called again), waiting and retrying raise
``kopf.TemporaryError(delay=...)``, a failure for good or an invalid spec raises
``kopf.PermanentError`` (no retries until the spec changes). No finalizer: objects a
Pipeline creates carry an ownerReference and go with it through garbage collection.

A pass that kopf did not start (an approval or spec change arriving while kopf holds
back a delayed retry) gets its next pass from a small per-Pipeline daemon, which sleeps
until then; passes of one Pipeline never overlap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import kopf

from kubesteps.actions.params import APPROVAL_ANNOTATION_PREFIX
from kubesteps.controller.reconciler import PassResult, Reconciler
from kubesteps.pipeline.model import API_VERSION

GROUP, VERSION = API_VERSION.split("/")
PLURAL = "pipelines"


def to_kopf(result: PassResult) -> None:
    """Return for done-with-nothing-due, raise for everything else."""
    if result.permanent:
        raise kopf.PermanentError(f"{result.outcome}: {result.message}")
    if result.delay is not None:
        label = "resync" if result.outcome == "done" else result.outcome
        raise kopf.TemporaryError(f"{label}: {result.message}", delay=max(result.delay, 0.1))


@dataclass
class _Schedule:
    """Per-Pipeline bookkeeping, kept in kopf's per-object memo."""

    # kopf runs a Pipeline's event and change handlers one after another, but the requeue
    # daemon runs beside them: passes of one Pipeline take turns through this lock.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    # When the requeue daemon should run the next pass (loop time), for passes kopf does
    # not schedule itself; None: kopf's own retry (or nothing) comes next.
    due: float | None = None
    seen: tuple[Any, ...] | None = None


def _schedule(memo: kopf.Memo) -> _Schedule:
    schedule = memo.get("kubesteps")
    if not isinstance(schedule, _Schedule):
        schedule = memo["kubesteps"] = _Schedule()
    return schedule


def _fingerprint(body: kopf.Body) -> tuple[Any, ...]:
    """What, when it changes, deserves a pass at once: the spec and the approvals."""
    approvals = sorted(
        (key, value) for key, value in body.metadata.annotations.items()
        if key.startswith(APPROVAL_ANNOTATION_PREFIX)
    )
    return (body.metadata.get("generation"), tuple(approvals))


async def _run_pass(
    reconciler: Reconciler, body: kopf.Body, schedule: _Schedule, *, by_kopf: bool
) -> PassResult:
    async with schedule.lock:
        schedule.seen = _fingerprint(body)
        result = await reconciler.reconcile(dict(body))
    if by_kopf or result.delay is None or result.permanent:
        schedule.due = None  # kopf's retry (from to_kopf) schedules the next pass, if any
    else:
        schedule.due = asyncio.get_running_loop().time() + result.delay
        schedule.wake.set()
    return result


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
        to_kopf(await _run_pass(reconciler, body, _schedule(memo), by_kopf=True))

    # While a pass waits out its requeue delay, kopf holds its handler back even when the
    # object changes. Approvals and spec changes should not wait that long: when one
    # arrives, run a pass at once, and let the requeue daemon keep the time that pass asks
    # for. Our own status writes change neither, so they cause no pass.
    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry, id="nudge")
    async def nudge(body: kopf.Body, memo: kopf.Memo, type: str | None, **_: Any) -> None:
        if type == "DELETED":
            reconciler.forget(dict(body))  # no finalizer, so no delete handler: it is gone
            return
        schedule = _schedule(memo)
        if schedule.seen is None or schedule.seen == _fingerprint(body):
            return
        if body.meta.deletion_timestamp:
            return
        await _run_pass(reconciler, body, schedule, by_kopf=False)

    @kopf.daemon(GROUP, VERSION, PLURAL, registry=registry, id="requeue",
                 cancellation_timeout=1.0)
    async def requeue(body: kopf.Body, memo: kopf.Memo, stopped: kopf.DaemonStopped,
                      logger: logging.Logger | logging.LoggerAdapter[Any], **_: Any) -> None:
        """Runs the passes that passes outside kopf's retries asked for (see ``nudge``)."""
        schedule = _schedule(memo)
        loop = asyncio.get_running_loop()
        while not stopped:
            due = schedule.due
            if due is None or due > loop.time():
                schedule.wake.clear()
                timeout = None if due is None else due - loop.time()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(schedule.wake.wait(), timeout)
                continue
            schedule.due = None
            try:
                await _run_pass(reconciler, body, schedule, by_kopf=False)
            except Exception as error:  # a failing pass must not end the daemon
                logger.warning("requeued pass failed: %s; trying again in 10s", error)
                schedule.due = loop.time() + 10

    if login is not None:
        kopf.on.login(registry=registry, id="kubesteps-login")(login)


def quiet_temporary_errors() -> logging.Filter:
    """kopf logs every TemporaryError at ERROR; a requeue is routine, so show it as INFO."""

    class Requeues(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            if record.levelno == logging.ERROR and "failed temporarily: " in record.getMessage():
                record.levelno, record.levelname = logging.INFO, "INFO"
            return True

    return Requeues()
