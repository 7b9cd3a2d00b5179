"""Spans leave the process redacted: an exporter wrapper that passes every string of a span
(attributes, event attributes such as a recorded exception's message and stack trace, and
the status description) through the redactor before the real exporter sends it.

Imported only when tracing is on: it needs the OpenTelemetry SDK.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Status

from kubesteps.telemetry.redaction import Redactor, redactor


class RedactingSpanExporter(SpanExporter):
    """Hands ``inner`` redacted copies of the spans it is given."""

    def __init__(self, inner: SpanExporter, redactor_: Redactor | None = None) -> None:
        self.inner = inner
        self.redactor = redactor_ or redactor()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([self._copy(span) for span in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)

    def _copy(self, span: ReadableSpan) -> ReadableSpan:
        status = span.status
        description = status.description
        return ReadableSpan(
            name=span.name,
            context=span.context,
            parent=span.parent,
            resource=span.resource,
            attributes=self._attributes(span.attributes),
            events=[
                Event(e.name, self._attributes(e.attributes), e.timestamp) for e in span.events
            ],
            links=span.links,
            kind=span.kind,
            status=Status(
                status.status_code,
                self.redactor.redact(description) if description else description,
            ),
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope,
        )

    def _attributes(self, attributes: Mapping[str, Any] | None) -> dict[str, Any] | None:
        if attributes is None:
            return None
        clean = self.redactor.redact
        return {
            key: clean(value)
            if isinstance(value, str)
            else tuple(clean(v) if isinstance(v, str) else v for v in value)
            if isinstance(value, tuple | list)
            else value
            for key, value in attributes.items()
        }
