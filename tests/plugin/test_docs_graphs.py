"""docs/graphs.md shows the Mermaid graph of every example, as `kubesteps graph` draws it
today (KUBESTEPS_UPDATE_SNAPSHOTS=1 rewrites the page)."""

from __future__ import annotations

import yaml

from kubesteps.views import graph_of, mermaid

from .conftest import ROOT, UPDATE

PAGE = ROOT / "docs" / "graphs.md"
INTRO_END = "to be what the command prints today.\n"


def expected(intro: str) -> str:
    parts = [intro]
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        pipelines = [
            d
            for d in yaml.safe_load_all(path.read_text())
            if isinstance(d, dict) and d.get("kind") == "Pipeline"
        ]
        if not pipelines:
            continue
        summary = path.read_text().splitlines()[0].lstrip("# ").removeprefix(f"{path.name}:")
        parts.append(
            f"## {path.name}\n\n{summary.strip()}\n\n```mermaid\n"
            f"{mermaid(graph_of(pipelines[0]))}```\n"
        )
    return "\n".join(parts)


def test_the_page_shows_the_graph_of_every_example() -> None:
    text = PAGE.read_text()
    intro = text[: text.index(INTRO_END) + len(INTRO_END)]
    if UPDATE:
        PAGE.write_text(expected(intro))
    assert text == expected(intro), "docs/graphs.md is stale: KUBESTEPS_UPDATE_SNAPSHOTS=1"
