"""The PromQL metric-name extraction that the rule and dashboard checks rely on."""

from __future__ import annotations

import pytest

from .promql import exported_series, metric_names


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("up", {"up"}),
        ('absent(kubesteps_build_info{job=~".*kubesteps.*"})', {"kubesteps_build_info"}),
        (
            "histogram_quantile(0.95, sum by (le, action) "
            '(rate(kubesteps_step_duration_seconds_bucket{job=~"$job"}[$__rate_interval])))',
            {"kubesteps_step_duration_seconds_bucket"},
        ),
        (
            'sum without (pod) (rate(a_total{outcome=~"failed|error"}[5m] offset 1h))\n'
            "/ on (job) group_left sum(rate(b_total[5m])) > bool 0.1 and c",
            {"a_total", "b_total", "c"},
        ),
        ("max_over_time(x[1h:5m]) * 1e3 + count(y) unless z", {"x", "y", "z"}),
        (
            'label_values(kubesteps_build_info{namespace="$namespace"}, job)',
            {"kubesteps_build_info"},
        ),
        ("vector(1) or on() vector(0)", set()),
    ],
)
def test_metric_names_are_found_and_everything_else_is_ignored(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_histograms_export_bucket_sum_and_count_series() -> None:
    series = exported_series()

    assert series["kubesteps_step_duration_seconds_bucket"] == "histogram"
    assert series["kubesteps_step_duration_seconds_count"] == "histogram"
    assert series["kubesteps_reconciles_total"] == "counter"
    assert "kubesteps_step_duration_seconds" not in series
