"""OpenTelemetry tracing set-up, driven only by the standard `OTEL_*` environment variables.

Tracing is off unless the environment asks for it: an OTLP endpoint
(`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) or an explicit
`OTEL_TRACES_EXPORTER=otlp`. When it is off, nothing from the SDK or the exporters is even
imported and every tracer is the OpenTelemetry API's no-op tracer.

When it is on, the SDK reads the rest of the variables itself (sampler, resource
attributes, headers, timeouts, batch sizes, TLS); this module only picks the exporter for
the protocol and fills in a default service name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from opentelemetry import trace

from kubesteps._version import __version__

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

DEFAULT_SERVICE_NAME = "kubesteps-operator"

Protocol = Literal["grpc", "http/protobuf"]
PROTOCOLS: tuple[Protocol, ...] = ("grpc", "http/protobuf")
# What OpenTelemetry Python's own auto-configuration picks when no protocol variable is set
# (the specification suggests http/protobuf). Collectors take gRPC on 4317, HTTP on 4318.
DEFAULT_PROTOCOL: Protocol = "grpc"

_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_PROTOCOL_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
_EXPORTERS = ("otlp", "none")

_provider: TracerProvider | None = None
_installed = False


@dataclass(frozen=True)
class TracingConfig:
    """What the environment asks for, as far as kubesteps decides it (the SDK does the rest)."""

    protocol: Protocol


def tracing_config_from_env() -> TracingConfig | None:
    """Read the variables that switch tracing on; None means tracing stays off.

    Raises ValueError naming the variable when a value is not one kubesteps supports,
    so that a typo does not silently turn tracing off.
    """
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None

    exporters = [
        name.strip().lower()
        for name in os.environ.get("OTEL_TRACES_EXPORTER", "").split(",")
        if name.strip()
    ]
    unsupported = [name for name in exporters if name not in _EXPORTERS]
    if unsupported:
        raise ValueError(
            f"OTEL_TRACES_EXPORTER={os.environ['OTEL_TRACES_EXPORTER']!r}: unsupported "
            f"exporter {unsupported[0]!r}; kubesteps supports {' or '.join(_EXPORTERS)}"
        )
    if "none" in exporters:
        return None
    has_endpoint = any(os.environ.get(name, "").strip() for name in _ENDPOINT_VARIABLES)
    if "otlp" not in exporters and not has_endpoint:
        return None

    return TracingConfig(protocol=_protocol_from_env())


def _protocol_from_env() -> Protocol:
    for variable in _PROTOCOL_VARIABLES:
        value = os.environ.get(variable, "").strip()
        if not value:
            continue
        for protocol in PROTOCOLS:
            if value == protocol:
                return protocol
        raise ValueError(
            f"{variable}={value!r}: unsupported OTLP protocol; "
            f"kubesteps supports {' or '.join(PROTOCOLS)}"
        )
    return DEFAULT_PROTOCOL


def build_tracer_provider(
    service_name_default: str = DEFAULT_SERVICE_NAME,
) -> TracerProvider | None:
    """A new SDK provider exporting over OTLP as the environment asks, or None when off.

    The provider is not installed globally; `configure_tracing` does that. Tests use this
    directly, because the global provider can be set only once per process.
    """
    config = tracing_config_from_env()
    if config is None:
        return None

    # Imported here so that a process with tracing off never loads the SDK, gRPC or protobuf.
    from opentelemetry.sdk.resources import (
        SERVICE_NAME,
        SERVICE_VERSION,
        OTELResourceDetector,
        Resource,
    )
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

    exporter: SpanExporter
    if config.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcSpanExporter,
        )

        exporter = GrpcSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpSpanExporter,
        )

        exporter = HttpSpanExporter()

    # Explicit attributes passed to Resource.create override the environment's, so pass
    # only what OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES leave unset.
    from_env = OTELResourceDetector().detect().attributes
    defaults = {SERVICE_NAME: service_name_default, SERVICE_VERSION: __version__}
    resource = Resource.create({k: v for k, v in defaults.items() if k not in from_env})

    from kubesteps.telemetry.span_redaction import RedactingSpanExporter

    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(RedactingSpanExporter(exporter)))
    return provider


def configure_tracing(service_name_default: str = DEFAULT_SERVICE_NAME) -> bool:
    """Install the OTLP-exporting provider globally if the environment asks; return whether on.

    OpenTelemetry accepts one global provider per process, so only the first successful
    call installs one; later calls report whether that provider is still running.
    """
    global _provider, _installed
    if _installed:
        return _provider is not None
    provider = build_tracer_provider(service_name_default)
    if provider is None:
        return False
    trace.set_tracer_provider(provider)
    _provider, _installed = provider, True
    return True


def shutdown_tracing() -> None:
    """Export every finished span still buffered, then stop the exporter (once)."""
    global _provider
    provider, _provider = _provider, None
    if provider is not None:
        provider.shutdown()
