"""Tracing turns on only when OTEL_* variables ask, and then spans reach an OTLP receiver."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from opentelemetry.trace import Status, StatusCode

from kubesteps.telemetry.redaction import MARK, redactor
from kubesteps.telemetry.tracing import (
    DEFAULT_SERVICE_NAME,
    TracingConfig,
    build_tracer_provider,
    tracing_config_from_env,
)

from .otlp_receiver import OtlpReceiver, ReceivedSpan, span_tree

pytestmark = pytest.mark.usefixtures("clean_otel_env")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"OTEL_SERVICE_NAME": "x", "OTEL_TRACES_SAMPLER": "always_on"}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}, TracingConfig("grpc")),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4317"}, TracingConfig("grpc")),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            },
            TracingConfig("http/protobuf"),
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
            },
            TracingConfig("grpc"),
        ),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, TracingConfig("grpc")),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_TRACES_EXPORTER": "none"}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_SDK_DISABLED": "TRUE"}, None),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_SDK_DISABLED": "false"},
            TracingConfig("grpc"),
        ),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": " "}, None),
    ],
)
def test_tracing_is_on_only_when_the_environment_asks_for_an_otlp_exporter(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: TracingConfig | None
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert tracing_config_from_env() == expected


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"OTEL_TRACES_EXPORTER": "zipkin"},
            "OTEL_TRACES_EXPORTER='zipkin': unsupported exporter 'zipkin'; kubesteps supports otlp",
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json",
            },
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL='http/json': unsupported OTLP protocol; "
            "kubesteps supports grpc or http/protobuf",
        ),
    ],
)
def test_an_unsupported_exporter_setting_is_an_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(")):
        tracing_config_from_env()


def _emit_reconcile_tree(receiver: OtlpReceiver) -> list[ReceivedSpan]:
    """Send a reconcile span with a failing step span under it, then a second root span;
    return what arrived."""
    provider = build_tracer_provider()
    assert provider is not None
    tracer = provider.get_tracer("kubesteps.test")
    with (
        tracer.start_as_current_span("reconcile", attributes={"kubesteps.pipeline": "ns/p"}),
        tracer.start_as_current_span("step") as step,
    ):
        step.set_attribute("kubesteps.step.attempt", 2)
        step.set_status(Status(StatusCode.ERROR, "boom"))
    with tracer.start_as_current_span("status-patch"):
        pass
    provider.force_flush()
    provider.shutdown()
    return receiver.spans()


@pytest.mark.parametrize(("protocol", "transport"), [("grpc", "grpc"), ("http/protobuf", "http")])
def test_spans_reach_the_receiver_as_a_tree_with_the_default_service_name(
    monkeypatch: pytest.MonkeyPatch, receiver: OtlpReceiver, protocol: str, transport: str
) -> None:
    endpoint = receiver.grpc_endpoint if transport == "grpc" else receiver.http_endpoint
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")

    received = _emit_reconcile_tree(receiver)
    spans = {span.name: span for span in received}

    assert span_tree(received) == ["reconcile", "  step", "status-patch"]
    reconcile, step = spans["reconcile"], spans["step"]
    assert reconcile.parent_span_id == ""
    assert step.parent_span_id == reconcile.span_id
    assert step.trace_id == reconcile.trace_id
    assert reconcile.attributes == {"kubesteps.pipeline": "ns/p"}
    assert step.attributes == {"kubesteps.step.attempt": 2}
    assert (step.status, step.status_message) == ("ERROR", "boom")
    assert step.transport == transport
    assert step.scope == "kubesteps.test"
    assert step.resource["service.name"] == DEFAULT_SERVICE_NAME
    assert step.resource["service.version"] == "0.1.0"
    assert step.resource["deployment.environment"] == "test"


def test_spans_leave_with_every_registered_credential_redacted(
    monkeypatch: pytest.MonkeyPatch, receiver: OtlpReceiver
) -> None:
    secret = "span-secret-77Qx"
    redactor().register(secret)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.grpc_endpoint)
    provider = build_tracer_provider()
    assert provider is not None
    tracer = provider.get_tracer("kubesteps.test")

    with tracer.start_as_current_span(
        "step", attributes={"kubesteps.url": f"x?t={secret}", "kubesteps.tags": (secret, "a")}
    ) as span:
        span.record_exception(RuntimeError(f"the server echoed Bearer {secret}"))
        span.set_status(Status(StatusCode.ERROR, f"failed: {secret}"))
    provider.force_flush()
    provider.shutdown()

    (step,) = receiver.spans()
    assert step.attributes == {"kubesteps.url": f"x?t={MARK}", "kubesteps.tags": [MARK, "a"]}
    assert step.status_message == f"failed: {MARK}"
    (exception,) = step.event_attributes
    assert exception["exception.message"] == f"the server echoed Bearer {MARK}"
    assert secret not in str(exception)


def test_the_traces_endpoint_variable_takes_a_full_http_url(
    monkeypatch: pytest.MonkeyPatch, receiver: OtlpReceiver
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9/unused")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.http_endpoint + "/v1/traces")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf")

    assert span_tree(_emit_reconcile_tree(receiver)) == ["reconcile", "  step", "status-patch"]


@pytest.mark.parametrize("variable", ["OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"])
def test_a_service_name_from_the_environment_wins_over_the_default(
    monkeypatch: pytest.MonkeyPatch, receiver: OtlpReceiver, variable: str
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.grpc_endpoint)
    value = "ops-pipelines" if variable == "OTEL_SERVICE_NAME" else "service.name=ops-pipelines"
    monkeypatch.setenv(variable, value)

    spans = _emit_reconcile_tree(receiver)

    assert {span.resource["service.name"] for span in spans} == {"ops-pipelines"}


def test_the_sampler_variable_is_honoured(
    monkeypatch: pytest.MonkeyPatch, receiver: OtlpReceiver
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.grpc_endpoint)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")

    assert _emit_reconcile_tree(receiver) == []


def _run_python(script: str, env: dict[str, str]) -> str:
    """Run a script in a fresh interpreter: the global tracer provider can be set only once."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.slow
