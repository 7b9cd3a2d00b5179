"""Fixtures for the telemetry tests: a clean OTEL_* environment and a running OTLP receiver."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from .otlp_receiver import OtlpReceiver


@pytest.fixture
def clean_otel_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No OTEL_* variable from the developer's shell or CI leaks into a test."""
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running
