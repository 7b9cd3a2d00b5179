"""The chart's alert rules are valid, unit-tested by promtool, and query real metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from .promql import PROMETHEUS_SERIES, exported_series, metric_names, promtool

FILES = Path(__file__).resolve().parents[2] / "charts" / "kubesteps" / "files"
RULES = FILES / "prometheus-rules.yaml"
RULE_TESTS = FILES / "prometheus-rules_test.yaml"


def _alerts() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"] if "alert" in rule]


@pytest.mark.slow
def test_promtool_accepts_the_rules() -> None:
    checked = promtool("check", "rules", RULES.name, cwd=FILES)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.slow
def test_promtool_unit_tests_of_the_rules_pass() -> None:
    tested = promtool("test", "rules", RULE_TESTS.name, cwd=FILES)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_a_severity_a_summary_and_a_description() -> None:
    alerts = _alerts()
    assert alerts
    for alert in alerts:
        assert alert["labels"]["severity"] in {"critical", "warning", "info"}, alert["alert"]
        assert alert["annotations"]["summary"].strip(), alert["alert"]
        assert alert["annotations"]["description"].strip(), alert["alert"]


def test_every_alert_has_a_unit_test_that_fires_it_and_one_that_does_not() -> None:
    fired: set[str] = set()
    silent: set[str] = set()
    for case in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for check in case.get("alert_rule_test", []):
            (fired if check.get("exp_alerts") else silent).add(check["alertname"])

    names = {alert["alert"] for alert in _alerts()}
    assert names - fired == set(), "alerts never shown to fire"
    assert names - silent == set(), "alerts never shown to stay silent"


def test_the_rules_query_only_metrics_the_operator_exports() -> None:
    known = set(exported_series()) | PROMETHEUS_SERIES
    for alert in _alerts():
        used = metric_names(alert["expr"])
        assert used, alert["alert"]
        assert used <= known, f"{alert['alert']} queries unknown metrics: {used - known}"
