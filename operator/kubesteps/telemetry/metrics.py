"""Prometheus metrics of the operator, in a registry of their own.

Every label has a small, fixed set of values: outcomes, action types, condition reasons,
API verbs and status codes. Two switches add more, both off by default:
- `per_namespace_labels` adds `pipeline_namespace` to the reconcile, step and pipeline
  metrics (one series per namespace with Pipelines, times the buckets for histograms);
- `per_object_metrics` adds `kubesteps_pipeline_ready_info`, one series per Pipeline, for
  dashboards that list stalled pipelines by name.
The label is `pipeline_namespace`, not `namespace`, because Prometheus adds the scraped
pod's own `namespace` label and would otherwise rename ours to `exported_namespace`.

Pipeline gauges are computed at scrape time from the states the controller last reported
(`track_pipeline`), and a deleted Pipeline leaves no series behind (`forget_pipeline`).
"""

from __future__ import annotations

import re
import threading
from collections import Counter as Tally
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import start_http_server
from prometheus_client.registry import Collector

from kubesteps._version import __version__

# prometheus-client adds a `*_created` timestamp series next to every counter and histogram
# series; in the text format Prometheus stores them as more gauges nobody queries. The
# switch is process-wide.
disable_created_metrics()  # type: ignore[no-untyped-call]

# The engine's outcomes, plus `error`: the pass itself raised (for example, its status
# write failed for good), so the engine's outcome never reached the controller.
RECONCILE_OUTCOMES: Final = (
    "done",
    "wait",
    "retry",
    "failed",
    "aborted",
    "invalid",
    "suspended",
    "cancelled",
    "error",
)
# The engine's step statuses except `pending`; `running` is a step whose run was cut off
# because the pass was cancelled under it (the operator stopping).
STEP_OUTCOMES: Final = (
    "running",
    "succeeded",
    "failed",
    "waiting",
    "retrying",
    "skipped",
    "throttled",
)
API_VERBS: Final = (
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
)
READY_STATUSES: Final = ("True", "False", "Unknown")

# Condition reasons and action types are CamelCase / camelCase words chosen in code; the
# pattern keeps free text (messages, object names) from ever becoming a label value.
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]{0,62}")

NAMESPACE_LABEL: Final = "pipeline_namespace"

# Reconcile passes are short (long work waits by requeue); steps range from a no-op to a
# blocking HTTP call; requeues from a retry backoff of a second to a daily resync.
RECONCILE_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
STEP_BUCKETS: Final = (
    0.001,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
)
REQUEUE_BUCKETS: Final = (
    1.0,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    1800.0,
    3600.0,
    21600.0,
    86400.0,
)


def _choice(what: str, value: str, allowed: tuple[str, ...]) -> str:
    # str() turns a StrEnum member (the engine's OutcomeKind, StepStatus) into its value.
    if str(value) not in allowed:
        raise ValueError(f"{what} {str(value)!r} is not one of: {', '.join(allowed)}")
    return str(value)


def _word(what: str, value: str) -> None:
    if not _WORD.fullmatch(value):
        raise ValueError(
            f"{what} {value!r} cannot be a metric label: use a single CamelCase word "
            "(letters and digits, at most 63)"
        )


def _non_negative(what: str, value: float) -> None:
    if not value >= 0:  # also rejects NaN
        raise ValueError(f"{what} must be a number of seconds >= 0, got {value!r}")


@dataclass(frozen=True)
class _PipelineState:
    namespace: str
    name: str
    ready: str
    reason: str
    retrying_steps: int


