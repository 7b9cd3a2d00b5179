"""The operator benchmark's accounting on a tiny Pipeline: counts, never timings."""

from __future__ import annotations

from bench.bench_operator import measure_pass

STATUS = ("patch", "pipelines.kubesteps.dev/status")


async def test_a_pass_is_counted_with_its_status_writes_and_requests() -> None:
    figures = await measure_pass(steps=2, quiet=0.2)

    assert figures.seconds is not None, "the Pipeline never became Ready"
    assert figures.passes >= 1
    # The emulator and the operator's own metric count the same status writes.
    assert figures.status_patches == figures.status_writes_metric >= 1
    assert figures.to_ready.get(STATUS, 0) >= 1
    assert figures.startup.get(("watch", "pipelines.kubesteps.dev"), 0) >= 1
    # Every status write falls in exactly one phase: before Ready or after it.
    after = figures.after_ready.get(STATUS, 0)
    assert figures.to_ready.get(STATUS, 0) + after == figures.status_patches
