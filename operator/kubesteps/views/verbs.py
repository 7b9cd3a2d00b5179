"""The verbs that steer a Pipeline, each exactly the API call of docs/runs.md.

- ``approve``/``reject``: the annotation ``kubesteps.dev/approve.<step>``, bound to the run
  that waits (``alice@release-3``, ``reject@release-3``);
- ``retry``/``rerun``/``cancel``: the annotation ``kubesteps.dev/<verb>`` with a new token;
- ``suspend``/``resume``: ``spec.suspend`` true/false.

Each is a merge patch of the Pipeline. Before patching, each checks that it makes sense in
the state the Pipeline is in, and raises ``NotApplicable`` naming that state otherwise
(a retry of a run with nothing failed, a cancel of a finished run, an approval of a step
that does not wait). ``wait_for`` blocks until the effect is visible on the object.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from kubesteps.kube.client import ApiError, KubeClient
from kubesteps.pipeline.runs import (
    APPROVAL_PREFIX,
    CANCELLED,
    FAILED,
    SUSPENDED,
    VERB_ANNOTATIONS,
    token_key,
)
from kubesteps.pipeline.suggest import did_you_mean
from kubesteps.views.api import get_pipeline, refusals, watch_pipeline
from kubesteps.views.view_errors import (
    NotApplicable,
    StepNotFound,
    VerbIgnored,
    WaitTimedOut,
)
from kubesteps.views.view_model import API_VERSION, KIND, PLURAL, PipelineView, pipeline_view

VerbName = Literal["approve", "reject", "retry", "rerun", "cancel", "suspend", "resume"]
VERB_NAMES: tuple[VerbName, ...] = (
    "approve",
    "reject",
    "retry",
    "rerun",
    "cancel",
    "suspend",
    "resume",
)


@dataclass(frozen=True, kw_only=True)
class VerbResult:
    """What a verb did: the patch it sent, and what it means."""

    verb: VerbName
    namespace: str
    pipeline: str
    patch: Mapping[str, Any]
    summary: str
    # The view the verb decided on (before the patch), and the object it patched.
    before: PipelineView
    step: str | None = None
    token: str | None = None
    value: str | None = None
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "verb": self.verb,
            "namespace": self.namespace,
            "pipeline": self.pipeline,
            "patch": dict(self.patch),
            "summary": self.summary,
        }
        for key, value in (("step", self.step), ("token", self.token), ("value", self.value)):
            if value is not None:
                data[key] = value
        if self.notes:
            data["notes"] = list(self.notes)
        return data


def new_token() -> str:
    """A verb token no one used before: the time, and random bits for the same second."""
    return f"{int(time.time())}-{secrets.token_hex(3)}"


async def _patch(
    client: KubeClient, view: PipelineView, patch: Mapping[str, Any], verb: str
) -> None:
    with refusals("patch", PLURAL, view.namespace, f"{verb} of pipeline {view.name!r}"):
        await client.patch(API_VERSION, KIND, view.name, view.namespace, dict(patch))


async def _view(client: KubeClient, namespace: str, name: str) -> PipelineView:
    return pipeline_view(await get_pipeline(client, namespace, name))


def _run_state(view: PipelineView) -> str:
    if view.run is None or view.run.pending:
        return "no run has started yet"
    state = f"run {view.run.id} is {view.run.phase}"
    return state + (f" ({view.run.reason})" if view.run.reason not in ("", view.run.phase) else "")


# -- approvals ----------------------------------------------------------------------------


async def whoami(client: KubeClient) -> str | None:
    """The user name the API server authenticated (``kubectl auth whoami``), or None when
    the server does not say (older servers, the project's emulator)."""
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    try:
        answer = await client.request(
            "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", body=review, retry=False
        )
    except (ApiError, OSError, TimeoutError):
        return None
    name = ((answer.get("status") or {}).get("userInfo") or {}).get("username")
    return str(name) if name else None


def _approval_step(view: PipelineView, step: str, verb: str) -> None:
    node = view.find(step)
    if node is None:
        approvals = [n.name for n in view.walk() if n.action == "approval"]
        raise StepNotFound(view.name, step, did_you_mean(step, approvals or view.step_names))
    if node.action != "approval":
        raise NotApplicable(
            verb, view.name, f"step {step!r} is a {node.action or node.kind} step, not an approval"
        )
    if node.phase != "Waiting":
        waiting = view.waiting_approvals
        fix = f"waiting for an approval: {', '.join(waiting)}" if waiting else ""
        raise NotApplicable(
            verb,
            view.name,
            f"step {step!r} is {node.phase}, not waiting for an approval ({_run_state(view)})",
            fix,
        )


async def approve(
    client: KubeClient,
    namespace: str,
    name: str,
    step: str,
    *,
    by: str | None = None,
    message: str | None = None,
) -> VerbResult:
    """Approve ``step`` for the run that waits: ``kubesteps.dev/approve.<step>=<by>@<run>``.

    ``by`` defaults to the authenticated user name (what the chart's approval policy asks
    for), else ``approve``. ``message`` goes into a Normal Event on the Pipeline."""
    return await _answer(client, namespace, name, step, approved=True, by=by, message=message)


async def reject(
    client: KubeClient, namespace: str, name: str, step: str, *, message: str | None = None
) -> VerbResult:
    """Reject ``step`` for the run that waits: ``kubesteps.dev/approve.<step>=reject@<run>``."""
    return await _answer(client, namespace, name, step, approved=False, by=None, message=message)


async def _answer(
    client: KubeClient,
    namespace: str,
    name: str,
    step: str,
    *,
    approved: bool,
    by: str | None,
    message: str | None,
) -> VerbResult:
    verb: VerbName = "approve" if approved else "reject"
    view = await _view(client, namespace, name)
    _approval_step(view, step, verb)
    assert view.run is not None
    who = (by or await whoami(client) or "approve") if approved else "reject"
    value = f"{who}@{view.run.id}"
    patch = {"metadata": {"annotations": {APPROVAL_PREFIX + step: value}}}
    await _patch(client, view, patch, verb)
    did = "approved" if approved else "rejected"
    notes: list[str] = []
    if message:
        note = await _post_event(
            client,
            view,
            "Approved" if approved else "Rejected",
            f"{view.run.id}: step {step!r} {did}"
            + (f" by {who}" if who not in ("approve", "reject") else "")
            + f": {message}",
        )
        if note:
            notes.append(note)
    summary = (
        f"{did} step {step!r} of run {view.run.id}"
        + (f" as {who}" if approved else "")
        + f" ({APPROVAL_PREFIX}{step}={value})"
    )
    return VerbResult(
        verb=verb,
        namespace=namespace,
        pipeline=name,
        patch=patch,
        summary=summary,
        before=view,
        step=step,
        value=value,
        notes=tuple(notes),
    )


async def _post_event(
    client: KubeClient, view: PipelineView, reason: str, message: str
) -> str | None:
    """Post a Normal Event on the Pipeline; a note when that was refused."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{view.name}.{time.time_ns():x}", "namespace": view.namespace},
        "involvedObject": {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": view.name,
            "namespace": view.namespace,
            "uid": view.uid,
        },
        "reason": reason,
        "message": message[:1024],
        "type": "Normal",
        "source": {"component": "kubectl-kubesteps"},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    try:
        await client.create(event, view.namespace)
    except ApiError as error:
        return f"the message was not recorded (creating an Event: {error.status} {error.reason})"
    return None


# -- run verbs ----------------------------------------------------------------------------


def _failed_steps(view: PipelineView) -> list[str]:
    return [node.name for node in view.walk() if node.phase == "Failed"]


async def _token_verb(
    client: KubeClient,
    namespace: str,
    name: str,
    verb: VerbName,
    check: Callable[[PipelineView], None],
    summary: str,
) -> VerbResult:
    view = await _view(client, namespace, name)
    check(view)
    token = new_token()
    annotation = VERB_ANNOTATIONS[verb]
    patch = {"metadata": {"annotations": {annotation: token}}}
    await _patch(client, view, patch, verb)
    return VerbResult(
        verb=verb,
        namespace=namespace,
        pipeline=name,
        patch=patch,
        summary=f"{summary.format(view=view, run=_run_id(view))} ({annotation}={token})",
        before=view,
        token=token,
    )


def _run_id(view: PipelineView) -> str:
    return view.run.id if view.run is not None else "-"


def _invalid(view: PipelineView, verb: str) -> None:
    if view.ready is not None and view.ready.reason == "InvalidSpec":
        raise NotApplicable(
            verb,
            view.name,
            "the spec is invalid (Ready reason InvalidSpec)",
            "fix the spec first (kubesteps validate FILE)",
        )


def _check_retry(view: PipelineView) -> None:
    _invalid(view, "retry")
    if view.run is None or view.run.pending:
        raise NotApplicable("retry", view.name, "no run has started yet, nothing to retry")
    if view.run.phase not in (FAILED, CANCELLED) and not _failed_steps(view):
        raise NotApplicable(
            "retry",
            view.name,
            f"{_run_state(view)} with no failed step, nothing to retry",
            "to run every step again: rerun",
        )


def _check_cancel(view: PipelineView) -> None:
    if view.run is None or view.run.pending:
        raise NotApplicable("cancel", view.name, "no run has started yet, nothing to cancel")
    if view.run.finished:
        raise NotApplicable("cancel", view.name, f"{_run_state(view)}, nothing to cancel")


def _check_rerun(view: PipelineView) -> None:
    _invalid(view, "rerun")


async def retry(client: KubeClient, namespace: str, name: str) -> VerbResult:
    """Start the failed (cancelled, timed-out, rejected) steps of the current run again."""
    return await _token_verb(
        client, namespace, name, "retry", _check_retry, "asked for a retry of run {run}"
    )


async def rerun(client: KubeClient, namespace: str, name: str) -> VerbResult:
    """Start a new run from scratch."""
    return await _token_verb(
        client, namespace, name, "rerun", _check_rerun, "asked for a new run after {run}"
    )


async def cancel(client: KubeClient, namespace: str, name: str) -> VerbResult:
    """Stop the steps at work (their Jobs are deleted); the run ends Cancelled."""
    return await _token_verb(
        client, namespace, name, "cancel", _check_cancel, "asked to cancel run {run}"
    )


async def suspend(client: KubeClient, namespace: str, name: str) -> VerbResult:
    """``spec.suspend: true``: no new step starts until resumed."""
    view = await _view(client, namespace, name)
    if view.suspend:
        raise NotApplicable(
            "suspend",
            name,
            f"it is suspended already ({_run_state(view)})",
            f"resume it with: kubectl kubesteps resume {name}",
        )
    patch = {"spec": {"suspend": True}}
    await _patch(client, view, patch, "suspend")
    notes: tuple[str, ...] = ()
    if view.run is not None and view.run.finished:
        notes = (f"{_run_state(view)}: suspending it only stops its resync passes",)
    return VerbResult(
        verb="suspend",
        namespace=namespace,
        pipeline=name,
        patch=patch,
        summary=f"suspended pipeline {name!r} (spec.suspend: true)",
        before=view,
        notes=notes,
    )


async def resume(client: KubeClient, namespace: str, name: str) -> VerbResult:
    """``spec.suspend: false``: the same run goes on."""
    view = await _view(client, namespace, name)
    if not view.suspend:
        raise NotApplicable("resume", name, f"it is not suspended ({_run_state(view)})")
    patch = {"spec": {"suspend": False}}
    await _patch(client, view, patch, "resume")
    return VerbResult(
        verb="resume",
        namespace=namespace,
        pipeline=name,
        patch=patch,
        summary=f"resumed pipeline {name!r} (spec.suspend: false)",
        before=view,
    )


# -- waiting for the effect ---------------------------------------------------------------


def effect_visible(result: VerbResult, view: PipelineView) -> bool:
    """Whether ``view`` shows what ``result`` asked for. Raises ``VerbIgnored`` when the
    operator handled the verb's token without acting on it."""
    before = result.before
    run, old = view.run, before.run
    new_run = run is not None and old is not None and run.number > old.number
    if result.verb in ("approve", "reject"):
        node = view.find(result.step or "")
        return new_run or node is None or node.phase != "Waiting"
    if result.verb == "rerun":
        visible = new_run
    elif result.verb == "retry":
        visible = new_run or (run is not None and old is not None and run.retries > old.retries)
    elif result.verb == "cancel":
        visible = new_run or (run is not None and run.phase == CANCELLED)
    elif result.verb == "suspend":
        return view.observed_generation > before.observed_generation and (
            run is None or run.finished or run.phase == SUSPENDED
        )
    else:  # resume
        return view.observed_generation > before.observed_generation and (
            run is None or run.phase != SUSPENDED
        )
    handled = view.handled_tokens.get(result.verb, ())
    if not visible and result.token is not None and token_key(result.token) in handled:
        raise VerbIgnored(
            result.verb, result.pipeline, f"{_run_state(view)} (see its VerbIgnored Event)"
        )
    return visible


async def wait_for(
    client: KubeClient, result: VerbResult, *, seconds: float = 60.0
) -> PipelineView:
    """Watch the Pipeline until the verb's effect is visible; the view that shows it."""
    view = result.before
    try:
        async with asyncio.timeout(seconds):
            async for obj in watch_pipeline(client, result.namespace, result.pipeline):
                view = pipeline_view(obj)
                if effect_visible(result, view):
                    return view
    except TimeoutError:
        raise WaitTimedOut(
            f"the {result.verb} of {result.pipeline!r} to show", seconds, _run_state(view)
        ) from None
    raise WaitTimedOut(
        f"the {result.verb} of {result.pipeline!r} to show", seconds, _run_state(view)
    )


__all__ = [
    "VERB_NAMES",
    "VerbName",
    "VerbResult",
    "approve",
    "cancel",
    "effect_visible",
    "new_token",
    "reject",
    "rerun",
    "resume",
    "retry",
    "suspend",
    "wait_for",
    "whoami",
]
