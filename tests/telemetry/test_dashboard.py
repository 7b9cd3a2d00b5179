"""The chart's Grafana dashboard is well-formed and charts only metrics the operator exports.

No Grafana can run here, so these are the structural checks Grafana's provisioning and
panel rendering depend on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .promql import PROMETHEUS_SERIES, exported_series, metric_names

FILES = Path(__file__).resolve().parents[2] / "charts" / "kubesteps" / "files"
DASHBOARD = FILES / "grafana-dashboard.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRAFANA_VARIABLES = frozenset({"__rate_interval", "__interval", "__range"})


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded = json.loads(DASHBOARD.read_text())
    assert isinstance(loaded, dict)
    return loaded


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # a collapsed row holds its panels


def _queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable."""
    for panel in _panels(dashboard):
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r}", target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            yield f"variable {variable['name']!r}", variable["query"]["query"]


def test_the_dashboard_identifies_itself(dashboard: dict[str, Any]) -> None:
    assert dashboard["title"] == "kubesteps"
    assert dashboard["uid"] == "kubesteps-overview"
    assert dashboard["schemaVersion"] == 39


def test_the_prometheus_data_source_is_a_template_variable(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}

    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE, variable["name"]


def test_panel_ids_are_unique(dashboard: dict[str, Any]) -> None:
    ids = [panel["id"] for panel in _panels(dashboard)]

    assert len(ids) == len(set(ids))


def test_every_panel_queries_the_data_source_variable(dashboard: dict[str, Any]) -> None:
    charts = [panel for panel in _panels(dashboard) if panel["type"] != "row"]
    assert charts
    for panel in charts:
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
            assert target["expr"].strip(), panel["title"]


def test_panels_fit_the_grid_without_overlapping(dashboard: dict[str, Any]) -> None:
    boxes = []
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] < grid["x"] + grid["w"] <= 24, panel["title"]
        boxes.append((panel["title"], grid["x"], grid["y"], grid["w"], grid["h"]))
    for i, (title, x, y, w, h) in enumerate(boxes):
        for other, ox, oy, ow, oh in boxes[i + 1 :]:
            overlap = x < ox + ow and ox < x + w and y < oy + oh and oy < y + h
            assert not overlap, f"{title!r} overlaps {other!r}"


def test_queries_use_only_defined_variables(dashboard: dict[str, Any]) -> None:
    defined = {v["name"] for v in dashboard["templating"]["list"]} | GRAFANA_VARIABLES
    for where, expr in _queries(dashboard):
        used = set(re.findall(r"\$\{?(\w+)", expr))
        assert used <= defined, f"{where} uses undefined variables {used - defined}"


def test_queries_use_only_metrics_the_operator_exports(dashboard: dict[str, Any]) -> None:
    known = set(exported_series()) | PROMETHEUS_SERIES
    for where, expr in _queries(dashboard):
        used = metric_names(expr)
        assert used, f"{where} queries no metric: {expr}"
        assert used <= known, f"{where} queries unknown metrics {used - known}"


def test_every_exported_metric_is_charted(dashboard: dict[str, Any]) -> None:
    used = set().union(*(metric_names(expr) for _, expr in _queries(dashboard)))
    series = exported_series()
    # One series of a histogram (its buckets) charts the whole histogram.
    families = {
        re.sub(r"_(bucket|sum|count)$", "", name) if kind == "histogram" else name
        for name, kind in series.items()
    }
    charted = {
        re.sub(r"_(bucket|sum|count)$", "", name) if series.get(name) == "histogram" else name
        for name in used
    }

    assert families - charted == set()
