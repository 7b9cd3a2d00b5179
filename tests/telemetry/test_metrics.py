"""The operator's metrics: what each call records, label bounds, and no leaked series."""

from __future__ import annotations

import enum
import socket
import urllib.request

import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kubesteps import __version__
from kubesteps.actions.registry import builtin_actions
from kubesteps.engine import OutcomeKind, StepStatus
from kubesteps.pipeline import model
from kubesteps.telemetry import metrics as metrics_module
from kubesteps.telemetry.metrics import (
    RECONCILE_OUTCOMES,
    STEP_OUTCOMES,
    OperatorMetrics,
    configure_metrics,
    get_metrics,
)

from .promql import promtool

Labels = frozenset[tuple[str, str]]


def _samples(metrics: OperatorMetrics, name: str) -> dict[Labels, float]:
    """The samples of one series name, keyed by their label sets."""
    return {
        frozenset(sample.labels.items()): sample.value
        for family in text_string_to_metric_families(metrics.render())
        for sample in family.samples
        if sample.name == name
    }


def _labels(**labels: str) -> Labels:
    return frozenset(labels.items())


def _label_names(metrics: OperatorMetrics) -> set[str]:
    return {
        label
        for family in text_string_to_metric_families(metrics.render())
        for sample in family.samples
        for label in sample.labels
    }


class _Outcome(enum.StrEnum):
    RETRY = "retry"


def test_reconcile_passes_are_counted_by_outcome_with_duration_and_requeue() -> None:
    metrics = OperatorMetrics()

    metrics.observe_reconcile("done", 0.02, 300.0, namespace="ops")
    metrics.observe_reconcile(_Outcome.RETRY, 0.2, 4.0, namespace="ops")
    metrics.observe_reconcile("failed", 0.3, None, namespace="ops")

    reconciles = _samples(metrics, "kubesteps_reconciles_total")
    assert reconciles[_labels(outcome="done")] == 1
    assert reconciles[_labels(outcome="retry")] == 1
    assert reconciles[_labels(outcome="failed")] == 1
    assert _samples(metrics, "kubesteps_reconcile_duration_seconds_count") == {_labels(): 3}
    assert _samples(metrics, "kubesteps_reconcile_duration_seconds_sum")[_labels()] == (
        pytest.approx(0.52)
    )
    requeues = _samples(metrics, "kubesteps_requeue_delay_seconds_count")
    assert requeues == {_labels(outcome="done"): 1, _labels(outcome="retry"): 1}
    buckets = _samples(metrics, "kubesteps_requeue_delay_seconds_bucket")
    assert buckets[_labels(outcome="retry", le="5.0")] == 1
    assert buckets[_labels(outcome="retry", le="1.0")] == 0


def test_every_reconcile_outcome_is_exported_at_zero_before_any_pass() -> None:
    reconciles = _samples(OperatorMetrics(), "kubesteps_reconciles_total")

    assert reconciles == {_labels(outcome=outcome): 0 for outcome in RECONCILE_OUTCOMES}


def test_step_runs_are_counted_by_action_and_outcome_and_timed_by_action() -> None:
    metrics = OperatorMetrics()

    metrics.observe_step("http", "succeeded", 0.05, namespace="ops")
    metrics.observe_step("http", "retrying", 0.5, namespace="ops")
    metrics.observe_step("job", "waiting", 0.01, namespace="ops")

    assert _samples(metrics, "kubesteps_step_runs_total") == {
        _labels(action="http", outcome="succeeded"): 1,
        _labels(action="http", outcome="retrying"): 1,
        _labels(action="job", outcome="waiting"): 1,
    }
    assert _samples(metrics, "kubesteps_step_duration_seconds_count") == {
        _labels(action="http"): 2,
        _labels(action="job"): 1,
    }


def test_every_value_the_controller_reports_is_a_label_value() -> None:
    """A value refused here would raise inside a reconcile pass: the sets must match."""
    assert {status.value for status in StepStatus} - {"pending"} == set(STEP_OUTCOMES)
    # A pass ends with the engine's outcome, or before the engine runs (invalid, suspended,
    # cancelled), or raises (error).
    assert {kind.value for kind in OutcomeKind} | {
        "invalid",
        "suspended",
        "cancelled",
        "error",
    } == set(RECONCILE_OUTCOMES)
    # The action label is the step's action, or the kind of a step that has none.
    metrics = OperatorMetrics()
    kinds = [kind for kind in model._STEP_KINDS if kind != "action"]
    for action in [*builtin_actions(), *kinds, "step"]:
        metrics.observe_step(action, "succeeded", 0.0, namespace="ops")
    assert (
        len(_samples(metrics, "kubesteps_step_runs_total"))
        == len(builtin_actions()) + len(kinds) + 1
    )


