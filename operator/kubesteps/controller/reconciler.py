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
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import aiohttp
from opentelemetry import trace

from kubesteps.actions.job import stop_jobs
from kubesteps.actions.pipeline import cancel_children
from kubesteps.controller import lifecycle, scheduling
from kubesteps.controller.mutex import Claim, Mutexes
from kubesteps.engine import (
    Outcome,
    OutcomeKind,
    PermanentError,
    RetryableError,
    RunContext,
    Step,
    StepRunError,
    StepsEngine,
    StepState,
    StepStatus,
    StepTimeoutError,
    requeue_delay,
)
from kubesteps.engine.elapsed import format_duration
from kubesteps.engine.errors import short_message
from kubesteps.keepers.status_keeper import (
    ConditionsKeeper,
    StaleStatusError,
    StatusStore,
    status_digest,
)
from kubesteps.keepers.summary import Summary, summarize
from kubesteps.kube.client import ApiError, KubeClient
from kubesteps.kube.events import EventRecorder
from kubesteps.kube.meta import ObjectMeta, meta_of
from kubesteps.kube.status_writer import ObjectRef, StatusWriter
from kubesteps.pipeline import runs
from kubesteps.pipeline.model import API_VERSION, Pipeline, mutex_names
from kubesteps.pipeline.template import TEMPLATE_KIND, PipelineTemplate, template_names
from kubesteps.plan.build import PASS_KEY, PassContext, Plan
from kubesteps.plan.validate import (
    SpecError,
    prepare,
    problems_message,
    pruned_fields,
    validate_template,
)
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


class PassOutcome(StrEnum):
    """How a pass ended (the label of its log line, span and metric). The engine's own
    outcomes keep their names; the others are the controller's."""

    DONE = "done"
    WAIT = "wait"
    RETRY = "retry"
    FAILED = "failed"
    ABORTED = "aborted"
    INVALID = "invalid"  # the spec cannot run: nothing was tried
    SUSPENDED = "suspended"  # spec.suspend holds the run
    CANCELLED = "cancelled"  # a cancel verb ended the run

    @classmethod
    def of(cls, kind: OutcomeKind) -> PassOutcome:
        """The pass outcome for an engine outcome of that kind."""
        return cls(kind.value)


_PERMANENT = frozenset({PassOutcome.FAILED, PassOutcome.INVALID, PassOutcome.CANCELLED})


@dataclass(frozen=True, slots=True, kw_only=True)
class PassResult:
    """What a pass ended with; ``delay`` is seconds until the next pass (None: only on
    change)."""

    outcome: PassOutcome
    delay: float | None
    message: str
    step: str | None = None
    run: str = ""  # the run's id
    # The object's resourceVersion once the pass's writes landed ("" when unknown): a body
    # of an older version, handed to another pass, is stale.
    resource_version: str = ""
    action: str = ""  # the action of ``step`` ("" for none, or a group-like step's kind)
    # A digest of the status as the pass left it (see keepers.conditions.status_digest).
    status_digest: str = ""

    @property
    def permanent(self) -> bool:
        """No pass helps until the spec changes or a verb arrives (and none is due, as one
        is when a Job that should be gone could not be deleted yet)."""
        return self.outcome in _PERMANENT and self.delay is None


@dataclass(kw_only=True)
class _Verdict:
    """How the run stands after the steps of a pass (or instead of them)."""

    run: runs.Run
    summary: Summary
    outcome: PassOutcome
    delay: float | None = None
    step: str | None = None
    cleaned: bool = True  # False: a Job that should be gone could not be deleted


