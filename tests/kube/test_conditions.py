"""Condition math: the metav1.Condition rules kubectl wait and kstatus rely on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubesteps.kube.conditions import find, set_condition

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_new_condition_gets_the_transition_time_and_generation() -> None:
    conditions: list[dict[str, Any]] = []

    changed = set_condition(
        conditions, "Ready", "False", "Waiting", "job running", generation=3, now=T0
    )

    assert changed
    assert conditions == [
        {
            "type": "Ready",
            "status": "False",
            "observedGeneration": 3,
            "lastTransitionTime": "2026-01-01T00:00:00Z",
            "reason": "Waiting",
            "message": "job running",
        }
    ]


def test_the_transition_time_stays_when_only_reason_or_message_change() -> None:
    conditions: list[dict[str, Any]] = []
    set_condition(conditions, "Ready", "False", "Waiting", "a", generation=1, now=T0)

    changed = set_condition(
        conditions, "Ready", "False", "Retrying", "b", generation=1, now=T0 + timedelta(minutes=5)
    )

    assert changed
    assert conditions[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert conditions[0]["reason"] == "Retrying"


def test_the_transition_time_moves_when_the_status_changes() -> None:
    conditions: list[dict[str, Any]] = []
    set_condition(conditions, "Ready", "False", "Waiting", "", generation=1, now=T0)

    set_condition(
        conditions, "Ready", "True", "Succeeded", "", generation=1, now=T0 + timedelta(minutes=5)
    )

    assert conditions[0]["lastTransitionTime"] == "2026-01-01T00:05:00Z"


def test_setting_the_same_condition_again_changes_nothing() -> None:
    conditions: list[dict[str, Any]] = []
    set_condition(conditions, "Ready", "True", "Succeeded", "done", generation=2, now=T0)

    changed = set_condition(
        conditions, "Ready", "True", "Succeeded", "done", generation=2, now=T0 + timedelta(hours=1)
    )

    assert not changed


def test_a_new_generation_is_a_change_even_with_the_same_status() -> None:
    conditions: list[dict[str, Any]] = []
    set_condition(conditions, "Ready", "True", "Succeeded", "", generation=1, now=T0)

    assert set_condition(conditions, "Ready", "True", "Succeeded", "", generation=2, now=T0)
    assert conditions[0]["observedGeneration"] == 2


def test_other_conditions_are_left_alone_and_order_is_kept() -> None:
    theirs = {
        "type": "External",
        "status": "True",
        "reason": "Set",
        "message": "",
        "lastTransitionTime": "2025-01-01T00:00:00Z",
    }
    conditions: list[dict[str, Any]] = [dict(theirs)]

    set_condition(conditions, "Ready", "True", "Succeeded", "", generation=1, now=T0)

    assert conditions[0] == theirs
    assert find(conditions, "Ready") is conditions[1]


@pytest.mark.parametrize("bad", ["", "has space", "-leading", "x" * 317])
def test_an_invalid_type_is_refused_with_the_rule(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid condition type"):
        set_condition([], bad, "True", "Fine", "", generation=1, now=T0)


@pytest.mark.parametrize("bad", ["", "has space", "9Lives", "dash-ed", "Trailing,"])
def test_an_invalid_reason_is_refused_with_the_rule(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid condition reason"):
        set_condition([], "Ready", "True", bad, "", generation=1, now=T0)


def test_an_invalid_status_is_refused() -> None:
    with pytest.raises(ValueError, match="True, False or Unknown"):
        set_condition([], "Ready", "Yes", "Fine", "", generation=1, now=T0)


def test_a_huge_message_is_cut_to_the_api_limit() -> None:
    conditions: list[dict[str, Any]] = []

    set_condition(conditions, "Ready", "False", "Failed", "x" * 40_000, generation=1, now=T0)

    assert len(conditions[0]["message"]) == 32768
