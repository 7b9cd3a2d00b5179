"""What a reconcile pass does around the steps for the run: approvals it may see, how a
finished run reads, the Events and the span a run's changes produce.

The run model itself (``kubesteps.pipeline.runs``) is pure; this module is the part of the
controller that turns its decisions into what users see.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace

from kubesteps.keepers.summary import Summary
from kubesteps.pipeline import runs
from kubesteps.pipeline.model import Pipeline

# emit(reason, message, warning=...)
Emit = Callable[..., None]
# count(run): a run ended (metrics and its span)
Count = Callable[[runs.Run], None]


def time_left(pipeline: Pipeline, run: runs.Run, now: datetime) -> float | None:
    """Seconds the run may still take under spec.timeout (None: no timeout)."""
    if pipeline.spec.timeout is None:
        return None
    return pipeline.spec.timeout.total_seconds() - run.active_seconds(now)


# Ready's reason (and the run's) when the run succeeded with continueOnError steps failed.
WITH_ERRORS = "SucceededWithErrors"


def with_errors(failed: list[str]) -> str:
    """What a run that went on past failed ``continueOnError`` steps says about them."""
    names = ", ".join(repr(name) for name in failed[:5])
    more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
    which = "step" if len(failed) == 1 else "steps"
    return (
        f"all steps are done, but {which} {names}{more} failed (continueOnError let the run go on)"
    )


def finished_summary(run: runs.Run) -> Summary:
    """The summary of a run that is over (or cancelled)."""
    if run.phase == runs.SUCCEEDED and run.reason == WITH_ERRORS:
        return Summary(
            ready="True", reason=WITH_ERRORS, message=run.message, reconciling=False, stalled=False
        )
    if run.phase == runs.SUCCEEDED:
        return Summary(
            ready="True",
            reason="Succeeded",
            message="all steps are done",
            reconciling=False,
            stalled=False,
        )
    reason = (
        run.reason
        if run.reason and run.reason != run.phase
        else ("Cancelled" if run.phase == runs.CANCELLED else "Failed")
    )
    message = run.message or f"run {run.id} {run.phase.lower()}"
    return Summary(
        ready="False",
        reason=reason,
        message=message,
        reconciling=False,
        stalled=True,
        current_step=run.failed_step,
    )


def approvals_for(
    body: Mapping[str, Any],
    run: runs.Run,
    handled: Mapping[str, tuple[str, str]],
    annotations: Mapping[str, str],
    removals: dict[str, str],
) -> tuple[Mapping[str, Any], list[str]]:
    """The object as the steps of this pass see it, without the approval answers that are
    not theirs: an answer acted on already (its removal did not land, or a re-applied
    manifest brought it back) and one that names another run. Both are added to
    ``removals``; each is reported, except the leftover of this very run."""
    hidden: set[str] = set()
    ignored: list[str] = []
    for step, value in runs.approvals(annotations).items():
        key = runs.APPROVAL_PREFIX + step
        answer = runs.read_approval(value, run.pipeline)
        used = handled.get(step)
        if used is not None and used[0] == runs.token_key(value):
            hidden.add(key)
            if used[1] != run.id:
                ignored.append(
                    f"{key}={value.strip()!r} ignored: this answer was given to run {used[1]} "
                    f"already; answer run {run.id} anew (e.g. {value.strip()}@{run.id})"
                )
        elif answer is not None and answer.run is not None and answer.run != run.number:
            hidden.add(key)
            ignored.append(
                f"{key}={value.strip()!r} ignored: it answers run "
                f"{runs.run_id(run.pipeline, answer.run)}, and the current run is {run.id}"
            )
        else:
            continue
        removals[key] = value
    if not hidden:
        return body, ignored
    meta = dict(body.get("metadata") or {})
    meta["annotations"] = {k: v for k, v in annotations.items() if k not in hidden}
    return {**body, "metadata": meta}, ignored


def run_events(
    emit: Emit,
    count: Count,
    *,
    stored: runs.Run | None,
    decision: runs.RunDecision,
    run: runs.Run,
    ignored: list[str],
    adopted: bool,
) -> None:
    """Events (and counts) for what happened to runs in this pass."""
    for ended in decision.ended:
        if stored is not None and ended.number == stored.number and stored.finished:
            continue  # it had ended before; it only went to the history now
        emit("RunSuperseded", f"{ended.id}: {ended.message}", warning=False)
        count(ended)
    if decision.started:
        emit("RunStarted", f"{run.id} started (trigger {run.trigger})", warning=False)
    for verb in decision.acted:
        if verb.verb == "retry":
            emit(
                "RunRetried",
                f"{run.id}: retry {run.retries} ({verb.annotation}="
                f"{verb.token}): failed steps start again",
                warning=False,
            )
    for verb in decision.replayed:
        emit(
            "VerbIgnored",
            f"{run.id}: {verb.annotation}={verb.token} ignored: this token "
            "was acted on already; set a new value to ask again",
            warning=False,
        )
    for idle in decision.idle:
        emit(
            "VerbIgnored",
            f"{run.id}: {idle.verb.annotation}={idle.verb.token} ignored: {idle.why}",
            warning=False,
        )
    for text in ignored:
        emit("ApprovalIgnored", f"{run.id}: {text}", warning=True)
    if adopted:
        return  # a status from before runs existed: nothing happened to the run now
    before = stored.phase if stored is not None and stored.number == run.number else None
    if run.phase == before and not decision.reset_failed:
        return
    if run.phase == runs.SUSPENDED:
        emit("RunSuspended", f"{run.id} is suspended", warning=False)
        return
    if before == runs.SUSPENDED and run.phase != runs.CANCELLED:
        emit("RunResumed", f"{run.id} resumed", warning=False)
    if run.finished and (run.phase != before or decision.reset_failed):
        text = f"{run.id} {run.phase.lower()}"
        if run.message:
            text += f": {run.message}"
        reason = "RunTimedOut" if run.reason == "TimedOut" else f"Run{run.phase}"
        emit(reason, text, warning=run.phase == runs.FAILED)
        count(run)


def trace_run(tracer: trace.Tracer, run: runs.Run) -> None:
    """One span for a whole run, emitted when it ends, with its real start and end times.

    A run spans many passes (each a trace of its own): this root span carries the run's id,
    trigger and phase, and links to the pass that ended it.
    """
    current = trace.get_current_span().get_span_context()
    links = [trace.Link(current)] if current.is_valid else []
    end = run.finished_at or run.started_at
    span = tracer.start_span(
        "run",
        context=otel_context.Context(),
        links=links,
        start_time=int(run.started_at.timestamp() * 1e9),
        attributes={
            "kubesteps.pipeline": run.pipeline,
            "kubesteps.run.id": run.id,
            "kubesteps.run.number": run.number,
            "kubesteps.run.trigger": run.trigger,
            "kubesteps.run.phase": run.phase,
            "kubesteps.run.retries": run.retries,
            **({"kubesteps.run.failed_step": run.failed_step} if run.failed_step else {}),
        },
    )
    if run.phase == runs.FAILED:
        span.set_status(trace.Status(trace.StatusCode.ERROR, run.message))
    span.end(end_time=int(max(end, run.started_at).timestamp() * 1e9))
