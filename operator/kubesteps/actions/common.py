"""What several actions share: API errors read as engine signals, and how often to poll."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import aiohttp

from kubesteps.actions.base import ActionContext
from kubesteps.engine import PermanentError, RetryableError
from kubesteps.kube.client import ApiError, KubeClient, ResourceRef

# The statuses after which this pass continues the same streak of work: the engine keeps the
# step's first start time across them, and so do the timeouts measured here.

FIRST_POLL = 5.0
LONGEST_POLL = 60.0

# Key in ``ActionContext.extras``: when true (the operator's ``--allow-cross-namespace``),
# ``apply`` and ``waitFor`` may reach namespaces other than the Pipeline's own.
ALLOW_CROSS_NAMESPACE = "allow_cross_namespace"


def api_failure(err: ApiError, doing: str) -> Exception:
    """The engine signal for an API error met while ``doing`` something.

    Conflicts, throttling and server errors may pass: retry (after the server's
    ``Retry-After`` when it gave one). Anything else is a refusal no retry changes.
    """
    text = f"{doing}: {err.status} {err.reason}: {err.message}"
    if err.transient:
        return RetryableError(text, err.retry_after)
    if err.status in (401, 403):
        text += " (the operator's service account lacks this permission: see docs/actions.md)"
    return PermanentError(text)


@contextmanager
def api_call(doing: str) -> Iterator[None]:
    """Turn what the API client raises inside the block into engine signals."""
    try:
        yield
    except ApiError as err:
        raise api_failure(err, doing) from err
    except (aiohttp.ClientError, TimeoutError) as err:
        reason = str(err) or type(err).__name__
        raise RetryableError(f"{doing}: the API server could not be reached: {reason}") from err


def wait_started(ctx: ActionContext) -> datetime:
    """When the step's current streak of waits and retries began (now, if this pass starts it)."""
    return ctx.step.started_at


def poll_delay(elapsed: float) -> float:
    """Seconds until the next look at something slow.

    Often at first, then a tenth of the time waited so far (a ten-minute Job is looked at
    once a minute, not 120 times), never less than ``FIRST_POLL`` nor more than ``LONGEST_POLL``.
    """
    return min(LONGEST_POLL, max(FIRST_POLL, elapsed / 10))


def check_namespace(ctx: ActionContext, namespace: str, field: str, what: str) -> None:
    """Refuse ``namespace`` unless it is the Pipeline's own or the operator allows any.

    Whoever may create a Pipeline in one namespace must not borrow the operator's rights in
    another: with cluster-wide RBAC that would let one tenant write (or read) into another's
    namespace. ``field`` is where the namespace came from, ``what`` the object (kind and name).
    """
    if namespace == ctx.namespace or ctx.extras.get(ALLOW_CROSS_NAMESPACE) is True:
        return
    # Status messages are cut at 300 characters: what and how to allow it come first.
    raise PermanentError(
        f"{field}: {what} in namespace {namespace!r} is refused: a Pipeline acts only in its "
        f"own namespace ({ctx.namespace!r}) unless the operator runs with "
        "--allow-cross-namespace (chart value allowCrossNamespace), so that its authors "
        "cannot use the operator's rights elsewhere"
    )


def owner_reference(ctx: ActionContext) -> dict[str, Any]:
    """The Pipeline as owner, or a clear failure when it has no uid to be referenced by."""
    reference = ctx.owner_reference()
    if not reference.get("uid"):
        raise PermanentError(
            f"pipeline {ctx.pipeline_name!r} has no metadata.uid (it was not read from the "
            "API server), so it cannot own objects"
        )
    return reference


async def resolve(kube: KubeClient, api_version: str, kind: str) -> ResourceRef | None:
    """The served resource of a kind, or None when the server does not serve it."""
    with api_call(f"looking up kind {kind} in {api_version}"):
        try:
            return await kube.resource(api_version, kind)
        except ApiError as err:
            if err.status == 404:
                return None
            raise
