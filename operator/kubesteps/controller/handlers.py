"""kopf handlers for Pipelines: one reconcile pass per create, update and resume.

The pass's result maps to kopf the controller-runtime way: done returns (or, when a resync
or a throttled step is due, asks to be called again), waiting and retrying raise
``kopf.TemporaryError(delay=...)``, a failure for good or an invalid spec raises
``kopf.PermanentError`` (no retries until the spec changes). No finalizer: objects a
Pipeline creates carry an ownerReference and go with it through garbage collection.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
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


_SEEN = "kubesteps_seen"


def _fingerprint(body: kopf.Body) -> tuple[Any, ...]:
    """What, when it changes, deserves a pass at once: the spec and the approvals."""
    approvals = sorted(
        (key, value) for key, value in body.metadata.annotations.items()
        if key.startswith(APPROVAL_ANNOTATION_PREFIX)
    )
    return (body.metadata.get("generation"), tuple(approvals))


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
        memo[_SEEN] = _fingerprint(body)
        to_kopf(await reconciler.reconcile(dict(body)))

    # While a pass waits out its requeue delay, kopf holds back the handler even when the
    # object changes. Approvals and spec changes should not wait that long: when one arrives,
    # run a pass at once (kopf runs event handlers and change handlers of one object in turn,
    # so passes never overlap). Our own status writes change neither, so they cause no pass.
    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry, id="nudge")
    async def nudge(body: kopf.Body, memo: kopf.Memo, type: str | None, **_: Any) -> None:
        seen = memo.get(_SEEN)
        current = _fingerprint(body)
        if type == "DELETED" or seen is None or seen == current or body.meta.deletion_timestamp:
            return
        memo[_SEEN] = current
        await reconciler.reconcile(dict(body))

    @kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry, optional=True, id="forget")
    async def forget(body: kopf.Body, **_: Any) -> None:
        reconciler.forget(dict(body))

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
