"""Tracing: pass a tracer (or configure a global SDK provider); no provider, no spans."""

import asyncio

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from kubesteps import SimpleStep, StepsEngine, always

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))

steps = [
    SimpleStep(name="render", run=lambda: None),
    SimpleStep(name="skipped", run=lambda: None, predicates=[always(False)]),
]


async def main() -> None:
    engine = StepsEngine(steps, tracer=provider.get_tracer("shop"), name="shop")
    await engine.run()
    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert sorted(spans) == ["render", "shop run"]  # skipped steps get no span
    attributes = dict(spans["render"].attributes or {})
    assert attributes["kubesteps.step.kind"] == "simple"
    print(attributes)


asyncio.run(main())
