"""One reconcile pass of a Pipeline: validate, build, run the engine, write the status.

The pass returns a ``PassResult`` (pure data: the outcome label, the requeue delay and a
message); ``handlers.py`` maps it to kopf. Nothing here knows kopf, so the pass is tested
directly against the API emulator as well as through a running operator.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace

from kubesteps.actions.job import stop_jobs
from kubesteps.engine import (
    Outcome,
    OutcomeKind,
    PermanentError,
    RetryableError,
    RunContext,
    StepsEngine,
    StepState,
    StepStatus,
    requeue_delay,
)
from kubesteps.engine.durations import format_duration
from kubesteps.keepers.conditions import ConditionsKeeper, StatusStore, Summary, summarize
from kubesteps.kube.client import KubeClient
from kubesteps.kube.events import EventRecorder
from kubesteps.kube.status import ObjectRef, StatusWriter
from kubesteps.pipeline import runs
from kubesteps.pipeline.build import PASS_KEY, PassContext, Plan, build
from kubesteps.pipeline.cel import CelError
from kubesteps.pipeline.model import Pipeline
from kubesteps.pipeline.validate import SpecError, step_at, validate
from kubesteps.telemetry.metrics import OperatorMetrics

log = logging.getLogger("kubesteps.controller")
# kopf's bookkeeping annotations change on every pass; they are not part of the spec.
_KOPF_ANNOTATIONS = "kopf.zalando.org/"
_tracer = trace.get_tracer("kubesteps.controller")

# Events for the transitions a person watching `kubectl describe` cares about.
_EVENT_REASONS = {
    StepStatus.SUCCEEDED: ("StepSucceeded", False),
    StepStatus.FAILED: ("StepFailed", True),
    StepStatus.WAITING: ("StepWaiting", False),
    StepStatus.RETRYING: ("StepRetrying", True),
    StepStatus.SKIPPED: ("StepSkipped", False),
}


@dataclass(frozen=True, slots=True)
class PassResult:
    """What a pass ended with: ``outcome`` is one of done, wait, retry, failed, aborted,
    invalid, suspended, cancelled; ``delay`` is seconds until the next pass (None: only on
    change)."""

    outcome: str
    delay: float | None
    message: str
    step: str | None = None
    run: str = ""  # the run's id
    # The object's resourceVersion once the pass's writes landed ("" when unknown): a body
    # of an older version, handed to another pass, is stale.
    resource_version: str = ""

    @property
    def permanent(self) -> bool:
        """No pass helps until the spec changes or a verb arrives."""
        return self.outcome in ("failed", "invalid", "cancelled")


@dataclass
class _Verdict:
    """How the run stands after the steps of a pass (or instead of them)."""

    run: runs.Run
    summary: Summary
    outcome: str
    delay: float | None = None
    step: str | None = None


class Reconciler:
    """Runs reconcile passes; one instance serves every Pipeline of the operator."""

    def __init__(
        self,
        client: Callable[[], KubeClient | None],
        *,
        store: Callable[[Mapping[str, Any]], StatusStore] | None = None,
        metrics: OperatorMetrics | None = None,
        events: EventRecorder | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        aborted_recheck: float = 30.0,
        pass_timeout: float = 300.0,
        plan_cache: int = 1024,
        observer: Callable[[Mapping[str, Any], StepState | None, StepState], None] | None = None,
        running_flush_after: float | None = 2.0,
        action_settings: Mapping[str, Any] | None = None,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self._client = client
        # The pass's and the run's spans (by default the global provider's: no-op when
        # tracing is off).
        self.tracer = tracer or _tracer
        # Operator-wide settings the actions read from ``ActionContext.extras``.
        self.action_settings = dict(action_settings or {})
        self._store = store
        self.metrics = metrics
        self.events = events
        self.clock = clock
        self.aborted_recheck = aborted_recheck
        self.pass_timeout = pass_timeout
        self.observer = observer
        self.running_flush_after = running_flush_after
        self._plans: OrderedDict[
            tuple[str, int, str], tuple[Pipeline, Plan] | list[SpecError]
        ] = OrderedDict()
        self._plan_cache = plan_cache

    async def reconcile(self, body: Mapping[str, Any]) -> PassResult:
        meta = body.get("metadata", {})
        namespace, name = meta.get("namespace") or "", meta.get("name") or ""
        started = time.monotonic()
        with self.tracer.start_as_current_span(
            "reconcile",
            attributes={
                "k8s.namespace.name": namespace,
                "kubesteps.pipeline": name,
                "kubesteps.generation": int(meta.get("generation") or 0),
            },
        ) as span:
            try:
                result = await self._pass(body)
            except Exception:
                span.set_attribute("kubesteps.outcome", "error")
                self._observe("error", started, None, namespace)
                raise
            span.set_attribute("kubesteps.outcome", result.outcome)
            if result.run:
                span.set_attribute("kubesteps.run.id", result.run)
            if result.delay is not None:
                span.set_attribute("kubesteps.requeue_after_s", result.delay)
            if result.step:
                span.set_attribute("kubesteps.step", result.step)
            self._observe(result.outcome, started, result.delay, namespace)
            # Logged inside the span, so the line carries the pass's trace id.
            log.info(
                "pass over for %s/%s%s: %s%s", namespace, name,
                f" (run {result.run})" if result.run else "", result.outcome,
                "" if result.delay is None else f", next pass in {result.delay:.3g}s",
                extra={"outcome": result.outcome, "requeue_after_s": result.delay,
                       "run": result.run},
            )
            return result

    async def fetch(self, body: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The object as the API server has it now (None: it is gone)."""
        client = self._client()
        if client is None:
            return None
        ref = ObjectRef.of(body)
        return await client.get(ref.api_version, ref.kind, ref.name, ref.namespace)

    def forget(self, body: Mapping[str, Any]) -> None:
        """The Pipeline is gone: drop what we cached and tracked about it."""
        uid = str(body.get("metadata", {}).get("uid") or "")
        for key in [k for k in self._plans if k[0] == uid]:
            del self._plans[key]
        if self.metrics is not None:
            self.metrics.forget_pipeline(uid)

    # -- the pass -------------------------------------------------------------------------

    async def _pass(self, body: Mapping[str, Any]) -> PassResult:
        client = self._client()
        writer = self._status_store(body, client)
        prepared = self._prepare(body)
        if isinstance(prepared, list):
            return await self._invalid(body, writer, prepared)
        pipeline, plan = prepared
        now = self.clock()
        meta = body.get("metadata") or {}
        name = str(meta.get("name") or "")
        status: Mapping[str, Any] = body.get("status") or {}
        annotations = {str(k): str(v) for k, v in (meta.get("annotations") or {}).items()}
        records = {
            str(r["name"]): r for r in status.get("steps") or []
            if isinstance(r, Mapping) and "name" in r
        }
        stored = runs.Run.from_status(name, status.get("run"))
        # A status written before runs existed, and for this very spec: adopt its records.
        adopt = stored is None and bool(records) and \
            status.get("observedGeneration") == meta.get("generation")
        decision = runs.advance(
            pipeline=name, status=status, spec_hash=plan.spec_hash, annotations=annotations,
            now=now, adopt=adopt,
            failed_steps=stored is not None and any(
                r.get("phase") == "Failed" and r.get("run") == stored.number
                for r in records.values()
            ),
        )
        removals = {v.annotation: v.token for v in (*decision.acted, *decision.replayed,
                                                    *decision.idle)}
        view, ignored = _approvals_for(body, decision.run, records, annotations, removals)
        keeper = ConditionsKeeper(
            writer, body, run=decision.run.number,
            carry=plan.keep_on_spec_change if decision.carry else frozenset(),
            adopt=adopt, reset_failed=decision.reset_failed, conditions=plan.conditions,
            clock=self.clock, flush_running_after=self.running_flush_after,
        )
        history = runs.rotate(status.get("history"), decision.ended,
                              pipeline.spec.history_limit)
        try:
            if decision.ended:  # a run was superseded: the Jobs it started have no use now
                await self._stop_jobs(view, client, keep_run=decision.run.number)
            verdict = await self._decide(view, pipeline, plan, keeper, client, decision)
            keeper.set_run(run=verdict.run.to_status(), handledTokens=decision.tokens or None)
            if history or "history" in status:
                keeper.set_run(history=history)
            await keeper.commit(verdict.summary)
        finally:
            keeper.close()  # a pass cut short must not write behind its successor's back
        written = {str(r["name"]): r for r in keeper.status.get("steps") or [] if "name" in r}
        for step, value in runs.approvals(annotations).items():
            if runs.consumed(written.get(step), value):
                removals[runs.APPROVAL_PREFIX + step] = value
        version = await self._remove_annotations(body, writer, removals) or \
            keeper.resource_version or ""
        self._run_events(body, stored, decision, verdict.run, ignored)
        self._track(body, verdict.summary.ready, verdict.summary.reason,
                    retrying=sum(1 for s in keeper.states().values()
                                 if s.status is StepStatus.RETRYING))
        return PassResult(verdict.outcome, verdict.delay, verdict.summary.message,
                          verdict.step, verdict.run.id, version)

    async def _decide(
        self,
        body: Mapping[str, Any],
        pipeline: Pipeline,
        plan: Plan,
        keeper: ConditionsKeeper,
        client: KubeClient | None,
        decision: runs.RunDecision,
    ) -> _Verdict:
        """Run the steps if the run is to go on, and say where that leaves it."""
        run = decision.run
        now = self.clock()
        if run.phase == runs.CANCELLED:
            if decision.cancelled:
                await keeper.stop_unfinished("Cancelled", f"run {run.id} was cancelled")
                await self._stop_jobs(body, client)
            return _Verdict(run, _finished_summary(run), "cancelled")
        if run.phase == runs.FAILED:
            # Failed for good: nothing runs until a retry, a rerun or a change of the work.
            return _Verdict(run, _finished_summary(run), "failed", step=run.failed_step or None)
        if pipeline.spec.suspend:
            if run.finished:  # a finished run has nothing to pause: only its resyncs stop
                return _Verdict(run, _finished_summary(run), "suspended")
            run = run.suspend(now)
            message = (f"run {run.id} is suspended (spec.suspend is true): no steps start "
                       "until it is cleared")
            return _Verdict(run, Summary("False", "Suspended", message, False, False),
                            "suspended")
        run = run.resume(now)
        # A finished run's resync passes are not late: spec.timeout bounds unfinished runs.
        bounded = run.phase != runs.SUCCEEDED
        left = _time_left(pipeline, run, now) if bounded else None
        outcome: Outcome | None = None
        if left is None or left > 0:
            outcome = await self._run(body, plan, keeper, client, run, left)
            left = _time_left(pipeline, run, self.clock()) if bounded else None
            if outcome.kind is OutcomeKind.DONE or left is None or left > 0:
                return self._verdict_of(pipeline, run, outcome, left)
        # spec.timeout is over: whatever is still at work stops, and the run fails.
        assert pipeline.spec.timeout is not None
        ran = run.active_seconds(self.clock())
        message = runs.timeout_message(format_duration(pipeline.spec.timeout), ran)
        stopped = await keeper.stop_unfinished("TimedOut", message)
        if stopped:
            await self._stop_jobs(body, client)
        step = (outcome.step if outcome is not None else None) or (stopped[-1] if stopped else "")
        run = run.settle(runs.FAILED, self.clock(), reason="TimedOut", step=step,
                         message=message)
        return _Verdict(run, Summary("False", "TimedOut", message, False, True, step),
                        "failed", step=step or None)

    def _verdict_of(
        self, pipeline: Pipeline, run: runs.Run, outcome: Outcome, left: float | None
    ) -> _Verdict:
        summary = summarize(outcome)
        resync = pipeline.spec.resync_period.total_seconds() if pipeline.spec.resync_period \
            else None
        delay = requeue_delay(outcome, resync_period=resync,
                              aborted_recheck=self.aborted_recheck)
        now = self.clock()
        if outcome.kind is OutcomeKind.DONE:
            run = run.settle(runs.SUCCEEDED, now)
        elif outcome.kind is OutcomeKind.FAILED:
            run = run.settle(runs.FAILED, now, reason="Failed", step=outcome.step or "",
                             message=summary.message)
        else:
            run = run.settle(runs.RUNNING, now)
            if left is not None:  # enforce spec.timeout on time, not at some later pass
                delay = left if delay is None else min(delay, left)
        return _Verdict(run, summary, outcome.kind.value, delay, outcome.step)

    async def _invalid(
        self, body: Mapping[str, Any], writer: StatusStore, errors: list[SpecError]
    ) -> PassResult:
        message = "; ".join(_with_step(body, e) for e in errors[:5])
        if len(errors) > 5:
            message += f"; and {len(errors) - 5} more"
        # What the spec keeps across changes is unknown now: keep every record as it is.
        keeper = ConditionsKeeper(writer, body, run=None, clock=self.clock,
                                  flush_running_after=None)
        await keeper.commit(Summary("False", "InvalidSpec", message, False, True))
        self._emit(body, "InvalidSpec", message, warning=True)
        self._track(body, "False", "InvalidSpec")
        return PassResult("invalid", None, message)

    async def _run(
        self,
        body: Mapping[str, Any],
        plan: Plan,
        keeper: ConditionsKeeper,
        client: KubeClient | None,
        run: runs.Run,
        left: float | None,
    ) -> Outcome:
        started: dict[str, float] = {}
        abandoned: list[str] = []
        # Runs the engine took back (their state put back to pending): an expected error,
        # an abort, or the pass being cancelled under them.
        taken_back: dict[str, float] = {}

        def on_transition(old: StepState | None, new: StepState) -> None:
            if self.observer is not None:
                self.observer(body, old, new)
            if new.status is StepStatus.RUNNING:
                started[new.name] = time.monotonic()
                return
            if new.status is StepStatus.PENDING and new.name in started:
                taken_back[new.name] = started.pop(new.name)
                return
            if old is not None and old.status is new.status and old.reason == new.reason:
                return
            self._step_metrics(body, plan, new, started.pop(new.name, None))
            if new.reason == "TimedOut" and plan.actions.get(new.name) == "job":
                abandoned.append(new.name)  # its attempt timed out: its Job must go
            event = _EVENT_REASONS.get(new.status)
            if event is not None:
                reason, warning = event
                text = f"{run.id}: step {new.name!r}"
                if new.message:
                    text += f": {new.message}"
                self._emit(body, reason, text, warning=warning)

        context = RunContext(self.clock)
        context.put(PASS_KEY, PassContext(
            pipeline=body, kube=client, clock=self.clock, states=keeper,
            extras=dict(self.action_settings), run=run,
        ))
        # The pass may not outlast the run's own deadline (spec.timeout).
        budget = self.pass_timeout if left is None else max(0.001, min(self.pass_timeout, left))
        engine = StepsEngine(
            plan.steps, keeper=keeper, clock=self.clock, on_transition=on_transition,
            run_timeout=timedelta(seconds=budget), name="pipeline",
        )
        try:
            outcome = await engine.run(context)
        except BaseException:
            # The pass was cancelled (the operator is stopping) with these steps at work.
            for step_name, since in (started | taken_back).items():
                self._step_metrics(body, plan, StepState(step_name, StepStatus.RUNNING), since)
            raise
        for step_name in abandoned:
            await self._stop_jobs(body, client, step=step_name)
        return outcome

    def _status_store(self, body: Mapping[str, Any], client: KubeClient | None) -> StatusStore:
        if self._store is not None:
            return self._store(body)
        if client is None:
            raise RuntimeError("the reconciler has neither an API client nor a status store")
        return StatusWriter(
            client, ObjectRef.of(body),
            on_write=self.metrics.observe_status_write if self.metrics else None,
        )

    def _prepare(self, body: Mapping[str, Any]) -> tuple[Pipeline, Plan] | list[SpecError]:
        """The validated spec and its engine steps, or what is wrong with the spec.

        Both depend only on the spec (and, through build-time templates, on labels and
        annotations), so they are worked out once per version of those, not every pass.
        """
        meta = body.get("metadata", {})
        own = {k: v for k, v in (meta.get("annotations") or {}).items()
               if not k.startswith(_KOPF_ANNOTATIONS)}
        key = (
            str(meta.get("uid") or meta.get("name")), int(meta.get("generation") or 0),
            json.dumps([meta.get("labels"), own], sort_keys=True),
        )
        prepared = self._plans.get(key)
        if prepared is not None:
            self._plans.move_to_end(key)
            return prepared
        checked = validate(dict(body))
        if isinstance(checked, list):
            prepared = checked
        else:
            try:
                plan = build(checked.spec, body)
                StepsEngine(plan.steps)  # refuses clashing names now, not mid-pass
                prepared = (checked, plan)
            except (ValueError, CelError) as error:  # e.g. a template no value can fill
                prepared = [SpecError("spec", str(error))]
        self._plans[key] = prepared
        while len(self._plans) > self._plan_cache:
            self._plans.popitem(last=False)
        return prepared

    # -- what a pass does besides its status write ----------------------------------------

    async def _stop_jobs(
        self,
        body: Mapping[str, Any],
        client: KubeClient | None,
        *,
        step: str | None = None,
        keep_run: int | None = None,
    ) -> None:
        """Delete the Jobs a run no longer needs (before the status says so: a crash in
        between repeats the decision, and deleting again finds nothing)."""
        if client is None:
            return
        meta = body.get("metadata") or {}
        try:
            stopped = await stop_jobs(client, str(meta.get("namespace") or "default"),
                                      str(meta.get("name") or ""), step=step, keep_run=keep_run)
        except (RetryableError, PermanentError) as error:
            log.warning("could not stop the Jobs of %s: %s", meta.get("name"), error)
            return
        for job in stopped:
            self._emit(body, "JobDeleted", f"deleted Job {job}: its step no longer runs",
                       warning=False)

    async def _remove_annotations(
        self, body: Mapping[str, Any], writer: StatusStore, removals: Mapping[str, str]
    ) -> str | None:
        """Remove verb and approval annotations that were acted on (each only if it still
        holds the value acted on: a newer one set meanwhile is the next pass's); the
        object's resourceVersion afterwards, when the server said."""
        if not removals:
            return None
        try:
            result = await writer.remove_annotations(removals)
        except Exception as error:  # the next pass sees them again, as replays: no harm
            log.warning("could not remove the annotations %s from %s: %s",
                        ", ".join(sorted(removals)), body.get("metadata", {}).get("name"), error)
            return None
        if isinstance(result, Mapping):
            version = (result.get("metadata") or {}).get("resourceVersion")
            return str(version) if version else None
        return None

    def _run_events(
        self,
        body: Mapping[str, Any],
        stored: runs.Run | None,
        decision: runs.RunDecision,
        run: runs.Run,
        ignored: list[str],
    ) -> None:
        """Events and metrics for what happened to runs in this pass."""
        namespace = body.get("metadata", {}).get("namespace") or ""
        for ended in decision.ended:
            if stored is not None and ended.number == stored.number and stored.finished:
                continue  # it had ended before; it only went to the history now
            self._emit(body, "RunSuperseded", f"{ended.id}: {ended.message}", warning=False)
            self._count_run(ended, namespace)
        if decision.started:
            self._emit(body, "RunStarted", f"{run.id} started (trigger {run.trigger})",
                       warning=False)
        for verb in decision.acted:
            if verb.verb == "retry":
                self._emit(body, "RunRetried",
                           f"{run.id}: retry {run.retries} ({verb.annotation}={verb.token}): "
                           "failed steps start again", warning=False)
        for verb in decision.replayed:
            self._emit(body, "VerbIgnored",
                       f"{verb.annotation}={verb.token} ignored: this token was acted on "
                       "already; set a new value to ask again", warning=False)
        for verb in decision.idle:
            self._emit(body, "VerbIgnored",
                       f"{verb.annotation}={verb.token} ignored: run {run.id} is {run.phase}, "
                       f"nothing to {verb.verb}", warning=False)
        for text in ignored:
            self._emit(body, "ApprovalIgnored", text, warning=True)
        before = stored.phase if stored is not None and stored.number == run.number else None
        if run.phase == before and not decision.reset_failed:
            return
        if run.phase == runs.SUSPENDED:
            self._emit(body, "RunSuspended", f"{run.id} is suspended", warning=False)
            return
        if before == runs.SUSPENDED:
            self._emit(body, "RunResumed", f"{run.id} resumed", warning=False)
        if run.finished:
            text = f"{run.id} {run.phase.lower()}"
            if run.message:
                text += f": {run.message}"
            reason = "RunTimedOut" if run.reason == "TimedOut" else f"Run{run.phase}"
            self._emit(body, reason, text, warning=run.phase == runs.FAILED)
            self._count_run(run, namespace)

    def _count_run(self, run: runs.Run, namespace: str) -> None:
        if self.metrics is not None:
            self.metrics.observe_run(run.trigger, run.phase, namespace=namespace)
        trace_run(self.tracer, run)

    # -- side channels: events and metrics ------------------------------------------------

    def _emit(self, body: Mapping[str, Any], reason: str, message: str, *, warning: bool) -> None:
        if self.events is not None:
            self.events.emit(body, reason, message, warning=warning)

    def _observe(self, outcome: str, started: float, delay: float | None, ns: str) -> None:
        if self.metrics is not None:
            self.metrics.observe_reconcile(outcome, time.monotonic() - started, delay,
                                           namespace=ns)

    def _track(self, body: Mapping[str, Any], ready: str, reason: str, retrying: int = 0) -> None:
        if self.metrics is None:
            return
        meta = body.get("metadata", {})
        self.metrics.track_pipeline(
            str(meta.get("uid") or meta.get("name")), namespace=meta.get("namespace") or "",
            name=meta.get("name") or "", ready=ready, reason=reason, retrying_steps=retrying,
        )

    def _step_metrics(
        self, body: Mapping[str, Any], plan: Plan, state: StepState, started: float | None
    ) -> None:
        if self.metrics is None or state.status is StepStatus.PENDING:
            return
        action = plan.actions.get(state.name) or plan.actions.get(
            state.name.rsplit("-", 1)[0], "step"
        )
        duration = time.monotonic() - started if started is not None else 0.0
        self.metrics.observe_step(action, state.status.value, duration,
                                  namespace=body.get("metadata", {}).get("namespace") or "")




