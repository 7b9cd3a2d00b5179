"""Tracing: pass a tracer (or configure a global SDK provider); no provider, no spans.

A step gets a span when it suspends (waits on I/O), fails, waits, retries or takes longer
than ``span_threshold``; quick successes are counted on the run's span instead."""

import asyncio

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from kubesteps import SimpleStep, StepsEngine, always

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))


async def fetch() -> None:
    await asyncio.sleep(0.01)  # suspends, as a step waiting on I/O does


steps = [
    SimpleStep(name="fetch", run=fetch),
    SimpleStep(name="render", run=lambda: None),
    SimpleStep(name="skipped", run=lambda: None, predicates=[always(False)]),
]


async def main() -> None:
    engine = StepsEngine(steps, tracer=provider.get_tracer("shop"), name="shop")
    await engine.run()
    spans = {span.name: span for span in exporter.get_finished_spans()}
    # `render` was quick (counted on the run's span); skipped steps get no span.
    assert sorted(spans) == ["fetch", "shop run"]
    assert dict(spans["shop run"].attributes or {})["kubesteps.steps.unspanned"] == 1
    attributes = dict(spans["fetch"].attributes or {})
    assert attributes["kubesteps.step.kind"] == "simple"
    print(attributes)


asyncio.run(main())