class _PipelineCollector(Collector):
    """Builds the pipeline gauges from the last reported state of every tracked Pipeline."""

    def __init__(self, *, per_namespace_labels: bool, per_object_metrics: bool) -> None:
        self._per_namespace = per_namespace_labels
        self._per_object = per_object_metrics
        # The controller writes from the event loop, the HTTP server reads from its thread.
        self._lock = threading.Lock()
        self._states: dict[str, _PipelineState] = {}

    def put(self, uid: str, state: _PipelineState) -> None:
        with self._lock:
            self._states[uid] = state

    def remove(self, uid: str) -> None:
        with self._lock:
            self._states.pop(uid, None)

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily | None]:
        ns = [NAMESPACE_LABEL] if self._per_namespace else []
        pipelines = GaugeMetricFamily(
            "kubesteps_pipelines",
            "Pipelines by their Ready condition's status and reason.",
            labels=[*ns, "ready", "reason"],
        )
        retrying = GaugeMetricFamily(
            "kubesteps_steps_retrying",
            "Steps currently waiting to retry after a failure, over all Pipelines.",
            labels=ns,
        )
        info = (
            GaugeMetricFamily(
                "kubesteps_pipeline_ready_info",
                "1 per Pipeline, labelled with its Ready status and reason (opt-in).",
                labels=[NAMESPACE_LABEL, "pipeline", "ready", "reason"],
            )
            if self._per_object
            else None
        )
        return pipelines, retrying, info

    def describe(self) -> Iterable[Metric]:
        return [family for family in self._families() if family is not None]

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            states = list(self._states.values())
        pipelines, retrying, info = self._families()

        by_state = Tally(
            ((s.namespace,) if self._per_namespace else ()) + (s.ready, s.reason) for s in states
        )
        for labels, count in sorted(by_state.items()):
            pipelines.add_metric(list(labels), count)

        by_namespace: Tally[tuple[str, ...]] = Tally()
        for s in states:
            by_namespace[(s.namespace,) if self._per_namespace else ()] += s.retrying_steps
        if not self._per_namespace:
            by_namespace[()] += 0  # one unlabelled series even when nothing is tracked
        for labels, count in sorted(by_namespace.items()):
            retrying.add_metric(list(labels), count)

        if info is None:
            return [pipelines, retrying]
        for s in sorted(states, key=lambda s: (s.namespace, s.name)):
            info.add_metric([s.namespace, s.name, s.ready, s.reason], 1)
        return [pipelines, retrying, info]