def _with_step(body: Mapping[str, Any], error: SpecError) -> str:
    step = step_at(body, error.path)
    return f"{error} [step {step!r}]" if step else str(error)


def trace_run(tracer: trace.Tracer, run: runs.Run) -> None:
    """One span for a whole run, emitted when it ends, with its real start and end times.

    A run spans many passes (each a trace of its own): this root span carries the run's id,
    trigger and phase, and links to the pass that ended it.
    """
    current = trace.get_current_span().get_span_context()
    links = [trace.Link(current)] if current.is_valid else []
    end = run.finished_at or run.started_at
    span = tracer.start_span(
        "run", context=otel_context.Context(), links=links,
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


def _time_left(pipeline: Pipeline, run: runs.Run, now: datetime) -> float | None:
    """Seconds the run may still take under spec.timeout (None: no timeout)."""
    if pipeline.spec.timeout is None:
        return None
    return pipeline.spec.timeout.total_seconds() - run.active_seconds(now)


def _finished_summary(run: runs.Run) -> Summary:
    """The summary of a run that is over (or cancelled)."""
    if run.phase == runs.SUCCEEDED:
        return Summary("True", "Succeeded", "all steps are done", False, False)
    reason = run.reason if run.reason and run.reason != run.phase else \
        ("Cancelled" if run.phase == runs.CANCELLED else "Failed")
    message = run.message or f"run {run.id} {run.phase.lower()}"
    return Summary("False", reason, message, False, True, run.failed_step)


def _approvals_for(
    body: Mapping[str, Any],
    run: runs.Run,
    records: Mapping[str, Mapping[str, Any]],
    annotations: Mapping[str, str],
    removals: dict[str, str],
) -> tuple[Mapping[str, Any], list[str]]:
    """The object as the steps of this pass see it, without the approval annotations that
    are not theirs: those a step acted on already (their removal is pending) and those that
    name another run. Both are added to ``removals``; the second kind is reported."""
    hidden: set[str] = set()
    ignored: list[str] = []
    for step, value in runs.approvals(annotations).items():
        key = runs.APPROVAL_PREFIX + step
        answer = runs.read_approval(value, run.pipeline)
        if runs.consumed(records.get(step), value):
            hidden.add(key)
        elif answer is not None and answer.run is not None and answer.run != run.number:
            hidden.add(key)
            ignored.append(
                f"{key}={value!r} ignored: it answers run "
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
