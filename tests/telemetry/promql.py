"""What the alert rules and the dashboard may query: the series the operator exports, and
the metric names a PromQL expression reads; and promtool, which checks both ends."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from kubesteps.telemetry.metrics import OperatorMetrics

# Series every Prometheus has without the operator exporting them.
PROMETHEUS_SERIES = frozenset({"up"})

_KEYWORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "offset",
        "bool",
        "inf",
        "nan",
    }
)
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
# Grafana's `label_values(metric, label)` template query: the label is not a metric.
_LABEL_VALUES = re.compile(r"\blabel_values\s*\(([^(),]*),\s*\w+\s*\)")
_VARIABLES = re.compile(r"\$\{[^}]*\}|\$\w+")
_IDENTIFIER = re.compile(r"(?<![\w.:])([A-Za-z_:][\w:]*)(\s*\()?")


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (also one holding Grafana `$variables`).

    Label names and values, durations, numbers, keywords and function names are left out.
    """
    text = _STRINGS.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _LABEL_LISTS.sub(" ", text)
    text = _LABEL_VALUES.sub(r"(\1)", text)
    text = _VARIABLES.sub(" ", text)
    return {
        match.group(1)
        for match in _IDENTIFIER.finditer(text)
        if match.group(2) is None and match.group(1).lower() not in _KEYWORDS
    }


def exported_series(metrics: OperatorMetrics | None = None) -> dict[str, str]:
    """Every series name the operator can export, mapped to its metric type.

    Histograms contribute their `_bucket`, `_sum` and `_count` series. The default uses
    every opt-in, so that opt-in metrics count as exported.
    """
    if metrics is None:
        metrics = OperatorMetrics(per_namespace_labels=True, per_object_metrics=True)
    series: dict[str, str] = {}
    for family in metrics.registry.collect():
        if family.type == "counter":
            series[family.name + "_total"] = "counter"
        elif family.type == "histogram":
            for suffix in ("_bucket", "_sum", "_count"):
                series[family.name + suffix] = "histogram"
        else:
            series[family.name] = family.type
    return series


def promtool(
    *args: str, cwd: Path | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """Run promtool; without it the test fails (not skips): CI installs it."""
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool is not installed; it comes with Debian's prometheus package: "
            "apt-get update && apt-get install -y --no-install-recommends prometheus "
            "(make test installs it as root: make promtool)"
        )
    return subprocess.run(
        [path, *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
