"""StepsEngine: runs a tree of steps once, from the top, and returns an Outcome.

One run is one reconcile pass. For each step, in order: skip it if its state says it is
done (or disabled, or failed for good); evaluate its predicates (skip, or abort the run);
check throttling; record ``running``; run it inside its middleware, timeout and span; record
what happened. The run ends when every step is done, a step waits or retries, a step fails
for good, or a predicate aborts it. Nothing a step does escapes as an exception.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import random
import types
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from time import time_ns
from types import CoroutineType
from typing import Any, Final

from opentelemetry import context as otel_context
from opentelemetry import trace

from kubesteps.engine.context import RunContext, RunControl, StepContext
from kubesteps.engine.errors import (
    AbortedByPredicate,
    DefinitionError,
    KeeperError,
    StepRunError,
    StepTimeoutError,
    short_message,
)
from kubesteps.engine.keeper import NoWait, StateKeeper, nowait_access
from kubesteps.engine.memory import MemoryStateKeeper
from kubesteps.engine.outcome import Outcome, OutcomeKind
from kubesteps.engine.predicates import describe, evaluate, takes_context
from kubesteps.engine.recorder import (
    NOT_TAKEN,
    StateRecorder,
    TransitionListener,
    failed_state,
    retrying_state,
    running_state,
    succeeded_state,
    waiting_state,
)
from kubesteps.engine.results import (
    DONE,
    FINISHED,
    NOT_DUE,
    GroupResult,
    ResultKind,
    StepResult,
    earliest,
    group_result,
)
from kubesteps.engine.retry import RetryPolicy
from kubesteps.engine.signals import (
    WAIT,
    Signal,
    as_exception,
    classify,
    judge,
    keeper_error_in,
    read_children,
)
from kubesteps.engine.state import StepState, StepStatus, make_state
from kubesteps.engine.steps import (
    Case,
    DynamicStep,
    GroupedSteps,
    Middleware,
    Need,
    ParallelSteps,
    SimpleStep,
    Step,
    SwitchSteps,
    check_graph,
    is_graph,
)
from kubesteps.engine.throttling import decide

log = logging.getLogger("kubesteps.engine")

_OK: Final = ResultKind.OK
_FINISH: Final = ResultKind.FINISH
_WAIT: Final = ResultKind.WAIT
_RETRY: Final = ResultKind.RETRY
_FAILED: Final = ResultKind.FAILED
_ABORTED: Final = ResultKind.ABORTED


@dataclass(frozen=True, slots=True)
class _Scope:
    middleware: tuple[Middleware, ...]
    deadline: float | None  # loop time by which the run must end
    # Only steps already at work (running, waiting, retrying) go on; none starts afresh.
    finish_only: bool = False


class _Same:
    """The default of an optional argument that may be None."""


_SAME: Final = _Same()


# The default clock: one C call (it is read once per step).
utcnow: Callable[[], datetime] = functools.partial(datetime.now, UTC)


class StepsEngine(RunControl):
    """Runs ``steps`` with a keeper. Build once, ``await engine.run()`` once per pass.

    - ``keeper``: where states live (default: a fresh ``MemoryStateKeeper``).
    - ``middleware``: wraps every step's execution (outermost first; see the README).
    - ``retry``: the default ``RetryPolicy`` for steps without their own.
    - ``run_timeout``: the most one ``run()`` may take; the step running when it is reached
      is stopped and counts a failed attempt (retried by its policy).
    - ``clock``/``rng``: injected time and randomness (tests make both deterministic).
    - ``tracer``: an OpenTelemetry tracer; by default the global one, and no spans at all
      (no cost) while no SDK tracer provider is configured.
    - ``span_threshold``: a simple step that neither suspends nor fails, waits or retries
      gets a span only if it took longer than this; the quicker ones are counted on the
      run's span (``kubesteps.steps.unspanned``). See docs/observability.md.
    - ``on_transition``: called with ``(old, new)`` after every state the keeper recorded.
    - ``keeper_retry_delay``: the retry delay of a run stopped by a failing keeper.
    - ``overdue_grace``: seconds the last look at an attempt past its timeout may take.
    - ``max_concurrency``: how many of ``steps`` run at once when they form a graph
      (``needs``; default: all that can).
    """

    def __init__(
        self,
        steps: Sequence[Step],
        *,
        keeper: StateKeeper | None = None,
        middleware: Sequence[Middleware] = (),
        retry: RetryPolicy | None = None,
        run_timeout: timedelta | None = None,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
        tracer: trace.Tracer | None = None,
        on_transition: TransitionListener | None = None,
        keeper_retry_delay: float = 10.0,
        name: str = "steps",
        overdue_grace: float = 10.0,
        max_concurrency: int | None = None,
        span_threshold: timedelta = timedelta(milliseconds=10),
    ) -> None:
        if run_timeout is not None and run_timeout <= timedelta(0):
            raise DefinitionError(None, "run_timeout", f"must be > 0, got {run_timeout}")
        self.steps: tuple[Step, ...] = tuple(steps)
        if max_concurrency is not None and max_concurrency < 1:
            raise DefinitionError(None, "max_concurrency", f"must be >= 1, got {max_concurrency}")
        self.max_concurrency = max_concurrency
        self.keeper: StateKeeper = keeper if keeper is not None else MemoryStateKeeper()
        self.middleware = tuple(middleware)
        self.retry = retry if retry is not None else RetryPolicy()
        self.run_timeout = run_timeout
        self.clock = clock
        self.rng = rng if rng is not None else random.Random()
        self.tracer = tracer
        self.on_transition = on_transition
        self.keeper_retry_delay = keeper_retry_delay
        self.name = name
        # How long the last look at an attempt past its timeout may take.
        self.overdue_grace = overdue_grace
        self._steps_by_name: dict[str, Step] = {}
        self._state_keys: dict[str, str] = {}
        self._register(self.steps, origin="the engine")
        check_graph(self.steps, "the engine's steps")
        self._static_names = dict(self._steps_by_name)
        self._static_keys = dict(self._state_keys)
        self._run_context = RunContext(clock)
        self._tracer: trace.Tracer | None = None
        # The case each switch took in this run.
        self._chosen: dict[str, Case] = {}
        # Whether a step function takes the context, by function (steps share functions).
        self._wants_context: dict[Callable[..., Any], bool] = {}
        self._threshold_ns = int(span_threshold.total_seconds() * 1e9)
        # Quick successes of this run that got no span of their own.
        self._untraced = 0
        # The keeper's synchronous access, if it has one (set per run).
        self._nowait: NoWait | None = None
        self._recorder = StateRecorder(self.keeper, on_transition, None)  # made per run

    # -- the public surface -----------------------------------------------------------

    async def run(self, context: RunContext | None = None, *, finish_only: bool = False) -> Outcome:
        """Run the steps once. Never raises for anything a step does (only cancellation).

        ``finish_only``: the run's time is up; steps already at work (running, waiting or
        retrying) get one more go, so work that finished in time counts, but no step starts
        afresh (the run then ends ``RETRY`` naming the first step it did not start).
        """
        self._run_context = context if context is not None else RunContext(self.clock)
        # Steps generated by a previous run are forgotten: a dynamic step generates afresh.
        self._steps_by_name = dict(self._static_names)
        self._state_keys = dict(self._static_keys)
        self._chosen = {}
        self._untraced = 0
        self._nowait = nowait_access(self.keeper)
        self._recorder = StateRecorder(self.keeper, self.on_transition, self._nowait)
        self._tracer = self._active_tracer()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.run_timeout.total_seconds() if self.run_timeout else None
        scope = _Scope(self.middleware, deadline, finish_only)
        if self._tracer is None:
            return await self._run_top(scope)
        with self._tracer.start_as_current_span(
            f"{self.name} run", attributes={"kubesteps.engine": self.name}
        ) as span:
            outcome = await self._run_top(scope)
            span.set_attribute("kubesteps.outcome", outcome.kind.value)
            span.set_attribute("kubesteps.steps.unspanned", self._untraced)
            if outcome.step:
                span.set_attribute("kubesteps.outcome.step", outcome.step)
            if outcome.kind in (OutcomeKind.FAILED, OutcomeKind.RETRY) and outcome.error:
                span.record_exception(outcome.error)
            return outcome

    def names_with_tag(self, tag: str) -> list[str]:
        return [name for name, step in self._steps_by_name.items() if tag in step.tags]

    def state_name_of(self, name: str) -> str:
        return self._state_keys.get(name, name)

    # -- runs and sequences -----------------------------------------------------------

    async def _run_top(self, scope: _Scope) -> Outcome:
        try:
            if is_graph(self.steps):
                result = await self._run_graph(self.steps, scope, self.max_concurrency)
            else:
                result = await self._run_sequence(self.steps, scope)
        except KeeperError as err:
            log.error("%s: %s", self.name, err)
            return Outcome(
                kind=OutcomeKind.RETRY,
                delay=self.keeper_retry_delay,
                step=err.step,
                message=str(err),
                error=err,
            )
        except asyncio.CancelledError:
            await self._flush_quietly()
            raise
        try:
            await self.keeper.flush()
        except Exception as err:
            log.error("%s: state keeper flush failed: %s", self.name, err)
            message = f"state keeper could not save the run's states: {short_message(err)}"
            return Outcome(
                kind=OutcomeKind.RETRY,
                delay=self.keeper_retry_delay,
                step=None,
                message=message,
                error=err,
            )
        return self._outcome(result)

    async def _flush_quietly(self) -> None:
        try:
            await asyncio.shield(self.keeper.flush())
        except BaseException as err:  # already cancelled: report, do not mask the cancel
            log.warning("%s: flush after cancellation failed: %s", self.name, err)

    def _outcome(self, result: StepResult) -> Outcome:
        if result.kind in (_OK, _FINISH):
            delay = None
            if result.due is not None:
                delay = max(0.0, (result.due - self.clock()).total_seconds())
            return Outcome(kind=OutcomeKind.DONE, delay=delay)
        kind = {
            _WAIT: OutcomeKind.WAIT,
            _RETRY: OutcomeKind.RETRY,
            _FAILED: OutcomeKind.FAILED,
            _ABORTED: OutcomeKind.ABORTED,
        }[result.kind]
        return Outcome(
            kind=kind,
            delay=result.delay,
            step=result.step or None,
            message=result.message,
            error=result.error,
        )

    async def _run_sequence(self, steps: Iterable[Step], scope: _Scope) -> StepResult:
        queue = deque(steps)
        due: datetime | None = None
        loop = asyncio.get_running_loop()
        # The quick path needs the keeper's synchronous access and nothing around the steps.
        quick = self._nowait is not None and not scope.middleware and not scope.finish_only
        while queue:
            step = queue.popleft()
            if scope.deadline is not None and loop.time() >= scope.deadline:
                return StepResult(
                    kind=_RETRY,
                    step=step.name,
                    message="the run's timeout was reached before this step",
                    delay=0.0,
                )
            if (
                quick
                and type(step) is SimpleStep
                and not step.predicates
                and step.throttling is None
                and not step.middleware
                and step.on_success is None
            ):
                done = self._quick(step, scope)
                if done is DONE:
                    continue
                if isinstance(done, StepResult):  # finish_on_success
                    return StepResult(kind=_OK, due=due)
                if done is not None:
                    result, inserted = await done
                else:
                    result, inserted = await self._execute(step, scope)
            else:
                result, inserted = await self._execute(step, scope)
            if result.due is not None:
                due = earliest(due, result.due)
            if inserted:
                queue.extendleft(reversed(inserted))
            if result.kind is _OK:
                continue
            if result.kind is _FINISH:
                return StepResult(kind=_OK, due=due)
            result.due = due
            return result
        return StepResult(kind=_OK, due=due) if due is not None else DONE

    async def _run_graph(
        self, steps: Sequence[Step], scope: _Scope, limit: int | None
    ) -> StepResult:
        """Run a list whose steps have needs: each starts once its needs have ended as they
        ask, up to ``limit`` at once; one whose needs ended otherwise is skipped. A failure
        (or abort) starts no more steps; the ones at work finish. A failure that a step of
        the list needs as Failed is handled: it does not fail the list."""
        handled = {
            n.step for s in steps for n in s.needs if isinstance(n, Need) and n.phase == "Failed"
        }
        ended: dict[str, str] = {}  # step name -> Succeeded, Failed or Skipped
        pending = list(steps)
        running: dict[asyncio.Task[StepResult], Step] = {}
        problems: list[StepResult] = []
        stopped = False
        due: datetime | None = None
        most = limit or len(steps)
        try:
            while True:
                progressed = True
                while progressed and not stopped:
                    progressed = False
                    for step in list(pending):
                        verdict = _needs_verdict(step, ended)
                        if verdict is None:
                            continue
                        if verdict:
                            await self._needs_not_met(step, verdict)
                            ended[step.name] = "Skipped"
                            pending.remove(step)
                            progressed = True
                        elif len(running) < most:
                            pending.remove(step)
                            task = asyncio.ensure_future(self._run_sequence((step,), scope))
                            running[task] = step
                if not running:
                    break
                finished, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in finished:
                    step = running.pop(task)
                    result = task.result()
                    due = earliest(due, result.due)
                    phase = await self._ended_phase(step, result)
                    if phase is not None:
                        ended[step.name] = phase
                    if result.kind is _OK or (result.kind is _FAILED and step.name in handled):
                        continue
                    problems.append(result)
                    stopped = stopped or result.kind in (_FAILED, _ABORTED)
        finally:
            for task in running:
                task.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)
        if not problems:
            return StepResult(kind=_OK, due=due) if due is not None else DONE
        # One result for the list: an abort or a failure first, else the soonest look again.
        worst = min(
            problems,
            key=lambda r: (
                r.kind not in (_ABORTED, _FAILED),
                r.kind != _ABORTED,
                r.delay if r.delay is not None else float("inf"),
            ),
        )
        worst.due = due
        return worst

    async def _ended_phase(self, step: Step, result: StepResult) -> str | None:
        """How a step of a graph ended, as its needs see it (None: not yet)."""
        key = step.state_key
        if key is None:
            return {_OK: "Succeeded", _FAILED: "Failed"}.get(result.kind)
        state = await self._recorder.get(step.name, key)
        if state is None:
            return None
        if state.disabled:
            return "Succeeded"
        return _ENDED_PHASES.get(state.status)

    async def _needs_not_met(self, step: Step, message: str) -> None:
        key = step.state_key
        if key is not None:
            recorder = self._recorder
            prev = await recorder.get(step.name, key)
            await recorder.skip(step.name, prev, key, "NeedsNotMet", message)

    # -- one step ---------------------------------------------------------------------

    def _quick(
        self, step: SimpleStep, scope: _Scope
    ) -> StepResult | Coroutine[Any, Any, tuple[StepResult, Sequence[Step]]] | None:
        """The quick path of a plain simple step (no predicates, throttling, middleware or
        success hook) that has no state yet, with a keeper that has synchronous access: no
        coroutine of the engine's own unless the step suspends or fails.

        ``DONE``: it ran and succeeded, recorded. A coroutine: it suspended or raised, and
        awaiting that goes on from there. ``None``: nothing was done, take the full path.
        """
        nowait = self._nowait
        assert nowait is not None
        state = step.state
        key = (state.name or step.name) if state is not None else None
        if key is not None:
            try:
                prev = nowait[0](key)
            except Exception as err:
                raise KeeperError(step.name, "read the state", err) from err
            if prev is not None:
                return None  # what it did before decides: the full path
        now = self.clock()
        tracer = self._tracer
        started_ns = time_ns() if tracer is not None else 0
        function = step.run
        try:
            wants = self._wants_context[function]
        except KeyError:
            wants = self._remember_wants(function)
        except TypeError:  # an unhashable callable object
            wants = takes_context(function)
        # A function that takes no context gets none built (unless it suspends or fails).
        ctx = StepContext._fresh(step, self._run_context, self, now) if wants else None
        try:
            awaitable = function(ctx) if wants else function()  # type: ignore[call-arg, arg-type]
            if type(awaitable) is not CoroutineType and inspect.isawaitable(awaitable):
                awaitable = _awaited(awaitable)
            if type(awaitable) is CoroutineType:
                try:
                    pending = awaitable.send(None)
                except StopIteration as stop:
                    value = stop.value
                else:
                    ctx = ctx or StepContext._fresh(step, self._run_context, self, now)
                    return self._go_on(step, ctx, scope, key, awaitable, pending, now, started_ns)
            else:
                value = awaitable
        except (Exception, SystemExit) as err:
            ctx = ctx or StepContext._fresh(step, self._run_context, self, now)
            return self._quick_failure(step, ctx, scope, key, err, now, started_ns)
        if ctx is not None and ctx._inserted:
            return self._record_success(step, ctx, None, None, value, "", now)
        if key is not None:
            config = step.state
            succeeded = make_state(
                key,
                StepStatus.SUCCEEDED,
                (config.reason if config else "") or "Succeeded",
                (config.message if config else "") or "completed",
                1,
                now,
                now,
                None,
                dict(value) if value is not None and isinstance(value, Mapping) else None,
                False,
                (),
                now,
            )
            try:
                nowait[1](succeeded)
            except Exception as err:
                raise KeeperError(step.name, "record state 'succeeded'", err) from err
            recorder = self._recorder
            if recorder.on_transition is not None:
                recorder.tell(None, succeeded)
        if tracer is not None:
            self._step_span(
                tracer, None, step, 1, DONE if not step.finish_on_success else FINISHED, started_ns
            )
        return FINISHED if step.finish_on_success else DONE

    async def _go_on(
        self,
        step: SimpleStep,
        ctx: StepContext,
        scope: _Scope,
        key: str | None,
        coroutine: Coroutine[Any, Any, Any],
        pending: Any,
        now: datetime,
        started_ns: int,
    ) -> tuple[StepResult, Sequence[Step]]:
        """The quick path's step suspended: on with the full path from there."""
        return await self._run_simple(
            step, ctx, scope, None, key, "", now, started=(coroutine, pending, started_ns)
        )

    async def _quick_failure(
        self,
        step: SimpleStep,
        ctx: StepContext,
        scope: _Scope,
        key: str | None,
        err: BaseException,
        now: datetime,
        started_ns: int,
    ) -> tuple[StepResult, Sequence[Step]]:
        """The quick path's step raised before it ever suspended."""
        return await self._run_simple(
            step, ctx, scope, None, key, "", now, started=(None, err, started_ns)
        )

    def _remember_wants(self, function: Callable[..., Any]) -> bool:
        wants = takes_context(function)
        if len(self._wants_context) >= _WANTS_CACHE:
            self._wants_context.clear()  # bounded: dynamic steps bring new ones
        self._wants_context[function] = wants
        return wants

    async def _execute(self, step: Step, scope: _Scope) -> tuple[StepResult, Sequence[Step]]:
        state = step.state
        key = (state.name or step.name) if state is not None else None
        prev: StepState | None = None
        recorder = self._recorder
        if key is not None:
            nowait = self._nowait
            if nowait is None:
                prev = await recorder.get(step.name, key)
            else:
                prev = recorder.get_now(nowait, step.name, key)
        now = self.clock()
        if prev is not None:
            early = await self._settled(step, prev, now)
            if early is not None:
                return early, ()
        continuing = prev is not None and prev.status in _COUNTING
        if scope.finish_only and not continuing:
            if prev is not None and prev.done:
                return DONE, ()  # skipped or throttled before: it stays so
            return StepResult(
                kind=_RETRY, step=step.name, message="not started: the run's time is up"
            ), ()
        # A wait does not end the attempt: the next pass continues it, from the same start.
        same_attempt = prev is not None and prev.status is StepStatus.WAITING
        ctx = StepContext(
            step=step,
            previous=prev,
            run=self._run_context,
            control=self,
            attempt=(prev.attempts if prev is not None and continuing else 0) + 1,
            # A step that waits or retries over several passes keeps its first start time.
            started_at=(prev.started_at if prev is not None and continuing else None) or now,
            attempt_started_at=(
                prev.attempt_started_at or prev.started_at
                if prev is not None and same_attempt
                else None
            )
            or now,
        )

        for predicate in step.predicates:
            try:
                ok = await evaluate(predicate, ctx)
            except Exception as err:
                log.warning("step %r: predicate %s raised", step.name, describe(predicate))
                failure = DefinitionError(step.name, "predicates", f"{describe(predicate)}: {err}")
                return await self._fail_for_good(step, ctx, prev, key, failure, now), ()
            if ok:
                continue
            if step.abort_on_predicates_false:
                abort = AbortedByPredicate(step.name, describe(predicate))
                await recorder.skip(step.name, prev, key, "AbortedByPredicate", str(abort))
                return StepResult(
                    kind=_ABORTED, step=step.name, message=str(abort), error=abort
                ), ()
            message = f"predicate {describe(predicate)} is false"
            await recorder.skip(step.name, prev, key, "PredicateFalse", message)
            return DONE, ()

        throttle_key = ""
        if step.throttling is not None:
            throttle_key = step.throttling.partition_key or key or step.name
        # A step that is retrying, waiting or was cut off mid-run finishes its attempt
        # first: the interval spaces out whole runs, not the attempts of one.
        if step.throttling is not None and not continuing:
            last = await recorder.last_run(step.name, throttle_key)
            decision = decide(step.throttling, last, now, self.rng)
            if decision.record is not None:
                await recorder.record_last_run(step.name, throttle_key, decision.record)
            if not decision.run:
                assert decision.next_run_at is not None
                message = f"next run at {decision.next_run_at.isoformat(timespec='seconds')}"
                await recorder.skip(
                    step.name,
                    prev,
                    key,
                    "Throttled",
                    message,
                    StepStatus.THROTTLED,
                    next_run_at=decision.next_run_at,
                )
                return StepResult(kind=_OK, due=decision.next_run_at), ()

        if isinstance(step, SwitchSteps):
            try:
                chosen = await self._choose(step, ctx)
            except Exception as err:
                failure = DefinitionError(step.name, "cases", short_message(err))
                return await self._fail_for_good(step, ctx, prev, key, failure, now), ()
            if chosen is None:
                await recorder.skip(step.name, prev, key, "NoCaseTaken", "no case was taken")
                return DONE, ()
            self._chosen[step.name] = chosen

        if isinstance(step, SimpleStep):
            return await self._run_simple(step, ctx, scope, prev, key, throttle_key, now)

        running = running_state(step, key, ctx, prev)
        if key is not None:
            if self._nowait is not None:
                recorder.set_now(self._nowait, step.name, prev, running)
            else:
                await recorder.set(step.name, prev, running)

        tracer = self._tracer
        if tracer is None:
            return await self._run_and_record(step, ctx, scope, prev, running, throttle_key)
        with tracer.start_as_current_span(
            step.name, attributes={"kubesteps.step": step.name, "kubesteps.step.kind": step.kind}
        ) as span:
            result, inserted = await self._run_and_record(
                step, ctx, scope, prev, running, throttle_key
            )
            _describe_span(span, result, ctx.attempt)
            return result, inserted

    async def _run_simple(
        self,
        step: SimpleStep,
        ctx: StepContext,
        scope: _Scope,
        prev: StepState | None,
        key: str | None,
        throttle_key: str,
        now: datetime,
        *,
        started: tuple[Coroutine[Any, Any, Any] | None, Any, int] | None = None,
    ) -> tuple[StepResult, Sequence[Step]]:
        """A simple step's fast path: its function is called right here, and its coroutine
        driven by hand up to its first suspension. ``running`` is recorded only if it
        suspends (a step that returns without yielding to the loop has nobody to show it
        to), and only then get a timer (its timeout, the run's deadline) and a span.

        ``started``: the quick path began it already: (its coroutine, what that yielded,
        its start in ns) once it suspended, or (None, the error it raised, start).
        """
        tracer = self._tracer
        span: trace.Span | None = None
        running: StepState | None = None  # recorded: the step suspended
        try:
            suspended = False
            awaitable: Any
            if started is not None:
                awaitable, pending, started_ns = started
                if awaitable is None:
                    raise pending
                suspended = True
            else:
                started_ns = time_ns() if tracer is not None else 0
                chain = (
                    scope.middleware + tuple(step.middleware)
                    if step.middleware
                    else scope.middleware
                )
                if chain:
                    awaitable = self._chain(chain, ctx, step)()
                else:
                    function = step.run
                    try:
                        wants = self._wants_context[function]
                    except KeyError:
                        wants = self._remember_wants(function)
                    except TypeError:  # an unhashable callable object
                        wants = takes_context(function)
                    awaitable = function(ctx) if wants else function()  # type: ignore[call-arg]
                if type(awaitable) is not CoroutineType and inspect.isawaitable(awaitable):
                    awaitable = _awaited(awaitable)
                if type(awaitable) is CoroutineType:
                    try:
                        pending = awaitable.send(None)
                    except StopIteration as stop:
                        value = stop.value
                    else:
                        suspended = True
                else:
                    value = awaitable
            if suspended:
                assert awaitable is not None
                running = running_state(step, key, ctx, prev)
                if key is not None:
                    try:
                        await self._recorder.set(step.name, prev, running)
                    except BaseException:
                        awaitable.close()
                        raise
                token = None
                if tracer is not None:
                    span = tracer.start_span(
                        step.name, start_time=started_ns, attributes=_step_attributes(step)
                    )
                    token = otel_context.attach(trace.set_span_in_context(span))
                try:
                    value = await self._suspended(step, ctx, scope, awaitable, pending, now)
                finally:
                    if token is not None:
                        otel_context.detach(token)
        except asyncio.CancelledError:
            if span is not None:
                span.set_status(trace.Status(trace.StatusCode.ERROR, "cancelled"))
                span.end()
            if key is not None and running is not None:
                try:
                    await self._recorder.restore(step.name, running, prev, key)
                except KeeperError as err:  # the cancellation must still reach the caller
                    log.error("%s: %s", self.name, err)
            raise
        except KeeperError:
            if span is not None:
                span.end()
            raise
        except (Exception, SystemExit) as err:
            keeper_error = keeper_error_in(err)
            if keeper_error is not None:
                if span is not None:
                    span.end()
                raise keeper_error from err
            if step.timeout is not None and classify(err).kind is WAIT:
                ran = max(0.0, (now - ctx.attempt_started_at).total_seconds())
                if ran >= step.timeout.total_seconds():
                    # Past its deadline, the last look would wait on: the attempt timed out.
                    err = StepTimeoutError(
                        step.name, step.timeout.total_seconds(), ran=ran, attempt_timeout=True
                    )
            recorded = running is not None
            if running is None:
                running = running_state(step, key, ctx, prev)
            result = await self._handle_error(step, ctx, prev, running, err, recorded=recorded)
            if tracer is not None:
                self._step_span(tracer, span, step, ctx.attempt, result, started_ns)
            return result, ()
        result, inserted = await self._record_success(
            step, ctx, prev, running, value, throttle_key, now if running is None else None
        )
        if tracer is not None:
            self._step_span(tracer, span, step, ctx.attempt, result, started_ns)
        return result, inserted

    async def _suspended(
        self,
        step: SimpleStep,
        ctx: StepContext,
        scope: _Scope,
        coroutine: Coroutine[Any, Any, Any],
        pending: Any,
        now: datetime,
    ) -> Any:
        """Drive a step's coroutine on from its first suspension, within its timeout and
        the run's deadline."""
        timeout = None
        if step.timeout is not None:
            # The timeout bounds the whole attempt, also one that waits across passes.
            limit_s = step.timeout.total_seconds()
            ran = max(0.0, (now - ctx.attempt_started_at).total_seconds())
            # Past its deadline: one last, short look. What finished in time (a Job done
            # just before) counts; if it would wait on, the attempt has timed out.
            timeout = min(self.overdue_grace, limit_s) if ran >= limit_s else limit_s - ran
        # The run's deadline stops the innermost running step, the one doing the work: were
        # groups bounded by it too, the outermost would fire first and take the blame.
        if scope.deadline is not None:
            left = max(0.0, scope.deadline - asyncio.get_running_loop().time())
            timeout = left if timeout is None else min(timeout, left)
        if timeout is None:
            return await _resume(coroutine, pending)
        limit = asyncio.timeout(timeout)
        try:
            async with limit:
                return await _resume(coroutine, pending)
        except TimeoutError:
            if limit.expired():
                raise self._timeout_error(step, ctx, timeout) from None
            raise

    def _step_span(
        self,
        tracer: trace.Tracer,
        span: trace.Span | None,
        step: Step,
        attempt: int,
        result: StepResult,
        started_ns: int,
    ) -> None:
        """End a simple step's span, or make one now for a step that did not suspend but
        failed, waits, retries or took longer than ``span_threshold``. Quick successes get
        none: they are counted on the run's span."""
        if span is None:
            ended_ns = time_ns()
            if (
                result.kind is _OK or result.kind is _FINISH
            ) and ended_ns - started_ns < self._threshold_ns:
                self._untraced += 1
                return
            span = tracer.start_span(
                step.name, start_time=started_ns, attributes=_step_attributes(step)
            )
            _describe_span(span, result, attempt)
            span.end(end_time=ended_ns)
            return
        _describe_span(span, result, attempt)
        span.end()

    async def _settled(self, step: Step, prev: StepState, now: datetime) -> StepResult | None:
        """The result of a step whose recorded state decides it without running it.

        Failures and pending retries are decided here for every step, throttled or not:
        throttling only spaces out fresh runs, it never hides a failure or skips a backoff.
        """
        if prev.disabled:
            return DONE
        status = prev.status
        if status is StepStatus.FAILED:
            if not step.continue_on_error:
                error = StepRunError(step.name, RuntimeError(prev.message or "failed"))
                return StepResult(kind=_FAILED, step=step.name, message=prev.message, error=error)
            # A throttled step is periodic: it runs again once due, even after a failure.
            return DONE if step.throttling is None else None
        retry_at = prev.next_run_at
        if status is StepStatus.RETRYING and retry_at is not None and retry_at > now:
            delay = (retry_at - now).total_seconds()
            return StepResult(kind=_RETRY, step=step.name, message=prev.message, delay=delay)
        if status is StepStatus.SUCCEEDED and step.throttling is None:
            if step.skip_state_check:
                return None
            if prev.inserted and not await self._recorder.all_succeeded(prev.inserted):
                return None  # run again so it inserts the steps that are not done yet
            return DONE
        return None

    async def _run_and_record(
        self,
        step: Step,
        ctx: StepContext,
        scope: _Scope,
        prev: StepState | None,
        running: StepState,
        throttle_key: str,
    ) -> tuple[StepResult, Sequence[Step]]:
        key = step.state_key
        try:
            if step.middleware or scope.middleware or step.timeout is not None:
                value = await self._invoke(step, ctx, scope)
            elif type(step) is GroupedSteps and not step.graph:
                # (the common group, without the frame of ``_body``)
                value = group_result(await self._run_sequence(step.steps, scope))
            else:
                value = await self._body(step, ctx, scope)
        except asyncio.CancelledError:
            if key is not None:
                try:
                    await self._recorder.restore(step.name, running, prev, key)
                except KeeperError as err:  # the cancellation must still reach the caller
                    log.error("%s: %s", self.name, err)
            raise
        except KeeperError:
            raise
        except (Exception, SystemExit) as err:
            keeper_error = keeper_error_in(err)
            if keeper_error is not None:
                raise keeper_error from err
            return await self._handle_error(step, ctx, prev, running, err), ()
        if type(value) is GroupResult and value.problems:
            signal = read_children(
                step.name, value.problems, parallel=isinstance(step, ParallelSteps)
            )
            return await self._settle(step, ctx, prev, running, signal, signal.error), ()
        return await self._record_success(step, ctx, prev, running, value, throttle_key, None)

    async def _record_success(
        self,
        step: Step,
        ctx: StepContext,
        prev: StepState | None,
        running: StepState | None,
        value: Any,
        throttle_key: str,
        finished: datetime | None,
    ) -> tuple[StepResult, Sequence[Step]]:
        """Record a step's success. ``running``: the state recorded when it started (None:
        it never suspended, so nothing was, and ``finished`` is the pass's clock reading)."""
        key = step.state_key
        inserted = tuple(ctx._inserted) if ctx._inserted else ()
        if inserted:
            try:
                self._register(inserted, origin=f"step {step.name!r}")
            except DefinitionError as err:
                if running is None:
                    running = running_state(step, key, ctx, prev)
                    return await self._fail_for_good(
                        step, ctx, running, key, err, self.clock(), old=prev
                    ), ()
                return await self._fail_for_good(step, ctx, running, key, err, self.clock()), ()
        due = value.due if type(value) is GroupResult else None
        if finished is None:
            finished = self.clock()
        next_run_at = None
        recorder = self._recorder
        if step.throttling is not None:
            next_run_at = finished + step.throttling.interval
            due = earliest(due, next_run_at)
            if step.throttling.ensure_step_success:
                await recorder.record_last_run(step.name, throttle_key, finished)
        if key is not None:
            # (the ABC check is slow: skipped for None and a group's result)
            if value is not None and type(value) is not GroupResult and isinstance(value, Mapping):
                outputs: Mapping[str, Any] | None = dict(value)
            elif running is not None:
                outputs = running.outputs
            else:
                outputs = prev.outputs if prev is not None else None
            succeeded = succeeded_state(key, step, ctx, finished, next_run_at, outputs, inserted)
            if self._nowait is not None:
                recorder.set_now(self._nowait, step.name, running or prev, succeeded)
            else:
                await recorder.set(step.name, running or prev, succeeded)
        if step.on_success is not None:
            await self._hook(step, "on_success", step.on_success, ctx, step.name)
        if due is None:
            return (FINISHED if step.finish_on_success else DONE), inserted
        return StepResult(kind=_FINISH if step.finish_on_success else _OK, due=due), inserted

    def _chain(
        self,
        chain: tuple[Middleware, ...],
        ctx: StepContext,
        step: Step,
        inner: _Scope | None = None,
    ) -> Callable[[], Awaitable[Any]]:
        """The step's body wrapped in ``chain`` (outermost first)."""

        async def body() -> Any:
            if inner is None:  # a simple step
                assert isinstance(step, SimpleStep)
                return await _awaited(_call(step.run, ctx))
            value = await self._body(step, ctx, inner)
            if type(value) is GroupResult and value.problems:
                # A middleware deals in exceptions: it sees the group's problems raised.
                raise as_exception(step.name, value, parallel=isinstance(step, ParallelSteps))
            return value

        call: Callable[[], Awaitable[Any]] = body
        for middleware in reversed(chain):
            call = _bind(middleware, ctx, call)
        return call

    async def _invoke(self, step: Step, ctx: StepContext, scope: _Scope) -> Any:
        """Run a group's body inside its middleware chain and timeout."""
        chain = scope.middleware + tuple(step.middleware) if step.middleware else scope.middleware
        inner = _Scope(chain, scope.deadline, scope.finish_only) if step.middleware else scope
        if not chain and step.timeout is None:
            return await self._body(step, ctx, inner)
        call = (
            self._chain(chain, ctx, step, inner)
            if chain
            else functools.partial(self._body, step, ctx, inner)
        )

        timeout = None
        overdue: float | None = None
        if step.timeout is not None:
            # The timeout bounds the whole attempt, also one that waits across passes.
            limit_s = step.timeout.total_seconds()
            ran = max(0.0, (self.clock() - ctx.attempt_started_at).total_seconds())
            if ran >= limit_s:
                # Past its deadline: one last, short look. What finished in time (a Job done
                # just before) counts; if it would wait on, the attempt has timed out.
                overdue = ran
                timeout = min(self.overdue_grace, limit_s)
            else:
                timeout = limit_s - ran
        # The run's deadline stops the innermost running step (a simple one), not a group:
        # were groups bounded by it too, the outermost would fire first and take the blame.
        if timeout is None:
            return await call()
        limit = asyncio.timeout(timeout)
        try:
            async with limit:
                value = await call()
        except TimeoutError:
            if limit.expired():
                raise self._timeout_error(step, ctx, timeout) from None
            raise
        except Exception as err:
            if overdue is not None and classify(err).kind is WAIT:
                raise self._overdue_error(step, overdue) from None
            raise
        if (
            overdue is not None
            and type(value) is GroupResult
            and value.problems
            and read_children(
                step.name, value.problems, parallel=isinstance(step, ParallelSteps)
            ).kind
            is WAIT
        ):
            raise self._overdue_error(step, overdue)
        return value

    def _overdue_error(self, step: Step, ran: float) -> StepTimeoutError:
        """A step past its timeout that would wait on: its attempt has timed out."""
        assert step.timeout is not None
        return StepTimeoutError(
            step.name, step.timeout.total_seconds(), ran=ran, attempt_timeout=True
        )

    def _timeout_error(self, step: Step, ctx: StepContext, waited: float) -> StepTimeoutError:
        """What the step is told when its attempt (or the pass's deadline) cut it off."""
        if step.timeout is None:
            return StepTimeoutError(step.name, waited)
        limit_s = step.timeout.total_seconds()
        ran = max(0.0, (self.clock() - ctx.attempt_started_at).total_seconds())
        if ran + 1e-3 < limit_s and waited < limit_s:
            return StepTimeoutError(step.name, waited)  # the pass's deadline came first
        return StepTimeoutError(
            step.name, limit_s, ran=ran if ran > waited + 1 else None, attempt_timeout=True
        )

    async def _body(self, step: Step, ctx: StepContext, scope: _Scope) -> Any:
        """A group-like step's body (a simple step's runs in ``_run_simple``)."""
        if isinstance(step, GroupedSteps):
            if step.graph:
                return group_result(await self._run_graph(step.steps, scope, step.max_concurrency))
            return group_result(await self._run_sequence(step.steps, scope))
        if isinstance(step, SwitchSteps):
            chosen = self._chosen[step.name]
            for case in step.cases:
                key = case.step.state_key
                if case is not chosen and key is not None:
                    await self._recorder.not_taken(case.step.name, key, chosen.step.name)
            return group_result(await self._run_sequence((chosen.step,), scope))
        if isinstance(step, ParallelSteps):
            return await self._run_parallel(step, scope)
        if isinstance(step, DynamicStep):
            generate = step.generate
            generated = _call(generate, ctx)
            if inspect.isawaitable(generated):
                generated = await generated
            steps = _as_steps(step.name, generated)
            self._register(steps, origin=f"dynamic step {step.name!r}")
            return group_result(await self._run_sequence(steps, scope))
        raise DefinitionError(step.name, "kind", f"unknown step type {type(step).__name__}")

    async def _choose(self, switch: SwitchSteps, ctx: StepContext) -> Case | None:
        """The case to take: one that started in an earlier run of this switch stays taken;
        otherwise the first whose predicates all hold."""
        for case in switch.cases:
            key = case.step.state_key
            state = await self._recorder.get(case.step.name, key) if key is not None else None
            if (
                state is not None
                and state.status is not StepStatus.PENDING
                and state.reason != NOT_TAKEN
            ):
                return case
        for case in switch.cases:
            for predicate in case.when:
                if not await evaluate(predicate, ctx):
                    break
            else:
                return case
        return None

    async def _run_parallel(self, group: ParallelSteps, scope: _Scope) -> GroupResult:
        limit = group.max_concurrency or len(group.steps)
        semaphore = asyncio.Semaphore(limit) if limit < len(group.steps) else None
        tasks: list[asyncio.Task[StepResult]] = []

        async def branch(sub: Step) -> StepResult:
            if semaphore is None:
                result = await self._run_sequence((sub,), scope)
            else:
                async with semaphore:
                    result = await self._run_sequence((sub,), scope)
            if group.fail_fast and (result.kind is _FAILED or result.kind is _ABORTED):
                current = asyncio.current_task()
                for task in tasks:
                    if task is not current:
                        task.cancel()
            return result

        async def resumed(
            done: Coroutine[Any, Any, tuple[StepResult, Sequence[Step]]],
        ) -> StepResult:
            # A quick step that suspended or failed, on from there as _run_sequence goes on.
            result, inserted = await done
            if result.kind is _OK and inserted:
                later = await self._run_sequence(inserted, scope)
                if result.due is not None:
                    later.due = earliest(later.due, result.due)
                return later
            return StepResult(kind=_OK, due=result.due) if result.kind is _FINISH else result

        # Without a limit, fail-fast or anything around the steps, a plain simple step starts
        # on the quick path right here: one that returns without suspending needs no task.
        # (Not with fail-fast: there a failure must keep the branches not yet begun from
        # starting, and a quick branch has run before any task gets to fail.)
        quick = (
            semaphore is None
            and not group.fail_fast
            and self._nowait is not None
            and not scope.middleware
            and not scope.finish_only
            and (scope.deadline is None or asyncio.get_running_loop().time() < scope.deadline)
        )
        try:
            for sub in group.steps:
                if (
                    quick
                    and type(sub) is SimpleStep
                    and not sub.predicates
                    and sub.throttling is None
                    and not sub.middleware
                    and sub.on_success is None
                ):
                    done = self._quick(sub, scope)
                    if isinstance(done, StepResult):  # DONE, or FINISHED: its branch ends
                        continue
                    if done is not None:
                        tasks.append(asyncio.ensure_future(resumed(done)))
                        continue
                tasks.append(asyncio.ensure_future(branch(sub)))
        except BaseException:
            # The keeper failed under a quick step: the branches begun so far are cancelled
            # (once each has reached its first suspension, so that it sees the cancellation
            # there and its state is put back, as fail-fast does).
            await asyncio.sleep(0)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        problems: list[StepResult] = []
        due: datetime | None = None
        for outcome in outcomes:
            if isinstance(outcome, asyncio.CancelledError):
                continue  # cancelled by fail_fast: its state was put back
            if isinstance(outcome, KeeperError):
                raise outcome
            if isinstance(outcome, BaseException):
                raise outcome  # a bug in the engine itself: let it show
            due = earliest(due, outcome.due)
            if outcome.kind is not _OK:
                problems.append(outcome)
        if problems:
            return GroupResult(due=due, problems=tuple(problems))
        return GroupResult(due=due) if due is not None else NOT_DUE

    # -- recording what happened ------------------------------------------------------

    async def _handle_error(
        self,
        step: Step,
        ctx: StepContext,
        prev: StepState | None,
        running: StepState,
        err: BaseException,
        *,
        recorded: bool = True,
    ) -> StepResult:
        """Record how a step's attempt ended by raising ``err``."""
        return await self._settle(step, ctx, prev, running, classify(err), err, recorded=recorded)

    async def _settle(
        self,
        step: Step,
        ctx: StepContext,
        prev: StepState | None,
        running: StepState,
        signal: Signal,
        err: BaseException,
        *,
        recorded: bool = True,
    ) -> StepResult:
        """Record how a step's attempt ended (``err``, read as ``signal``). ``running``: the
        state it ran as, recorded (``recorded``) or not (it failed before it ever
        suspended)."""
        now = self.clock()
        verdict = judge(
            signal,
            err,
            step=step,
            attempt=ctx.attempt,
            attempt_started_at=ctx.attempt_started_at,
            now=now,
            policy=step.retry or self.retry,
            rng=self.rng,
        )
        old = running if recorded else prev
        key = step.state_key
        kind = verdict.kind
        if kind is _FAILED:
            return await self._fail_for_good(
                step, ctx, running, key, verdict.error, now, message=verdict.recorded, old=old
            )
        if kind is _OK or kind is _ABORTED:
            if key is not None and recorded:
                await self._recorder.restore(step.name, running, prev, key)
            return (
                DONE
                if kind is _OK
                else StepResult(
                    kind=kind, step=verdict.step, message=verdict.message, error=verdict.error
                )
            )
        if key is not None:
            assert verdict.recorded is not None
            if kind is _WAIT:
                state = waiting_state(running, verdict.recorded, verdict.until)
            else:
                assert verdict.until is not None
                state = retrying_state(
                    running,
                    verdict.reason,
                    verdict.recorded,
                    verdict.until,
                    counted=verdict.counted,
                )
            await self._recorder.set(step.name, old, state)
        return StepResult(
            kind=kind,
            step=verdict.step,
            message=verdict.message,
            delay=verdict.delay,
            error=verdict.error,
        )

    async def _fail_for_good(
        self,
        step: Step,
        ctx: StepContext,
        current: StepState | None,
        key: str | None,
        err: BaseException,
        now: datetime,
        *,
        message: str | None = None,
        old: StepState | _Same | None = _SAME,
    ) -> StepResult:
        """Record a failure for good. ``current``: the base of the new state; ``old``: what
        was recorded before (default: ``current``), for the transition listener."""
        inner = err if isinstance(err, StepRunError) else None
        if message is None:
            message = short_message(inner.error if inner and inner.step == step.name else err)
        if key is not None:
            base = current if current is not None else StepState(name=key)
            cause = inner.error if inner is not None and inner.step == step.name else err
            failed = failed_state(base, cause, message, now)
            await self._recorder.set(step.name, current if isinstance(old, _Same) else old, failed)
        if step.on_fail is not None:
            await self._hook(step, "on_fail", step.on_fail, ctx, step.name, err)
        if step.continue_on_error:
            return DONE
        error = inner if inner is not None else StepRunError(step.name, err)
        return StepResult(
            kind=_FAILED, step=error.step, message=short_message(error.error), error=error
        )

    async def _hook(self, step: Step, label: str, hook: Callable[..., Any], *args: Any) -> None:
        try:
            result = hook(*args)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("step %r: %s hook raised; ignored", step.name, label)

    # -- definitions ------------------------------------------------------------------

    def _register(self, steps: Iterable[Step], *, origin: str) -> None:
        """Check that names and state names are unique, then index them (and their tags)."""
        new_names: dict[str, Step] = {}
        new_keys: dict[str, str] = {}
        taken_keys = set(self._state_keys.values())
        for top in steps:
            if not isinstance(top, Step):
                raise DefinitionError(None, "steps", f"{origin} got {top!r}, which is not a Step")
            for step in top.walk():
                if step.name in self._steps_by_name or step.name in new_names:
                    raise DefinitionError(
                        step.name, "name", f"is used by more than one step (in {origin})"
                    )
                key = step.state_key
                if key is not None:
                    if key in taken_keys:
                        raise DefinitionError(
                            step.name,
                            "state.name",
                            f"state name {key!r} is already used by another step",
                        )
                    taken_keys.add(key)
                    new_keys[step.name] = key
                new_names[step.name] = step
        self._steps_by_name.update(new_names)
        self._state_keys.update(new_keys)

    def _active_tracer(self) -> trace.Tracer | None:
        if self.tracer is not None:
            return self.tracer
        provider = trace.get_tracer_provider()
        if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
            return None  # nothing would record the spans: do not pay for them
        return provider.get_tracer("kubesteps.engine")