class MetricsServer:
    """The `/metrics` HTTP endpoint, served from a daemon thread."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self.port: int = server.server_port

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class OperatorMetrics:
    """The operator's metrics and the calls the controller makes to update them."""

    def __init__(self, *, per_namespace_labels: bool = False, per_object_metrics: bool = False):
        self.registry = CollectorRegistry(auto_describe=True)
        self.per_namespace_labels = per_namespace_labels
        ns = [NAMESPACE_LABEL] if per_namespace_labels else []
        r = self.registry

        self._reconciles = Counter(
            "kubesteps_reconciles_total",
            "Reconcile passes, by outcome.",
            [*ns, "outcome"],
            registry=r,
        )
        self._reconcile_seconds = Histogram(
            "kubesteps_reconcile_duration_seconds",
            "Wall time of one reconcile pass.",
            ns,
            buckets=RECONCILE_BUCKETS,
            registry=r,
        )
        self._requeue_seconds = Histogram(
            "kubesteps_requeue_delay_seconds",
            "Delay before the next pass that a pass asked for, by outcome.",
            [*ns, "outcome"],
            buckets=REQUEUE_BUCKETS,
            registry=r,
        )
        self._step_runs = Counter(
            "kubesteps_step_runs_total",
            "Step runs, by action type and outcome.",
            [*ns, "action", "outcome"],
            registry=r,
        )
        self._step_seconds = Histogram(
            "kubesteps_step_duration_seconds",
            "Wall time of one step run, by action type.",
            [*ns, "action"],
            buckets=STEP_BUCKETS,
            registry=r,
        )
        self._status_writes = Counter(
            "kubesteps_status_writes_total",
            "Status patches sent to the API server (each attempt counts).",
            registry=r,
        )
        self._status_conflicts = Counter(
            "kubesteps_status_write_conflicts_total",
            "Status patches the API server refused with 409 Conflict.",
            registry=r,
        )
        self._runs = Counter(
            "kubesteps_runs_total",
            "Runs that ended, by what started them and how they ended "
            "(phase Succeeded, Failed or Cancelled).",
            [*ns, "trigger", "phase"],
            registry=r,
        )
        self._schedules_suspended = Counter(
            "kubesteps_schedules_suspended_total",
            "Schedules that suspended themselves after spec.schedule.suspendAfterFailures "
            "failed runs in a row.",
            ns,
            registry=r,
        )
        self._api_errors = Counter(
            "kubesteps_api_errors_total",
            "Failed Kubernetes API requests, by verb and HTTP status code "
            "(`network` when no response came).",
            ["verb", "code"],
            registry=r,
        )
        build_info = Gauge(
            "kubesteps_build_info",
            "Always 1; the operator's version in a label.",
            ["version"],
            registry=r,
        )
        build_info.labels(version=__version__).set(1)

        self._pipelines = _PipelineCollector(
            per_namespace_labels=per_namespace_labels, per_object_metrics=per_object_metrics
        )
        r.register(self._pipelines)

        if not per_namespace_labels:
            # Series that exist from the start make rate() and alert ratios correct from the
            # first pass; with namespaces in the labels the values are not known up front.
            for outcome in RECONCILE_OUTCOMES:
                self._reconciles.labels(outcome=outcome)

    def _ns(self, namespace: str) -> dict[str, str]:
        return {NAMESPACE_LABEL: namespace} if self.per_namespace_labels else {}

    def observe_reconcile(
        self,
        outcome: str,
        duration_s: float,
        requeue_s: float | None,
        *,
        namespace: str,
    ) -> None:
        """One reconcile pass ended; `requeue_s` is None when no next pass was scheduled."""
        outcome = _choice("reconcile outcome", outcome, RECONCILE_OUTCOMES)
        _non_negative("duration_s", duration_s)
        if requeue_s is not None:
            _non_negative("requeue_s", requeue_s)
        ns = self._ns(namespace)
        self._reconciles.labels(**ns, outcome=outcome).inc()
        (self._reconcile_seconds.labels(**ns) if ns else self._reconcile_seconds).observe(
            duration_s
        )
        if requeue_s is not None:
            self._requeue_seconds.labels(**ns, outcome=outcome).observe(requeue_s)

    def observe_step(self, action: str, outcome: str, duration_s: float, *, namespace: str) -> None:
        """One step ran (or was skipped or throttled) within a pass.

        `action` is the step's action type (`http`, `job`, …), never a step name: dynamic
        steps would make names unbounded.
        """
        _word("step action", action)
        outcome = _choice("step outcome", outcome, STEP_OUTCOMES)
        _non_negative("duration_s", duration_s)
        ns = self._ns(namespace)
        self._step_runs.labels(**ns, action=action, outcome=outcome).inc()
        self._step_seconds.labels(**ns, action=action).observe(duration_s)

    def observe_run(self, trigger: str, phase: str, *, namespace: str) -> None:
        """A run ended: ``trigger`` started it, it ended ``phase``."""
        _word("run trigger", trigger)
        _word("run phase", phase)
        self._runs.labels(**self._ns(namespace), trigger=trigger, phase=phase).inc()

    def observe_schedule_suspended(self, *, namespace: str) -> None:
        """A schedule suspended itself after too many failed runs."""
        ns = self._ns(namespace)
        (self._schedules_suspended.labels(**ns) if ns else self._schedules_suspended).inc()

    def observe_status_write(self, *, conflict: bool) -> None:
        """One status patch attempt; `conflict` when the server answered 409."""
        self._status_writes.inc()
        if conflict:
            self._status_conflicts.inc()

    def observe_api_error(self, verb: str, code: int | None) -> None:
        """A Kubernetes API request failed with HTTP status `code` (None: no response)."""
        verb = _choice("API verb", verb, API_VERBS)
        if code is None:
            label = "network"
        elif 400 <= code <= 599:
            label = str(code)
        else:
            raise ValueError(f"API error code {code!r} is not an HTTP error status (400-599)")
        self._api_errors.labels(verb=verb, code=label).inc()

    def track_pipeline(
        self,
        uid: str,
        *,
        namespace: str,
        name: str,
        ready: str,
        reason: str,
        retrying_steps: int = 0,
    ) -> None:
        """Record a Pipeline's state after a pass; it counts until `forget_pipeline(uid)`."""
        ready = _choice("Ready status", ready, READY_STATUSES)
        _word("Ready reason", reason)
        if retrying_steps < 0:
            raise ValueError(f"retrying_steps must be >= 0, got {retrying_steps}")
        self._pipelines.put(uid, _PipelineState(namespace, name, ready, reason, retrying_steps))

    def forget_pipeline(self, uid: str) -> None:
        """The Pipeline is gone: drop it from every gauge (unknown uids are ignored)."""
        self._pipelines.remove(uid)

    def render(self) -> str:
        """The text exposition format, exactly as `/metrics` serves it."""
        return generate_latest(self.registry).decode()

    def start_server(self, port: int, addr: str = "0.0.0.0") -> MetricsServer:
        """Serve `/metrics` on `addr:port` from a daemon thread (port 0: any free port)."""
        server, thread = start_http_server(port, addr=addr, registry=self.registry)
        return MetricsServer(server, thread)


_current: OperatorMetrics | None = None


def configure_metrics(
    *, per_namespace_labels: bool = False, per_object_metrics: bool = False
) -> OperatorMetrics:
    """Create the process's metrics with the chosen label options (at operator start-up)."""
    global _current
    _current = OperatorMetrics(
        per_namespace_labels=per_namespace_labels, per_object_metrics=per_object_metrics
    )
    return _current


def get_metrics() -> OperatorMetrics:
    """The process's metrics; the defaults if `configure_metrics` was not called."""
    global _current
    if _current is None:
        _current = OperatorMetrics()
    return _current