def test_status_writes_and_conflicts_are_counted_apart() -> None:
    metrics = OperatorMetrics()

    metrics.observe_status_write(conflict=True)
    metrics.observe_status_write(conflict=False)

    assert _samples(metrics, "kubesteps_status_writes_total") == {_labels(): 2}
    assert _samples(metrics, "kubesteps_status_write_conflicts_total") == {_labels(): 1}


def test_api_errors_are_counted_by_verb_and_status_code() -> None:
    metrics = OperatorMetrics()

    metrics.observe_api_error("patch", 409)
    metrics.observe_api_error("patch", 409)
    metrics.observe_api_error("watch", None)

    assert _samples(metrics, "kubesteps_api_errors_total") == {
        _labels(verb="patch", code="409"): 2,
        _labels(verb="watch", code="network"): 1,
    }


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda m: m.observe_reconcile("crashed", 1, None, namespace="a"),
            "reconcile outcome 'crashed' is not one of: done, wait, retry, failed, aborted, "
            "invalid, suspended, cancelled, error",
        ),
        (
            lambda m: m.observe_reconcile("done", -1, None, namespace="a"),
            "duration_s must be a number of seconds >= 0, got -1",
        ),
        (
            lambda m: m.observe_reconcile("wait", 1, float("nan"), namespace="a"),
            "requeue_s must be a number of seconds >= 0, got nan",
        ),
        (
            lambda m: m.observe_step("build-image-3", "succeeded", 1, namespace="a"),
            "step action 'build-image-3' cannot be a metric label",
        ),
        (
            lambda m: m.observe_step("http", "ok", 1, namespace="a"),
            "step outcome 'ok' is not one of: running, succeeded, failed, waiting, retrying, "
            "skipped, throttled",
        ),
        (lambda m: m.observe_api_error("GET", 500), "API verb 'GET' is not one of: get, list"),
        (
            lambda m: m.observe_api_error("get", 200),
            "API error code 200 is not an HTTP error status (400-599)",
        ),
        (
            lambda m: m.track_pipeline("u", namespace="a", name="p", ready="no", reason="Failed"),
            "Ready status 'no' is not one of: True, False, Unknown",
        ),
        (
            lambda m: m.track_pipeline(
                "u", namespace="a", name="p", ready="False", reason="step build failed"
            ),
            "Ready reason 'step build failed' cannot be a metric label",
        ),
        (
            lambda m: m.track_pipeline(
                "u", namespace="a", name="p", ready="False", reason="Retrying", retrying_steps=-1
            ),
            "retrying_steps must be >= 0, got -1",
        ),
    ],
)
def test_values_that_would_break_label_bounds_are_refused_clearly(
    call: object, message: str
) -> None:
    metrics = OperatorMetrics()
    assert callable(call)
    before = metrics.render()

    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        call(metrics)
    assert metrics.render() == before


def test_pipeline_gauges_aggregate_the_last_state_of_each_pipeline() -> None:
    metrics = OperatorMetrics()

    metrics.track_pipeline("u1", namespace="a", name="p1", ready="False", reason="Running")
    metrics.track_pipeline(
        "u1", namespace="a", name="p1", ready="False", reason="Retrying", retrying_steps=2
    )
    metrics.track_pipeline(
        "u2", namespace="b", name="p2", ready="False", reason="Retrying", retrying_steps=1
    )
    metrics.track_pipeline("u3", namespace="b", name="p3", ready="True", reason="Succeeded")

    assert _samples(metrics, "kubesteps_pipelines") == {
        _labels(ready="False", reason="Retrying"): 2,
        _labels(ready="True", reason="Succeeded"): 1,
    }
    assert _samples(metrics, "kubesteps_steps_retrying") == {_labels(): 3}


def test_forgotten_pipelines_leave_no_series_behind() -> None:
    metrics = OperatorMetrics(per_namespace_labels=True, per_object_metrics=True)
    metrics.track_pipeline(
        "u1", namespace="a", name="p1", ready="False", reason="Failed", retrying_steps=1
    )
    metrics.track_pipeline("u2", namespace="b", name="p2", ready="True", reason="Succeeded")

    metrics.forget_pipeline("u1")
    metrics.forget_pipeline("u2")
    metrics.forget_pipeline("never-tracked")

    assert _samples(metrics, "kubesteps_pipelines") == {}
    assert _samples(metrics, "kubesteps_steps_retrying") == {}
    assert _samples(metrics, "kubesteps_pipeline_ready_info") == {}