# How many step functions the engine remembers whether they take the context.
_WANTS_CACHE: Final = 4096

# How a step of a graph ended, for the needs of the others.
_ENDED_PHASES: Final = {
    StepStatus.SUCCEEDED: "Succeeded",
    StepStatus.THROTTLED: "Succeeded",  # it ran before, and is not due again yet
    StepStatus.FAILED: "Failed",
    StepStatus.SKIPPED: "Skipped",
}


_ENDED_WORDS: Final = {"Succeeded": "succeeded", "Failed": "failed", "Skipped": "been skipped"}


def _needs_verdict(step: Step, ended: Mapping[str, str]) -> str | None:
    """Whether a step of a graph can start: ``""`` yes, None not yet, else why it never will
    (a need ended another way than it asks)."""
    waiting = False
    for need in step.needs:
        assert isinstance(need, Need)
        phase = ended.get(need.step)
        if phase is None:
            waiting = True
        elif not need.met_by(phase):
            return f"needs {need.step!r} to have {_ENDED_WORDS[need.phase]}; it " + _ENDED_WORDS[
                phase
            ].replace("been ", "was ")
    return None if waiting else ""


# Statuses whose attempts carry over to the next try (a crash while running counts).
_COUNTING = frozenset({StepStatus.RETRYING, StepStatus.RUNNING, StepStatus.WAITING})


