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

from opentelemetry import trace

from kubesteps.engine import (
    Outcome,
    OutcomeKind,
    RunContext,
    StepsEngine,
    StepState,
    StepStatus,
    requeue_delay,
)
from kubesteps.keepers.conditions import ConditionsKeeper, StatusStore, Summary, summarize
from kubesteps.kube.client import KubeClient
from kubesteps.kube.conditions import find
from kubesteps.kube.events import EventRecorder
from kubesteps.kube.status import ObjectRef, StatusWriter
from kubesteps.pipeline.build import PASS_KEY, PassContext, Plan, build
from kubesteps.pipeline.cel import CelError
from kubesteps.pipeline.model import Pipeline
from kubesteps.pipeline.validate import SpecError, step_at, validate
from kubesteps.telemetry.metrics import OperatorMetrics

log = logging.getLogger("kubesteps.controller")
# kopf's bookkeeping annotations change on every pass; they are not part of the spec.
_KOPF_ANNOTATIONS = "kopf.zalando.org/"
tracer = trace.get_tracer("kubesteps.controller")

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
    invalid, suspended; ``delay`` is seconds until the next pass (None: only on change)."""

    outcome: str
    delay: float | None
    message: str
    step: str | None = None

    @property
    def permanent(self) -> bool:
        """No pass helps until the spec changes."""
        return self.outcome in ("failed", "invalid")


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
    ) -> None:
        self._client = client
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
        with tracer.start_as_current_span(
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
            if result.delay is not None:
                span.set_attribute("kubesteps.requeue_after_s", result.delay)
            if result.step:
                span.set_attribute("kubesteps.step", result.step)
            self._observe(result.outcome, started, result.delay, namespace)
            # Logged inside the span, so the line carries the pass's trace id.
            log.info(
                "pass over for %s/%s: %s%s", namespace, name, result.outcome,
                "" if result.delay is None else f", next pass in {result.delay:.3g}s",
                extra={"outcome": result.outcome, "requeue_after_s": result.delay},
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
        keeper = ConditionsKeeper(
            writer, body, conditions=plan.conditions,
            keep_on_spec_change=plan.keep_on_spec_change, clock=self.clock,
            flush_running_after=self.running_flush_after,
        )
        try:
            if pipeline.spec.suspend:
                message = "spec.suspend is true: no steps run until it is cleared"
                await keeper.commit(Summary("False", "Suspended", message, False, False))
                self._track(body, "False", "Suspended")
                return PassResult("suspended", None, message)

            timed_out = self._timed_out(body, pipeline, keeper)
            if timed_out is not None:
                outcome = Outcome(OutcomeKind.FAILED, None, None, timed_out)
            else:
                outcome = await self._run(body, plan, keeper, client)
            summary = summarize(outcome)
            await keeper.commit(summary)
        finally:
            keeper.close()  # a pass cut short must not write behind its successor's back
        resync = pipeline.spec.resync_period.total_seconds() if pipeline.spec.resync_period \
            else None
        delay = requeue_delay(outcome, resync_period=resync,
                              aborted_recheck=self.aborted_recheck)
        self._track(body, summary.ready, summary.reason,
                    retrying=sum(1 for s in keeper.states().values()
                                 if s.status is StepStatus.RETRYING))
        return PassResult(outcome.kind.value, delay, summary.message, outcome.step)

    async def _invalid(
        self, body: Mapping[str, Any], writer: StatusStore, errors: list[SpecError]
    ) -> PassResult:
        message = "; ".join(_with_step(body, e) for e in errors[:5])
        if len(errors) > 5:
            message += f"; and {len(errors) - 5} more"
        # What the spec keeps across changes is unknown now: keep every record as it is.
        keeper = ConditionsKeeper(writer, body, clock=self.clock, flush_running_after=None,
                                  prune_stale=False)
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
    ) -> Outcome:
        started: dict[str, float] = {}
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
            event = _EVENT_REASONS.get(new.status)
            if event is not None:
                reason, warning = event
                text = f"step {new.name!r}: {new.message}" if new.message else \
                    f"step {new.name!r}"
                self._emit(body, reason, text, warning=warning)

        context = RunContext(self.clock)
        context.put(PASS_KEY, PassContext(
            pipeline=body, kube=client, clock=self.clock, states=keeper,
            extras=dict(self.action_settings),
        ))
        engine = StepsEngine(
            plan.steps, keeper=keeper, clock=self.clock, on_transition=on_transition,
            run_timeout=timedelta(seconds=self.pass_timeout), name="pipeline",
        )
        try:
            return await engine.run(context)
        except BaseException:
            # The pass was cancelled (the operator is stopping) with these steps at work.
            for step_name, since in (started | taken_back).items():
                self._step_metrics(body, plan, StepState(step_name, StepStatus.RUNNING), since)
            raise

    def _timed_out(
        self, body: Mapping[str, Any], pipeline: Pipeline, keeper: ConditionsKeeper
    ) -> str | None:
        """The whole-run timeout counts from the first step started for this generation,
        and only while the run is unfinished: a resync of a finished run is not late."""
        limit = pipeline.spec.timeout
        if limit is None:
            return None
        generation = body.get("metadata", {}).get("generation")
        ready = find((body.get("status") or {}).get("conditions") or [], "Ready")
        if ready and ready.get("status") == "True" and \
                ready.get("observedGeneration") == generation:
            return None
        starts = [s.started_at for s in keeper.current_run_states() if s.started_at]
        if not starts or self.clock() - min(starts) <= limit:
            return None
        return f"the pipeline did not finish within spec.timeout ({limit})"

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
