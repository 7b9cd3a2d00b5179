"""Tracing: a span per run, per group and per step that suspends, fails, waits, retries or
takes long; quick successes are counted on the run's span; no spans without a provider."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from kubesteps import (
    GroupedSteps,
    RetryPolicy,
    SimpleStep,
    StepsEngine,
    WaitError,
    always,
)

from .conftest import EngineFactory


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exported = InMemorySpanExporter()
    yield exported
    exported.clear()


@pytest.fixture
def tracer(exporter: InMemorySpanExporter) -> trace.Tracer:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("test")


def by_name(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {span.name: span for span in exporter.get_finished_spans()}


async def suspends() -> None:
    await asyncio.sleep(0)


async def test_a_span_per_run_group_and_suspending_step_quick_ones_counted(
    make_engine: EngineFactory, tracer: trace.Tracer, exporter: InMemorySpanExporter
) -> None:
    steps = [
        SimpleStep(name="a", run=suspends),
        SimpleStep(name="quick", run=list),
        SimpleStep(name="skipped", run=list, predicates=[always(False)]),
        GroupedSteps(
            name="g", steps=[SimpleStep(name="b", run=suspends), SimpleStep(name="c", run=list)]
        ),
    ]
    await make_engine(steps, tracer=tracer, name="demo").run()
    spans = by_name(exporter)
    assert sorted(spans) == ["a", "b", "demo run", "g"]
    run_span = spans["demo run"]
    assert run_span.attributes is not None
    assert run_span.attributes["kubesteps.outcome"] == "done"
    assert run_span.attributes["kubesteps.steps.unspanned"] == 2  # quick and c
    assert spans["b"].parent is not None
    assert spans["b"].parent.span_id == spans["g"].context.span_id
    assert spans["a"].parent is not None
    assert spans["a"].parent.span_id == run_span.context.span_id


async def test_a_suspending_step_span_starts_with_the_step_and_is_current_in_it(
    make_engine: EngineFactory, tracer: trace.Tracer, exporter: InMemorySpanExporter
) -> None:
    before = time.time_ns()

    async def run() -> None:
        await asyncio.sleep(0.02)
        with tracer.start_as_current_span("inner"):
            pass

    await make_engine([SimpleStep(name="a", run=run)], tracer=tracer).run()
    spans = by_name(exporter)
    step = spans["a"]
    assert step.start_time is not None
    assert step.end_time is not None
    assert before <= step.start_time
    assert step.end_time - step.start_time >= 15_000_000  # from the step's real start
    assert spans["inner"].parent is not None
    assert spans["inner"].parent.span_id == step.context.span_id


async def test_a_quick_step_longer_than_the_threshold_gets_a_span_with_its_real_times(
    make_engine: EngineFactory, tracer: trace.Tracer, exporter: InMemorySpanExporter
) -> None:
    def busy() -> None:
        time.sleep(0.02)  # blocks without suspending, as a CPU-bound step would

    await make_engine(
        [SimpleStep(name="slow", run=busy), SimpleStep(name="fast", run=list)],
        tracer=tracer,
        span_threshold=timedelta(milliseconds=10),
    ).run()
    spans = by_name(exporter)
    assert sorted(spans) == ["slow", "steps run"]
    slow = spans["slow"]
    assert slow.start_time is not None
    assert slow.end_time is not None
    assert slow.end_time - slow.start_time >= 15_000_000


async def test_a_zero_threshold_gives_every_step_a_span(
    make_engine: EngineFactory, tracer: trace.Tracer, exporter: InMemorySpanExporter
) -> None:
    await make_engine(
        [SimpleStep(name="a", run=list), SimpleStep(name="b", run=list)],
        tracer=tracer,
        span_threshold=timedelta(0),
    ).run()
    assert sorted(by_name(exporter)) == ["a", "b", "steps run"]


async def test_step_spans_carry_name_kind_and_outcome(
    make_engine: EngineFactory, tracer: trace.Tracer, exporter: InMemorySpanExporter
) -> None:
    await make_engine([SimpleStep(name="a", run=suspends)], tracer=tracer).run()
    span = by_name(exporter)["a"]
    assert span.attributes is not None
    assert dict(span.attributes) == {
        "kubesteps.step": "a",
        "kubesteps.step.kind": "simple",
        "kubesteps.step.outcome": "ok",
        "kubesteps.step.attempt": 1,
    }
    assert span.status.status_code is StatusCode.OK


async def test_a_failing_step_records_the_error_with_status_error(
    make_engine: EngineFactory, tracer: trace.Tracer, exporter: InMemorySpanExporter
) -> None:
    def run() -> None:
        raise RuntimeError("boom")

    await make_engine(
        [SimpleStep(name="a", run=run, retry=RetryPolicy(limit=1))], tracer=tracer
    ).run()
    spans = by_name(exporter)
    span = spans["a"]
    assert span.status.status_code is StatusCode.ERROR
    assert [event.name for event in span.events] == ["exception"]
    assert spans["steps run"].attributes is not None
    assert spans["steps run"].attributes["kubesteps.outcome"] == "failed"
    assert spans["steps run"].attributes["kubesteps.outcome.step"] == "a"


async def test_a_waiting_step_is_not_an_error(
    make_engine: EngineFactory, tracer: trace.Tracer, exporter: InMemorySpanExporter
) -> None:
    def run() -> None:
        raise WaitError("pods", 5)

    await make_engine([SimpleStep(name="a", run=run)], tracer=tracer).run()
    span = by_name(exporter)["a"]
    assert span.attributes is not None
    assert span.attributes["kubesteps.step.outcome"] == "wait"
    assert span.status.status_code is not StatusCode.ERROR


async def test_without_a_configured_provider_no_tracer_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Whatever another test in this process did, the global provider is the default one here.
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    monkeypatch.delenv("OTEL_PYTHON_TRACER_PROVIDER", raising=False)
    engine = StepsEngine([SimpleStep(name="a", run=list)])
    assert engine._active_tracer() is None
    seen: list[bool] = []

    def run() -> None:
        seen.append(trace.get_current_span().get_span_context().is_valid)

    await StepsEngine([SimpleStep(name="a", run=run)]).run()
    assert seen == [False]


async def test_a_globally_configured_provider_is_picked_up(
    monkeypatch: pytest.MonkeyPatch, exporter: InMemorySpanExporter
) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)
    await StepsEngine([SimpleStep(name="a", run=suspends)]).run()
    assert sorted(by_name(exporter)) == ["a", "steps run"]