def test_by_default_no_metric_has_a_namespace_or_per_pipeline_series() -> None:
    metrics = OperatorMetrics()
    metrics.observe_reconcile("done", 1, 1, namespace="a")
    metrics.observe_step("http", "failed", 1, namespace="a")
    metrics.track_pipeline("u1", namespace="a", name="p1", ready="False", reason="Failed")

    assert _label_names(metrics) <= {
        "outcome",
        "action",
        "le",
        "verb",
        "code",
        "ready",
        "reason",
        "version",
    }
    assert _samples(metrics, "kubesteps_pipeline_ready_info") == {}


def test_per_namespace_labels_add_the_pipelines_namespace() -> None:
    metrics = OperatorMetrics(per_namespace_labels=True)

    metrics.observe_reconcile("done", 1, 1, namespace="a")
    metrics.observe_step("http", "failed", 1, namespace="b")
    metrics.track_pipeline(
        "u1", namespace="a", name="p1", ready="False", reason="Retrying", retrying_steps=2
    )

    assert _samples(metrics, "kubesteps_reconciles_total") == {
        _labels(outcome="done", pipeline_namespace="a"): 1
    }
    assert _samples(metrics, "kubesteps_step_duration_seconds_count") == {
        _labels(action="http", pipeline_namespace="b"): 1
    }
    assert _samples(metrics, "kubesteps_pipelines") == {
        _labels(pipeline_namespace="a", ready="False", reason="Retrying"): 1
    }
    assert _samples(metrics, "kubesteps_steps_retrying") == {_labels(pipeline_namespace="a"): 2}


def test_per_object_metrics_list_each_pipeline_with_its_ready_state() -> None:
    metrics = OperatorMetrics(per_object_metrics=True)

    metrics.track_pipeline("u1", namespace="a", name="p1", ready="False", reason="Failed")
    metrics.track_pipeline("u2", namespace="a", name="p2", ready="True", reason="Succeeded")

    assert _samples(metrics, "kubesteps_pipeline_ready_info") == {
        _labels(pipeline_namespace="a", pipeline="p1", ready="False", reason="Failed"): 1,
        _labels(pipeline_namespace="a", pipeline="p2", ready="True", reason="Succeeded"): 1,
    }


def test_build_info_carries_the_version() -> None:
    assert _samples(OperatorMetrics(), "kubesteps_build_info") == {_labels(version=__version__): 1}


def test_metrics_stay_out_of_prometheus_clients_global_registry() -> None:
    metrics = OperatorMetrics()
    metrics.observe_status_write(conflict=False)

    assert "kubesteps_status_writes_total" in metrics.render()
    assert b"kubesteps_" not in prometheus_client.generate_latest(prometheus_client.REGISTRY)


def test_the_server_serves_the_registry_and_frees_its_port_on_close() -> None:
    metrics = OperatorMetrics()
    metrics.observe_api_error("get", 503)
    server = metrics.start_server(0, "127.0.0.1")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=10) as r:
            body = r.read().decode()
    finally:
        server.close()

    assert body == metrics.render()
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", server.port), timeout=10),
    ):
        pass


def test_get_metrics_returns_what_configure_metrics_created(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Put the process-wide instance back afterwards, for tests that use the default.
    monkeypatch.setattr(metrics_module, "_current", metrics_module._current)
    configured = configure_metrics(per_namespace_labels=True)

    assert get_metrics() is configured
    assert configured.per_namespace_labels


@pytest.mark.slow
def test_the_exposition_passes_promtools_metric_lint() -> None:
    metrics = OperatorMetrics(per_namespace_labels=True, per_object_metrics=True)
    metrics.observe_reconcile("wait", 0.1, 30.0, namespace="ops")
    metrics.observe_step("waitFor", "waiting", 0.1, namespace="ops")
    metrics.observe_status_write(conflict=True)
    metrics.observe_api_error("watch", None)
    metrics.track_pipeline("u1", namespace="ops", name="p1", ready="False", reason="Waiting")

    linted = promtool("check", "metrics", stdin=metrics.render())

    assert linted.returncode == 0, linted.stdout + linted.stderr