def _step_attributes(step: Step) -> dict[str, str]:
    return {"kubesteps.step": step.name, "kubesteps.step.kind": step.kind}


def _describe_span(span: trace.Span, result: StepResult, attempt: int) -> None:
    span.set_attribute("kubesteps.step.outcome", result.kind.value)
    span.set_attribute("kubesteps.step.attempt", attempt)
    if result.kind in (_FAILED, _RETRY) and result.error is not None:
        span.record_exception(result.error)
        span.set_status(trace.Status(trace.StatusCode.ERROR, result.message))
    elif result.kind in (_OK, _FINISH):
        span.set_status(trace.Status(trace.StatusCode.OK))


async def _awaited(awaitable: Any) -> Any:
    """``awaitable``'s value; a plain value as it is."""
    if inspect.isawaitable(awaitable):
        return await awaitable
    return awaitable


@types.coroutine
def _resume(coroutine: Coroutine[Any, Any, Any], pending: Any) -> Generator[Any, Any, Any]:
    """Go on with a coroutine that was driven by hand up to its first suspension, where it
    yielded ``pending`` (to the event loop): from here it runs as if it had been awaited."""
    while True:
        try:
            sent = yield pending
        except GeneratorExit:
            coroutine.close()
            raise
        except BaseException as err:  # thrown in by the task (a cancellation): pass it on
            try:
                pending = coroutine.throw(err)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                pending = coroutine.send(sent)
            except StopIteration as stop:
                return stop.value


def _call(fn: Callable[..., Any], ctx: StepContext) -> Any:
    """Call a user function with the step context if it takes one, else with nothing."""
    return fn(ctx) if takes_context(fn) else fn()


def _bind(
    middleware: Middleware, ctx: StepContext, call: Callable[[], Awaitable[Any]]
) -> Callable[[], Awaitable[Any]]:
    async def wrapped() -> Any:
        return await middleware(ctx, call)

    return wrapped


def _as_steps(name: str, generated: Any) -> Sequence[Step]:
    if isinstance(generated, Step):
        return (generated,)
    # An empty list is fine: a fan-out over an empty list has nothing to do.
    if isinstance(generated, Sequence) and all(isinstance(s, Step) for s in generated):
        return tuple(generated)
    raise DefinitionError(
        name, "generate", f"must return a Step or a list of Steps, got {generated!r}"
    )
