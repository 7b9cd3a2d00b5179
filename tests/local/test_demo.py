"""`make demo` runs `kubesteps demo examples`: it must pass on a fresh machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubesteps.local.demo import load_examples, run_demo

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.slow  # waits seconds of real time (backoffs, leases, whole runs)
async def test_the_demo_settles_every_example_it_runs() -> None:
    lines: list[str] = []

    ready = await run_demo(EXAMPLES, budget=60, echo=lines.append)

    output = "\n".join(lines)
    assert ready, output
    assert "approving approve-release" in output
    table = output.split("\n\n")[-1].splitlines()
    assert table[0].split()[:5] == ["NAME", "READY", "REASON", "RUN", "STEP"]
    names = {row.split()[0] for row in table[1:]}
    assert names == {
        "apply-and-wait",
        "release",
        "hello",
        "parallel",
        "rollout",
        "tidy",
        "delay-until",
        "build-graph",
        "deploy-web",
        "deploy-api",
        "release-train",
        "nightly",
    }
    assert all(row.split()[1] == "True" for row in table[1:])
    assert all(row.split()[3] == "1" for row in table[1:])


def test_examples_marked_skip_are_left_out_with_their_reason() -> None:
    lines: list[str] = []

    examples = load_examples(EXAMPLES, lines.append)

    assert {e.path.name for e in examples}.isdisjoint({"job.yaml", "http.yaml"})
    assert any(
        line.startswith("skipping job.yaml: Jobs run only on a real cluster") for line in lines
    )
