"""The rendered step tree and graph of every example, as snapshots (stable, no colour)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from kubesteps.plugin.render import describe, history_table, pipelines_table, text_of, tree
from kubesteps.views import dot, graph_of, mermaid, pipeline_view

from .conftest import ROOT, SNAPSHOTS, manifest, snapshot

EXAMPLES = sorted(path.name for path in (ROOT / "examples").glob("*.yaml"))
# The live objects' times start at 12:00:00 (recorded by `kubesteps run`, times shifted).
NOW = datetime(2026, 3, 1, 12, 10, tzinfo=UTC)
LIVE: dict[str, Any] = json.loads((SNAPSHOTS / "live-objects.json").read_text())


def stem(name: str) -> str:
    return Path(name).stem


@pytest.mark.parametrize("example", EXAMPLES)
def test_the_tree_of_each_example_before_it_runs(example: str) -> None:
    view = pipeline_view(manifest(example))
    snapshot(f"tree-{stem(example)}.txt", text_of(tree(view, NOW), width=120) + "\n")


@pytest.mark.parametrize("example", EXAMPLES)
def test_the_mermaid_graph_of_each_example(example: str) -> None:
    snapshot(f"graph-{stem(example)}.mmd", mermaid(graph_of(manifest(example))))


@pytest.mark.parametrize("example", EXAMPLES)
def test_the_dot_graph_of_each_example(example: str) -> None:
    snapshot(f"graph-{stem(example)}.dot", dot(graph_of(manifest(example))))


@pytest.mark.parametrize("name", sorted(LIVE))
def test_a_live_tree_shows_phases_attempts_durations_and_outputs(name: str) -> None:
    view = pipeline_view(LIVE[name])
    snapshot(f"live-tree-{name}.txt", text_of(tree(view, NOW), width=160) + "\n")


@pytest.mark.parametrize("name", sorted(LIVE))
def test_a_live_graph_colours_nodes_by_phase(name: str) -> None:
    snapshot(f"live-graph-{name}.mmd", mermaid(graph_of(LIVE[name])))


def test_describe_shows_the_run_the_tree_and_the_events() -> None:
    view = pipeline_view(LIVE["release"])
    snapshot("describe-release.txt", text_of(describe(view, [], NOW), width=160) + "\n")


def test_the_list_shows_run_phase_step_progress_duration_and_age() -> None:
    views = [pipeline_view(LIVE[name]) for name in sorted(LIVE)]
    text = text_of(pipelines_table(views, NOW, namespaces=False))
    lines = [line.split() for line in text.splitlines()]
    assert lines[0] == ["NAME", "RUN", "PHASE", "STEP", "PROGRESS", "DURATION", "AGE"]
    assert lines[2] == ["release", "1", "Running", "approve-release", "1/3", "10m", "10m"]
    assert lines[1] == ["parallel", "1", "Succeeded", "-", "6/6", "1s", "10m"]


def test_history_lists_the_current_run_first() -> None:
    text = text_of(history_table(pipeline_view(LIVE["tidy"]), NOW))
    assert text.splitlines()[1].split()[:4] == ["tidy-1", "Created", "Succeeded", "Succeeded"]
