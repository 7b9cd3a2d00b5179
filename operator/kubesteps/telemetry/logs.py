"""Log output for the operator: text or JSON lines, each record tagged with the current trace.

`configure_logging` installs one handler on the root logger. A filter on that handler stamps
every record with the active span's `trace_id` and `span_id` (empty outside a span), so a
log line can be joined to its trace in the tracing backend. Another removes the credentials
the operator resolved (`kubesteps.telemetry.redaction`); it goes on every other handler of
the root logger and of kopf's loggers too.

kopf logs per-object messages with `extra={"k8s_ref": {...}, "k8s_skip": ..., "settings": ...}`;
the formatters show the reference (as `object` in JSON, as a `[namespace/name]` prefix in
text) and leave kopf's internal fields out.
"""

from __future__ import annotations

import copy
import json
import logging
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from opentelemetry import trace

from kubesteps.telemetry.redaction import RedactingFilter

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
# Set by our filter, or by kopf for its own machinery: never echoed as extra fields.
_NOT_EXTRA = frozenset({"trace_id", "span_id", "k8s_ref", "k8s_skip", "settings"})


class TraceContextFilter(logging.Filter):
    """Adds `trace_id` (32 hex digits) and `span_id` (16 hex digits) of the current span."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = format(context.trace_id, "032x")
            record.span_id = format(context.span_id, "016x")
        else:
            record.trace_id = ""
            record.span_id = ""
        return True


def _object_ref(record: logging.LogRecord) -> dict[str, Any] | None:
    ref = getattr(record, "k8s_ref", None)
    return ref if isinstance(ref, dict) else None


class TextFormatter(logging.Formatter):
    """`time level logger: [namespace/name] message trace_id=… span_id=…`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-8s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        ref = _object_ref(record)
        if ref is not None:
            namespace, name = ref.get("namespace"), ref.get("name")
            prefix = f"[{namespace}/{name}]" if namespace else f"[{name}]"
            # Other handlers format the same record: prefix a copy, not the original.
            record = copy.copy(record)
            record.message = f"{prefix} {record.message}"
        line = super().formatMessage(record)
        trace_id = getattr(record, "trace_id", "")
        if trace_id:
            line += f" trace_id={trace_id} span_id={getattr(record, 'span_id', '')}"
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, trace and span ids, the
    kopf object reference, any other `extra=` fields, and the exception text if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "trace_id": getattr(record, "trace_id", ""),
            "span_id": getattr(record, "span_id", ""),
        }
        ref = _object_ref(record)
        if ref is not None:
            entry["object"] = ref
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and key not in _NOT_EXTRA and key not in entry:
                entry[key] = value
        if record.exc_text:  # already formatted (and redacted) by a filter
            entry["exception"] = record.exc_text
        elif record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # Extras can be anything; a log line must never fail for a value JSON cannot hold.
        return json.dumps(entry, default=str, ensure_ascii=False)


class _KubestepsHandler(logging.StreamHandler[TextIO]):
    """Marks the handler this module installed, so reconfiguring replaces it."""


def configure_logging(fmt: LogFormat, level: int | str = logging.INFO) -> logging.Handler:
    """Send all logs to stderr in the given format, tagged with the current trace.

    Replaces the handler a previous call installed; leaves other handlers alone.
    """
    if fmt == "json":
        formatter: logging.Formatter = JsonFormatter()
    elif fmt == "text":
        formatter = TextFormatter()
    else:
        raise ValueError(f"log format {fmt!r} is not supported; use {' or '.join(LOG_FORMATS)}")
    handler = _KubestepsHandler()
    handler.setFormatter(formatter)
    handler.addFilter(TraceContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not isinstance(h, _KubestepsHandler)]
    root.addHandler(handler)
    root.setLevel(level)
    for logger in (root, logging.getLogger("kopf"), logging.getLogger("kopf.objects")):
        for each in logger.handlers:
            if not any(isinstance(f, RedactingFilter) for f in each.filters):
                each.addFilter(RedactingFilter())
    return handler
