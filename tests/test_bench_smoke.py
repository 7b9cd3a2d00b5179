"""The benchmarks' accounting on small inputs: counts, never timings."""

from __future__ import annotations

from pathlib import Path

from bench.bench_operator import measure_pass
from bench.bench_scale import counting_status_bytes
from bench.bench_status import MergeOnly, one_run
from bench.bench_validate import big_file
from click.testing import CliRunner

from kubesteps.cli import main
from kubesteps.kube.client import Credentials, KubeClient
from kubesteps.pipeline.crd import crd
from kubesteps.testing import Emulator

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


def test_the_validate_benchmarks_file_is_valid(tmp_path: Path) -> None:
    """Its Pipelines (the examples, renamed and grown) all validate, with the templates
    they use in the same file: a benchmark of a failing validate measures nothing. (40 of
    them in 100 KB here: every example twice, grown the same way.)"""
    path = tmp_path / "big.yaml"
    path.write_text(big_file(40, 100_000))

    result = CliRunner().invoke(main, ["validate", str(path)])

    assert result.exit_code == 0, result.output[-2000:]
    lines = result.output.splitlines()
    assert (
        sum(1 for line in lines if line.startswith("OK ") and "PipelineTemplate/" not in line) == 40
    )


async def test_the_status_benchmark_counts_a_smaller_write_after_the_first() -> None:
    emulator = Emulator()
    emulator.register_crd(crd())
    with counting_status_bytes(emulator) as sizes:
        async with (
            emulator.serving() as url,
            KubeClient(Credentials(server=url, insecure=True)) as client,
        ):
            await one_run(client, "merge", 4, MergeOnly)
            merged = list(sizes)
            sizes.clear()
            await one_run(client, "now", 4, lambda writer: writer)

    assert len(merged) == len(sizes) == 4
    assert sizes[0] - merged[0] in (0, 1, -1)  # the first write: the whole status, either way
    assert all(now < before for now, before in zip(sizes[1:], merged[1:], strict=True))
