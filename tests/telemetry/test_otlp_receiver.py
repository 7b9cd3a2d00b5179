"""The test receiver itself: it refuses what a collector would refuse and takes gzip."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from kubesteps.telemetry.tracing import build_tracer_provider

from .otlp_receiver import OtlpReceiver


@pytest.mark.parametrize(
    ("path", "content_type", "code"),
    [("/v1/metrics", "application/x-protobuf", 404), ("/v1/traces", "application/json", 415)],
)
def test_the_http_receiver_answers_only_protobuf_traces(
    receiver: OtlpReceiver, path: str, content_type: str, code: int
) -> None:
    request = urllib.request.Request(
        receiver.http_endpoint + path, data=b"{}", headers={"Content-Type": content_type}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == code
    assert receiver.spans() == []


@pytest.mark.usefixtures("clean_otel_env")
def test_the_http_receiver_takes_gzip_compressed_exports(
    monkeypatch: pytest.MonkeyPatch, receiver: OtlpReceiver
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.http_endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
    provider = build_tracer_provider()
    assert provider is not None
    with provider.get_tracer("kubesteps.test").start_as_current_span("compressed"):
        pass
    provider.shutdown()

    assert [(span.name, span.transport) for span in receiver.spans()] == [("compressed", "http")]
