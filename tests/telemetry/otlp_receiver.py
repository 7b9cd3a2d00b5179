"""A tiny OTLP trace receiver for tests: what a collector would see, over gRPC and HTTP.

Start it with `with OtlpReceiver() as receiver:`, point the standard exporter variables at
`receiver.grpc_endpoint` (protocol `grpc`, the default) or at `receiver.http_endpoint`
(`OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`), flush the tracer provider, then read
`receiver.spans()`; `span_tree(spans)` draws them as a tree. Both servers listen on
127.0.0.1 on ports the OS picks.

An export is stored before the server answers it, so once a provider's `force_flush()` or
`shutdown()` has returned, its spans are here: no waiting or polling is needed.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Status

Transport = Literal["grpc", "http"]


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as it arrived, with ids in hex (`parent_span_id` is "" for a root span)."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: Mapping[str, Any]
    status: Literal["UNSET", "OK", "ERROR"]
    status_message: str
    resource: Mapping[str, Any]
    scope: str
    transport: Transport
    start_ns: int
    end_ns: int
    events: tuple[str, ...] = field(default=())
    event_attributes: tuple[Mapping[str, Any], ...] = field(default=())


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, kind)


def _attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


_STATUS: dict[int, Literal["UNSET", "OK", "ERROR"]] = {
    Status.STATUS_CODE_UNSET: "UNSET",
    Status.STATUS_CODE_OK: "OK",
    Status.STATUS_CODE_ERROR: "ERROR",
}


def _spans(request: ExportTraceServiceRequest, transport: Transport) -> list[ReceivedSpan]:
    received = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                received.append(
                    ReceivedSpan(
                        name=span.name,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        attributes=_attributes(span.attributes),
                        status=_STATUS[span.status.code],
                        status_message=span.status.message,
                        resource=resource,
                        scope=scope_spans.scope.name,
                        transport=transport,
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        events=tuple(event.name for event in span.events),
                        event_attributes=tuple(_attributes(e.attributes) for e in span.events),
                    )
                )
    return received


def span_tree(spans: Iterable[ReceivedSpan]) -> list[str]:
    """The spans as indented lines, children under parents in start order: a whole tree
    in one readable assertion. A span whose parent was not received counts as a root."""
    spans = sorted(spans, key=lambda span: (span.start_ns, span.name))
    ids = {span.span_id for span in spans}
    children: dict[str, list[ReceivedSpan]] = {}
    for span in spans:
        parent = span.parent_span_id if span.parent_span_id in ids else ""
        children.setdefault(parent, []).append(span)

    lines: list[str] = []

    def walk(parent: str, depth: int) -> None:
        for child in children.get(parent, []):
            lines.append("  " * depth + child.name)
            walk(child.span_id, depth + 1)

    walk("", 0)
    return lines


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, store: OtlpReceiver) -> None:
        self._store = store

    def Export(
        self, request: ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> ExportTraceServiceResponse:
        self._store.add(_spans(request, "grpc"))
        return ExportTraceServiceResponse()


def _http_handler(store: OtlpReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path != "/v1/traces":
                self._answer(404, b"only /v1/traces is served", "text/plain")
                return
            if self.headers.get("Content-Type") != "application/x-protobuf":
                self._answer(415, b"send application/x-protobuf", "text/plain")
                return
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            store.add(_spans(request, "http"))
            response = ExportTraceServiceResponse().SerializeToString()
            self._answer(200, response, "application/x-protobuf")

        def _answer(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Keep test output clean: no access log on stderr."""

    return Handler


class OtlpReceiver:
    """Collects spans sent over OTLP/gRPC and OTLP/HTTP (protobuf) into one list."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans: list[ReceivedSpan] = []
        self._grpc = grpc.server(ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
            _TraceService(self), self._grpc
        )
        self._grpc_port: int = self._grpc.add_insecure_port("127.0.0.1:0")
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _http_handler(self))
        self._http_thread = threading.Thread(
            target=self._http.serve_forever, name="otlp-http-receiver", daemon=True
        )

    @property
    def grpc_endpoint(self) -> str:
        """For `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) with protocol `grpc`."""
        return f"http://127.0.0.1:{self._grpc_port}"

    @property
    def http_endpoint(self) -> str:
        """For `OTEL_EXPORTER_OTLP_ENDPOINT` with `http/protobuf`; the exporter appends the
        path. `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` needs `http_endpoint + "/v1/traces"`."""
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def add(self, spans: Iterable[ReceivedSpan]) -> None:
        with self._lock:
            self._spans.extend(spans)

    def spans(self) -> list[ReceivedSpan]:
        """Everything received so far, in arrival order."""
        with self._lock:
            return list(self._spans)

    def start(self) -> None:
        self._grpc.start()
        self._http_thread.start()

    def stop(self) -> None:
        self._grpc.stop(grace=None)
        self._http.shutdown()
        self._http.server_close()
        self._http_thread.join()

    def __enter__(self) -> OtlpReceiver:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