# Seconds until a Pipeline whose templates are missing or invalid looks at them again.
TEMPLATE_RECHECK = 30.0
# Seconds until a pass looks again for a Job it could not delete.
CLEANUP_RETRY = 10.0
# Seconds until a run waiting for a mutex asks again.
MUTEX_POLL = 5.0
# How long the last look at the steps at work may take, once spec.timeout is over.
OVERDUE_GRACE = 10.0


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
        mutexes: Mutexes | None = None,
        mutex_poll: float = MUTEX_POLL,
    ) -> None:
        self._client = client
        # spec.mutex: who holds what (Leases); a waiting run asks again this often.
        self.mutexes = mutexes or Mutexes(clock=clock)
        self.mutex_poll = mutex_poll
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
        self._plans: OrderedDict[tuple[str, int, str], tuple[Pipeline, Plan] | list[SpecError]] = (
            OrderedDict()
        )
        self._plan_cache = plan_cache

    async def reconcile(self, body: Mapping[str, Any]) -> PassResult:
        meta = meta_of(body)
        namespace, name = meta.namespace, meta.name
        started = time.monotonic()
        with self.tracer.start_as_current_span(
            "reconcile",
            attributes={
                "k8s.namespace.name": namespace,
                "kubesteps.pipeline": name,
                "kubesteps.generation": meta.generation,
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
            # Logged inside the span, so the line carries the pass's trace id. A retry was
            # logged by the engine already, with its delay: one line per attempt is enough.
            after = (
                ""
                if result.delay is None
                else (f", next pass in {result.delay:.3g}s (at {_due(self.clock(), result.delay)})")
            )
            log.log(
                logging.DEBUG if result.outcome is PassOutcome.RETRY else logging.INFO,
                "pass over for %s/%s%s: %s%s",
                namespace,
                name,
                f" (run {result.run})" if result.run else "",
                result.outcome,
                after,
                extra={
                    "outcome": result.outcome,
                    "requeue_after_s": result.delay,
                    "run": result.run,
                },
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
        uid = meta_of(body).uid
        for key in [k for k in self._plans if k[0] == uid]:
            del self._plans[key]
        if self.metrics is not None:
            self.metrics.forget_pipeline(uid)

    # -- the pass -------------------------------------------------------------------------

    async def _pass(self, body: Mapping[str, Any]) -> PassResult:
        client = self._client()
        writer = self._status_store(body, client)
        templates = await self._templates(body, client)
        prepared = templates if isinstance(templates, list) else self._prepare(body, templates)
        if isinstance(prepared, list):
            result = await self._invalid(body, writer, client, prepared)
            if templates is None:
                return result
            # A template may be created or fixed meanwhile: nothing else would say so.
            return replace(result, delay=TEMPLATE_RECHECK)
        pipeline, plan = prepared
        now = self.clock()
        meta = meta_of(body)
        name = meta.name
        status: Mapping[str, Any] = body.get("status") or {}
        annotations = dict(meta.annotations)
        records = [r for r in status.get("steps") or [] if isinstance(r, Mapping) and "name" in r]
        stored = runs.Run.from_status(name, status.get("run"))
        adopt_since = _adoptable(status, meta, records) if stored is None else None
        timer = scheduling.Timer.of(pipeline.spec.schedule, status.get("schedule"), now)
        decision = runs.advance(
            pipeline=name,
            status=status,
            spec_hash=plan.spec_hash,
            annotations=annotations,
            now=now,
            adopt_since=adopt_since,
            failed_steps=stored is not None
            and any(r.get("phase") == "Failed" and r.get("run") == stored.number for r in records),
            scheduled=timer is not None,
            tick=timer.tick if timer else None,
            replace_active=timer is not None and timer.replace,
        )
        if decision.reset_failed:
            decision.run = decision.run.restart()  # its finally steps run again at the end
        if plan.templates and (decision.started or not decision.run.templates):
            decision.run = replace(decision.run, templates=dict(plan.templates))
        run = decision.run
        removals = {
            v.annotation: v.raw
            for v in (*decision.acted, *decision.replayed, *(idle.verb for idle in decision.idle))
        }
        handled = runs.handled_approvals(status)
        view, ignored = lifecycle.approvals_for(body, run, handled, annotations, removals)
        keeper = ConditionsKeeper(
            writer,
            body,
            run=run.number,
            carry=plan.keep_on_spec_change if decision.carry else frozenset(),
            adopt=adopt_since is not None,
            conditions=plan.conditions,
            clock=self.clock,
            flush_running_after=self.running_flush_after,
        )
        history = runs.rotate(status.get("history"), decision.ended, pipeline.spec.history_limit)
        tokens = {verb: list(kept) for verb, kept in decision.tokens.items()} or None
        # Written with every patch of this pass, the one of a long step's run included.
        keeper.set_run(run=None if run.pending else run.to_status(), handledTokens=tokens)
        if history or "history" in status:
            keeper.set_run(history=history)
        cleaned = True
        try:
            if decision.ended:  # a run was superseded: the Jobs it started have no use now
                cleaned &= await self._stop_jobs(view, client, keep_run=run.number)
                cleaned &= await self._cancel_children(view, plan, client, run.number)
            if decision.stop:
                await keeper.stop_unfinished("Cancelled", f"run {run.id} was cancelled")
                cleaned &= await self._stop_jobs(view, client)
                cleaned &= await self._cancel_children(view, plan, client)
            if decision.reset_failed:
                keeper.reset_failed()
                keeper.forget(plan.finally_names)
            names = pipeline.spec.mutex
            holding = (
                bool(names)
                and client is not None
                and not run.pending
                and not run.finished
                and not pipeline.spec.suspend
            )
            verdict = await self._hold(view, client, run, names) if holding else None
            if verdict is None:
                verdict = await self._decide(view, pipeline, plan, keeper, client, decision)
            cleaned &= verdict.cleaned
            if timer is not None:
                verdict.summary = timer.settle(verdict.summary, stored, decision, verdict.run)
                keeper.set_run(schedule=timer.status())
            used = {}
            for step, value in runs.approvals(view["metadata"].get("annotations") or {}).items():
                if runs.consumed(keeper.record(step), value):
                    used[step] = (runs.token_key(value), verdict.run.id)
                    removals[runs.APPROVAL_PREFIX + step] = value
            keeper.set_run(run=None if verdict.run.pending else verdict.run.to_status())
            if used or "handledApprovals" in status:
                keeper.set_run(handledApprovals=runs.record_approvals(handled, used))
            await keeper.commit(verdict.summary)
        except StaleStatusError as error:
            # Another pass moved the run on meanwhile: decide again from a fresh read.
            log.info("%s", error)
            # No digest matches "stale": the next pass reads the object afresh.
            return PassResult(
                outcome=PassOutcome.RETRY,
                delay=0.5,
                message=str(error),
                step=None,
                run=run.id,
                status_digest="stale",
            )
        finally:
            keeper.close()  # a pass cut short must not write behind its successor's back
        version = (
            await self._remove_annotations(body, writer, removals) or keeper.resource_version or ""
        )
        if pipeline.spec.mutex and client is not None:
            # Let go of what settled runs held (and of their places in line): the run of
            # this pass once it is over, and the runs a new one superseded.
            over = [
                *decision.ended,
                *(
                    [verdict.run]
                    if verdict.run.finished
                    and (stored is None or not stored.finished or stored.id != verdict.run.id)
                    else []
                ),
            ]
            for ended in over:
                await self._release(body, client, ended.id, pipeline.spec.mutex)

        def emit(reason: str, message: str, *, warning: bool) -> None:
            self._emit(body, reason, message, warning=warning)

        lifecycle.run_events(
            emit,
            lambda ended: self._count_run(ended, meta.namespace),
            stored=stored,
            decision=decision,
            run=verdict.run,
            ignored=ignored,
            adopted=adopt_since is not None,
        )
        if timer is not None:
            for reason, text, warning in timer.events(verdict.run):
                emit(reason, text, warning=warning)
                if reason == "ScheduleSuspended" and self.metrics is not None:
                    self.metrics.observe_schedule_suspended(namespace=meta.namespace)
        self._track(
            body,
            verdict.summary.ready,
            verdict.summary.reason,
            retrying=sum(1 for s in keeper.states().values() if s.status is StepStatus.RETRYING),
        )
        delay = verdict.delay
        if holding:  # a held mutex is renewed by passes: one at least every third of its lease
            renew = self.mutexes.lease_duration / 3
            delay = renew if delay is None else min(delay, renew)
        if not cleaned:  # a Job that should be gone is not: look again soon
            delay = CLEANUP_RETRY if delay is None else min(delay, CLEANUP_RETRY)
        if timer is not None and timer.next is not None:  # exactly at the next tick
            due = max(0.0, (timer.next - self.clock()).total_seconds())
            delay = due if delay is None else min(delay, due)
        return PassResult(
            outcome=verdict.outcome,
            delay=delay,
            message=verdict.summary.message,
            step=verdict.step,
            run=verdict.run.id,
            resource_version=version,
            action=plan.action_of(verdict.step or ""),
            status_digest=status_digest(keeper.status),
        )

    async def _hold(
        self,
        body: Mapping[str, Any],
        client: KubeClient | None,
        run: runs.Run,
        names: tuple[str, ...],
    ) -> _Verdict | None:
        """Take (or renew) the run's mutexes: None when it holds them all, else the verdict
        of a run that waits in line (Ready reason MutexHeld)."""
        assert client is not None
        meta = meta_of(body)
        claim = Claim(meta.name, meta.uid, run.id)
        try:
            held = await self.mutexes.hold(client, meta.namespace or "default", claim, names)
        except (ApiError, aiohttp.ClientError, TimeoutError) as error:
            message = f"cannot take mutex {', '.join(names)}: {short_message(error)}"
            log.warning("%s/%s: %s", meta.namespace, meta.name, message)
            return _Verdict(
                run=run,
                summary=Summary(
                    ready="False",
                    reason="MutexUnavailable",
                    message=message,
                    reconciling=True,
                    stalled=False,
                ),
                outcome=PassOutcome.RETRY,
                delay=CLEANUP_RETRY,
            )
        if not held.waiting:
            return None
        return _Verdict(
            run=run,
            summary=Summary(
                ready="False",
                reason="MutexHeld",
                message=held.message(),
                reconciling=True,
                stalled=False,
            ),
            outcome=PassOutcome.WAIT,
            delay=self.mutex_poll,
        )

    async def _release(
        self, body: Mapping[str, Any], client: KubeClient, run_id: str, names: tuple[str, ...]
    ) -> None:
        meta = meta_of(body)
        claim = Claim(meta.name, meta.uid, run_id)
        try:
            await self.mutexes.release(client, meta.namespace or "default", claim, names)
        except (ApiError, aiohttp.ClientError, TimeoutError) as error:
            # The next run that asks finds this run over (or the Lease expired).
            log.warning(
                "%s/%s: could not release mutex %s: %s",
                meta.namespace,
                meta.name,
                ", ".join(names),
                short_message(error),
            )

    async def release_mutexes(self, body: Mapping[str, Any]) -> None:
        """The Pipeline is gone: its run lets go of its mutexes (and its places in line)."""
        client = self._client()
        spec = body.get("spec") or {}
        run_id = ((body.get("status") or {}).get("run") or {}).get("id")
        try:
            names = mutex_names(spec.get("mutex")) if spec.get("mutex") else ()
        except ValueError:
            return
        if client is not None and names and run_id:
            await self._release(body, client, str(run_id), names)

    async def _decide(
        self,
        body: Mapping[str, Any],
        pipeline: Pipeline,
        plan: Plan,
        keeper: ConditionsKeeper,
        client: KubeClient | None,
        decision: runs.RunDecision,
    ) -> _Verdict:
        """Run the steps if the run is to go on, and say where that leaves it; once they
        ended, the finally steps."""
        run = decision.run
        if run.pending:
            return _Verdict(
                run=run,
                summary=Summary(
                    ready="False",
                    reason="Scheduled",
                    message="no run yet: the first starts at the next tick",
                    reconciling=False,
                    stalled=False,
                ),
                outcome=PassOutcome.DONE,
            )
        if plan.finally_steps and run.finalizing:
            if decision.stop:  # a second cancel: the finally steps stop too
                ended = run.settle(
                    runs.CANCELLED,
                    self.clock(),
                    reason="Cancelled",
                    message=f"cancelled while its finally steps ran ({run.id})",
                )
                ended = replace(ended, finally_done=True)
                return _Verdict(
                    run=ended,
                    summary=lifecycle.finished_summary(ended),
                    outcome=PassOutcome.CANCELLED,
                )
            if pipeline.spec.suspend:
                suspended = run.suspend(self.clock())
                return _Verdict(
                    run=suspended,
                    summary=Summary(
                        ready="False",
                        reason="Suspended",
                        message=f"run {run.id} is suspended (spec.suspend is true) "
                        "before its finally steps are done",
                        reconciling=False,
                        stalled=False,
                    ),
                    outcome=PassOutcome.SUSPENDED,
                )
            return await self._finalize(body, plan, keeper, client, run.resume(self.clock()))
        verdict = await self._decide_main(body, pipeline, plan, keeper, client, decision)
        ended = verdict.run
        if (
            not plan.finally_steps
            or ended.finally_done
            or not ended.finished
            or verdict.outcome is PassOutcome.SUSPENDED
        ):
            return verdict
        # The main steps ended in this pass: the finally steps come now.
        finishing = ended.end_main(
            ended.phase, reason=ended.reason, step=ended.failed_step, message=ended.message
        )
        final = await self._finalize(body, plan, keeper, client, finishing)
        final.cleaned = final.cleaned and verdict.cleaned
        return final

    async def _finalize(
        self,
        body: Mapping[str, Any],
        plan: Plan,
        keeper: ConditionsKeeper,
        client: KubeClient | None,
        run: runs.Run,
    ) -> _Verdict:
        """Run the finally steps; when they are done, the run ends as its steps did, or as
        failed when they had succeeded and a finally step failed (a failure of the steps is
        never hidden: its message stays)."""
        ending = run.ending
        assert ending is not None
        seen = {
            "id": run.id,
            "number": run.number,
            "trigger": run.trigger,
            "phase": ending.phase,
            "reason": ending.reason,
            "failedStep": ending.failed_step,
            "message": ending.message,
        }
        outcome = await self._run(
            body, plan, keeper, client, run, None, steps=plan.finally_steps, final=seen
        )
        now = self.clock()
        if outcome.kind in (OutcomeKind.WAIT, OutcomeKind.RETRY, OutcomeKind.ABORTED):
            summary = summarize(outcome)
            message = f"the steps {ending.phase.lower()}; finally: {summary.message}"
            return _Verdict(
                run=run,
                summary=replace(summary, message=message),
                outcome=PassOutcome.of(outcome.kind),
                delay=requeue_delay(outcome, aborted_recheck=self.aborted_recheck),
                step=outcome.step,
            )
        done = replace(run, finally_done=True)
        if outcome.kind is OutcomeKind.FAILED and ending.phase == runs.SUCCEEDED:
            message = f"finally step {outcome.step!r} failed: {outcome.message}"
            ended = done.settle(
                runs.FAILED, now, reason="FinallyFailed", step=outcome.step or "", message=message
            )
        else:
            message = ending.message
            if outcome.kind is OutcomeKind.FAILED:
                message = f"{message}; finally step {outcome.step!r} failed too".lstrip("; ")
            ended = done.settle(
                ending.phase, now, reason=ending.reason, step=ending.failed_step, message=message
            )
        label = {runs.SUCCEEDED: PassOutcome.DONE, runs.CANCELLED: PassOutcome.CANCELLED}.get(
            ended.phase, PassOutcome.FAILED
        )
        return _Verdict(
            run=ended,
            summary=lifecycle.finished_summary(ended),
            outcome=label,
            step=ended.failed_step or None,
        )

    async def _decide_main(
        self,
        body: Mapping[str, Any],
        pipeline: Pipeline,
        plan: Plan,
        keeper: ConditionsKeeper,
        client: KubeClient | None,
        decision: runs.RunDecision,
    ) -> _Verdict:
        """The main steps: run them if the run is to go on, and say where that leaves it."""
        run = decision.run
        now = self.clock()
        if run.phase in (runs.CANCELLED, runs.FAILED):
            # Over: nothing runs until a retry, a rerun or a change of the work. The Jobs it
            # left are looked for on every such pass (they are rare: no requeue), so one whose
            # deletion failed before still goes.
            cleaned = decision.stop or not plan.uses("job") or await self._stop_jobs(body, client)
            label = PassOutcome.CANCELLED if run.phase == runs.CANCELLED else PassOutcome.FAILED
            return _Verdict(
                run=run,
                summary=lifecycle.finished_summary(run),
                outcome=label,
                step=run.failed_step or None,
                cleaned=cleaned,
            )
        if pipeline.spec.suspend:
            if run.finished:  # a finished run has nothing to pause: only its resyncs stop
                return _Verdict(
                    run=run, summary=lifecycle.finished_summary(run), outcome=PassOutcome.SUSPENDED
                )
            run = run.suspend(now)
            message = (
                f"run {run.id} is suspended (spec.suspend is true): no steps start "
                "until it is cleared"
            )
            return _Verdict(
                run=run,
                summary=Summary(
                    ready="False",
                    reason="Suspended",
                    message=message,
                    reconciling=False,
                    stalled=False,
                ),
                outcome=PassOutcome.SUSPENDED,
            )
        run = run.resume(now)
        if run.phase == runs.SUCCEEDED:
            # A finished run's resync passes: its throttled steps may run again, but the run
            # stays done (and is never late): what they find shows in Ready.
            outcome = await self._run(body, plan, keeper, client, run, None)
            return self._verdict_of(pipeline, plan, keeper, run, outcome, None, finished=True)
        left = lifecycle.time_left(pipeline, run, now)
        if left is not None and left <= 0:
            # The deadline came between passes: the steps at work get one last look (what
            # finished in time counts), and nothing starts afresh.
            outcome = await self._run(
                body, plan, keeper, client, run, OVERDUE_GRACE, finish_only=True
            )
            if outcome.kind is OutcomeKind.DONE:
                return self._verdict_of(pipeline, plan, keeper, run, outcome, None)
        else:
            outcome = await self._run(body, plan, keeper, client, run, left)
            left = lifecycle.time_left(pipeline, run, self.clock())
            if outcome.kind is OutcomeKind.DONE or left is None or left > 0:
                verdict = self._verdict_of(pipeline, plan, keeper, run, outcome, left)
                if verdict.run.phase == runs.FAILED:
                    # Failed for good: what still works beside the failed step (a parallel
                    # sibling's Job) stops too, and a retry starts it again.
                    stopped = await keeper.stop_unfinished(
                        "Stopped",
                        f"stopped: run {run.id} failed at step {verdict.run.failed_step!r}",
                    )
                    if stopped:
                        verdict.cleaned = await self._stop_jobs(body, client)
                return verdict
        # spec.timeout is over: whatever is still at work stops, and the run fails.
        assert pipeline.spec.timeout is not None
        ran = run.active_seconds(self.clock())
        message = runs.timeout_message(format_duration(pipeline.spec.timeout), ran)
        stopped = await keeper.stop_unfinished("TimedOut", message)
        cleaned = await self._stop_jobs(body, client) if stopped or plan.uses("job") else True
        cleaned &= await self._cancel_children(body, plan, client)
        step = outcome.step or (stopped[-1] if stopped else "")
        run = run.settle(
            runs.FAILED, self.clock(), reason="TimedOut", step=step or "", message=message
        )
        return _Verdict(
            run=run,
            summary=Summary(
                ready="False",
                reason="TimedOut",
                message=message,
                reconciling=False,
                stalled=True,
                current_step=step or "",
            ),
            outcome=PassOutcome.FAILED,
            step=step or None,
            cleaned=cleaned,
        )

    def _verdict_of(
        self,
        pipeline: Pipeline,
        plan: Plan,
        keeper: ConditionsKeeper,
        run: runs.Run,
        outcome: Outcome,
        left: float | None,
        *,
        finished: bool = False,
    ) -> _Verdict:
        summary = summarize(outcome)
        if summary.current_step:  # sub-steps side by side take turns: show their group
            summary = replace(summary, current_step=plan.display(summary.current_step))
        resync = (
            pipeline.spec.resync_period.total_seconds() if pipeline.spec.resync_period else None
        )
        delay = requeue_delay(outcome, resync_period=resync, aborted_recheck=self.aborted_recheck)
        now = self.clock()
        # A run that is done with failed steps went on past them (continueOnError): say so.
        failed = (
            [name for name, state in keeper.states().items() if state.status is StepStatus.FAILED]
            if outcome.kind is OutcomeKind.DONE
            else []
        )
        if failed:
            summary = Summary(
                ready="True",
                reason=lifecycle.WITH_ERRORS,
                message=lifecycle.with_errors(failed),
                reconciling=False,
                stalled=False,
            )
        if finished:
            pass  # a done run stays done
        elif failed:
            run = run.settle(
                runs.SUCCEEDED, now, reason=lifecycle.WITH_ERRORS, message=summary.message
            )
        elif outcome.kind is OutcomeKind.DONE:
            run = run.settle(runs.SUCCEEDED, now)
        elif outcome.kind is OutcomeKind.FAILED:
            # A failed step that was rejected or timed out names the run's reason too.
            reason = _failure_reason(outcome)
            run = run.settle(
                runs.FAILED, now, reason=reason, step=outcome.step or "", message=summary.message
            )
        else:
            run = run.settle(runs.RUNNING, now)
            if left is not None:  # enforce spec.timeout on time, not at some later pass
                delay = left if delay is None else min(delay, left)
        return _Verdict(
            run=run,
            summary=summary,
            outcome=PassOutcome.of(outcome.kind),
            delay=delay,
            step=outcome.step,
        )

    async def _invalid(
        self,
        body: Mapping[str, Any],
        writer: StatusStore,
        client: KubeClient | None,
        errors: list[SpecError],
    ) -> PassResult:
        message = problems_message(errors)
        meta = meta_of(body)
        status: Mapping[str, Any] = body.get("status") or {}
        annotations = dict(meta.annotations)
        stored = runs.Run.from_status(meta.name, status.get("run"))
        # What the spec keeps across changes is unknown now: keep every record as it is.
        keeper = ConditionsKeeper(
            writer, body, run=None, clock=self.clock, flush_running_after=None
        )
        # A run can still be cancelled (its Jobs stopped); nothing else can be done to it
        # until the spec is fixed.
        decision = (
            runs.advance(
                pipeline=meta.name,
                status=status,
                spec_hash=stored.spec_hash if stored else "",
                annotations=annotations,
                now=self.clock(),
                invalid=True,
            )
            if stored is not None
            else None
        )
        removals: dict[str, str] = {}
        if decision is not None:
            removals = {
                v.annotation: v.raw
                for v in (
                    *decision.acted,
                    *decision.replayed,
                    *(idle.verb for idle in decision.idle),
                )
            }
            if decision.stop:
                await keeper.stop_unfinished("Cancelled", f"run {decision.run.id} was cancelled")
                await self._stop_jobs(body, client)
            keeper.set_run(
                run=decision.run.to_status(),
                handledTokens={v: list(k) for v, k in decision.tokens.items()} or None,
            )
        await keeper.commit(
            Summary(
                ready="False",
                reason="InvalidSpec",
                message=message,
                reconciling=False,
                stalled=True,
            )
        )
        await self._remove_annotations(body, writer, removals)
        if decision is not None:

            def emit(reason: str, text: str, *, warning: bool) -> None:
                self._emit(body, reason, text, warning=warning)

            lifecycle.run_events(
                emit,
                lambda ended: self._count_run(ended, meta.namespace),
                stored=stored,
                decision=decision,
                run=decision.run,
                ignored=[],
                adopted=False,
            )
        prefix = f"{stored.id}: " if stored is not None else ""
        self._emit(body, "InvalidSpec", prefix + message, warning=True)
        self._track(body, "False", "InvalidSpec")
        return PassResult(
            outcome=PassOutcome.INVALID,
            delay=None,
            message=message,
            step=None,
            run=stored.id if stored else "",
        )

    async def _run(
        self,
        body: Mapping[str, Any],
        plan: Plan,
        keeper: ConditionsKeeper,
        client: KubeClient | None,
        run: runs.Run,
        left: float | None,
        *,
        finish_only: bool = False,
        steps: tuple[Step, ...] | None = None,
        final: Mapping[str, Any] | None = None,
    ) -> Outcome:
        """Run ``steps`` (the main steps by default; ``final``: the finally steps, with how
        the main steps ended as CEL's ``run``)."""
        started: dict[str, float] = {}
        abandoned: list[str] = []
        # Runs the engine took back (their state put back to pending): an expected error,
        # an abort, or the pass being cancelled under them.
        taken_back: dict[str, float] = {}
        namespace = meta_of(body).namespace  # (read once: a pass has many transitions)

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
            self._step_metrics(namespace, plan, new, started.pop(new.name, None))
            if new.reason == "TimedOut" and plan.uses("job"):
                abandoned.append(new.name)  # its attempt timed out: a Job of it must go
            event = _EVENT_REASONS.get(new.status)
            if event is not None:
                reason, warning = event
                text = f"{run.id}: step {new.name!r}"
                if new.message:
                    text += f": {new.message}"
                self._emit(body, reason, text, warning=warning)

        context = RunContext(self.clock)
        context.put(
            PASS_KEY,
            PassContext(
                pipeline=body,
                kube=client,
                clock=self.clock,
                states=keeper,
                extras=dict(self.action_settings),
                run=run,
                items=keeper.items,
                final=final,
                keep=keeper.keep,
            ),
        )
        # The pass may not outlast the run's own deadline (spec.timeout).
        budget = self.pass_timeout if left is None else max(0.001, min(self.pass_timeout, left))
        engine = StepsEngine(
            plan.steps if steps is None else steps,
            keeper=keeper,
            clock=self.clock,
            on_transition=on_transition,
            run_timeout=timedelta(seconds=budget),
            name="pipeline" if final is None else "finally",
            max_concurrency=plan.max_concurrency,
        )
        try:
            outcome = await engine.run(context, finish_only=finish_only)
        except BaseException:
            # The pass was cancelled (the operator is stopping) with these steps at work.
            for step_name, since in (started | taken_back).items():
                self._step_metrics(namespace, plan, StepState(step_name, StepStatus.RUNNING), since)
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
            client,
            ObjectRef.of(body),
            on_write=self.metrics.observe_status_write if self.metrics else None,
        )

    async def _templates(
        self, body: Mapping[str, Any], client: KubeClient | None
    ) -> dict[str, PipelineTemplate] | list[SpecError] | None:
        """The PipelineTemplates the Pipeline's uses steps name, as stored now (None: it
        uses none); or why they cannot be read. One that is missing is left out: the
        spec's check says so, naming the step."""
        spec = body.get("spec")
        names = template_names(spec) if isinstance(spec, Mapping) else []
        if not names:
            return None
        if client is None:
            return [
                SpecError(
                    "spec",
                    "the Pipeline uses PipelineTemplates, and this "
                    "operator has no API to read them from",
                )
            ]
        namespace = meta_of(body).namespace or "default"
        found: dict[str, PipelineTemplate] = {}
        for name in names:
            try:
                stored = await client.get(API_VERSION, TEMPLATE_KIND, name, namespace)
            except ApiError as error:
                return [SpecError("spec", f"cannot read PipelineTemplate {name!r}: {error}")]
            if stored is None:
                continue
            checked = validate_template(stored)
            if isinstance(checked, list):
                return [
                    SpecError(
                        "spec", f"PipelineTemplate {name!r} is invalid: {problems_message(checked)}"
                    )
                ]
            found[name] = checked
        return found

    def _prepare(
        self, body: Mapping[str, Any], templates: dict[str, PipelineTemplate] | None = None
    ) -> tuple[Pipeline, Plan] | list[SpecError]:
        """The validated spec and its engine steps, or what is wrong with the spec.

        Both depend only on the spec (and, through build-time templates, on labels and
        annotations, and on the templates its uses steps expand), so they are worked out
        once per version of those, not every pass.
        """
        meta = meta_of(body)
        own = {k: v for k, v in meta.annotations.items() if not k.startswith(_KOPF_ANNOTATIONS)}
        versions = sorted((name, t.resource_version) for name, t in (templates or {}).items())
        key = (
            meta.key,
            meta.generation,
            json.dumps([dict(meta.labels), own, versions], sort_keys=True),
        )
        prepared = self._plans.get(key)
        if prepared is not None:
            self._plans.move_to_end(key)
            return prepared
        # What `kubesteps validate` checks, the same way.
        checked = prepare(dict(body), templates)
        prepared = checked if isinstance(checked, list) else (checked.pipeline, checked.plan)
        self._warn_pruned(body)
        self._plans[key] = prepared
        while len(self._plans) > self._plan_cache:
            self._plans.popitem(last=False)
        return prepared

    def _warn_pruned(self, body: Mapping[str, Any]) -> None:
        """Say so when the API server dropped fields the user applied: with
        `--validate=false` a misspelled field would otherwise vanish without a word."""
        pruned = pruned_fields(body)
        if not pruned:
            return
        meta = meta_of(body)
        message = problems_message(pruned)
        log.warning("%s/%s: %s", meta.namespace, meta.name, message)
        self._emit(body, "FieldsDropped", message, warning=True)

    # -- what a pass does besides its status write ----------------------------------------

    async def _stop_jobs(
        self,
        body: Mapping[str, Any],
        client: KubeClient | None,
        *,
        step: str | None = None,
        keep_run: int | None = None,
    ) -> bool:
        """Delete the Jobs a run no longer needs (before the status says so: a crash in
        between repeats the decision, and deleting again finds nothing); False when that
        failed, so the pass comes back for them."""
        if client is None:
            return True
        meta = meta_of(body)
        try:
            stopped = await stop_jobs(
                client, meta.namespace or "default", meta.name, step=step, keep_run=keep_run
            )
        except (RetryableError, PermanentError) as error:
            log.warning("could not stop the Jobs of %s: %s", meta.name, error)
            return False
        run = ((body.get("status") or {}).get("run") or {}).get("id") or meta.name
        for job in stopped:
            self._emit(
                body, "JobDeleted", f"{run}: deleted Job {job}: no step waits for it", warning=False
            )
        return True

    async def _cancel_children(
        self,
        body: Mapping[str, Any],
        plan: Plan,
        client: KubeClient | None,
        keep_run: int | None = None,
    ) -> bool:
        """Cancel the runs of the child Pipelines (pipeline steps) of every run of this one
        but ``keep_run``; False when that failed, so the pass comes back for them."""
        if client is None or not plan.uses("pipeline"):
            return True
        run = ((body.get("status") or {}).get("run") or {}).get("id") or "the run"
        try:
            await cancel_children(client, body, keep_run=keep_run, reason=f"{run}-cancelled")
        except ApiError as error:
            log.warning("could not cancel the children of %s: %s", meta_of(body).name, error)
            return False
        return True

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
            log.warning(
                "could not remove the annotations %s from %s: %s",
                ", ".join(sorted(removals)),
                meta_of(body).name,
                error,
            )
            return None
        if isinstance(result, Mapping):
            return meta_of(result).resource_version or None
        return None

    def _count_run(self, run: runs.Run, namespace: str) -> None:
        if self.metrics is not None:
            self.metrics.observe_run(run.trigger, run.phase, namespace=namespace)
        lifecycle.trace_run(self.tracer, run)

    # -- side channels: events and metrics ------------------------------------------------

    def _emit(self, body: Mapping[str, Any], reason: str, message: str, *, warning: bool) -> None:
        if self.events is not None:
            self.events.emit(body, reason, message, warning=warning)

    def _observe(self, outcome: str, started: float, delay: float | None, ns: str) -> None:
        if self.metrics is not None:
            self.metrics.observe_reconcile(outcome, time.monotonic() - started, delay, namespace=ns)

    def _track(self, body: Mapping[str, Any], ready: str, reason: str, retrying: int = 0) -> None:
        if self.metrics is None:
            return
        meta = meta_of(body)
        self.metrics.track_pipeline(
            meta.key,
            namespace=meta.namespace,
            name=meta.name,
            ready=ready,
            reason=reason,
            retrying_steps=retrying,
        )

    def _step_metrics(
        self, namespace: str, plan: Plan, state: StepState, started: float | None
    ) -> None:
        if self.metrics is None or state.status is StepStatus.PENDING:
            return
        action = plan.action_of(state.name) or "step"
        if started is not None:
            duration = time.monotonic() - started
        else:
            # No Running transition was told (the engine records Running only for a step
            # that stays at work): the attempt's own start and finish say how long it took.
            begun = state.attempt_started_at or state.started_at
            duration = (
                max(0.0, (state.finished_at - begun).total_seconds())
                if begun is not None and state.finished_at is not None
                else 0.0
            )
        self.metrics.observe_step(action, state.status.value, duration, namespace=namespace)


def _failure_reason(outcome: Outcome) -> str:
    """``Rejected``, ``TimedOut`` or ``Failed``: why the step that failed the run did."""
    error = outcome.error
    cause = error.error if isinstance(error, StepRunError) else error
    if isinstance(cause, PermanentError) and cause.reason:
        return cause.reason
    if isinstance(cause, StepTimeoutError) and cause.attempt_timeout:
        return "TimedOut"
    return "Failed"


def _due(now: datetime, delay: float) -> str:
    """When a pass ``delay`` seconds from ``now`` is due, as a log line shows it."""
    return (now + timedelta(seconds=delay)).strftime("%H:%M:%SZ")


def _adoptable(
    status: Mapping[str, Any], meta: ObjectMeta, records: list[Mapping[str, Any]]
) -> datetime | None:
    """When the run began that a status from before runs existed describes, if it describes
    the current spec (then its records are kept as run 1's); None: start afresh."""
    if not records or status.get("observedGeneration") != meta.generation:
        return None
    starts = [str(r["startedAt"]) for r in records if r.get("startedAt")]
    since = min(starts) if starts else meta.creation_timestamp
    if not since:
        return None
    return datetime.fromisoformat(str(since).replace("Z", "+00:00"))