def test_without_otel_variables_configure_tracing_is_off_and_loads_no_sdk() -> None:
    loaded = _run_python(
        """
        import sys
        from opentelemetry import trace
        from kubesteps.telemetry.tracing import configure_tracing
        assert configure_tracing() is False
        assert type(trace.get_tracer_provider()).__name__ == "ProxyTracerProvider"
        prefixes = ("opentelemetry.sdk", "opentelemetry.exporter", "grpc", "google.protobuf")
        print(",".join(sorted(m for m in sys.modules if m.startswith(prefixes))))
        """,
        env={},
    )
    assert loaded == ""


@pytest.mark.slow
def test_configure_tracing_installs_one_global_provider_and_shutdown_flushes_it(
    receiver: OtlpReceiver,
) -> None:
    output = _run_python(
        """
        from opentelemetry import trace
        from kubesteps.telemetry.tracing import configure_tracing, shutdown_tracing
        first = configure_tracing()
        provider = trace.get_tracer_provider()
        again = configure_tracing("another-name")
        same = trace.get_tracer_provider() is provider
        with trace.get_tracer("kubesteps.test").start_as_current_span("reconcile"):
            with trace.get_tracer("kubesteps.test").start_as_current_span("step"):
                pass
        shutdown_tracing()
        print(first, again, same, type(provider).__module__, configure_tracing())
        """,
        env={
            # No protocol variable: gRPC is the default.
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.grpc_endpoint,
            # Long enough that only shutdown_tracing() can have sent the spans.
            "OTEL_BSP_SCHEDULE_DELAY": "600000",
        },
    )

    assert output == "True True True opentelemetry.sdk.trace False"
    spans = {span.name: span for span in receiver.spans()}
    assert sorted(spans) == ["reconcile", "step"]
    assert spans["step"].parent_span_id == spans["reconcile"].span_id
    assert spans["step"].resource["service.name"] == DEFAULT_SERVICE_NAME
