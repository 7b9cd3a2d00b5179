"""The registry: one runtime per parameter model, validation of the rendered `with`, and
bounded outputs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from kubesteps.actions.registry import (
    OUTPUTS_CAP,
    TRUNCATED_KEY,
    bounded_outputs,
    builtin_actions,
    get_action,
)
from kubesteps.engine import OutcomeKind, PermanentError
from kubesteps.pipeline.params import ACTION_PARAMS

from .conftest import RunFactory


def test_every_parameter_model_has_an_action_of_that_name() -> None:
    actions = builtin_actions()
    assert sorted(actions) == sorted(ACTION_PARAMS)
    for name, action in actions.items():
        assert action.name == name
        assert action.params is ACTION_PARAMS[name]


def test_an_unknown_action_names_the_known_ones() -> None:
    with pytest.raises(PermanentError, match="unknown action 'sleep'; known actions: apply, "):
        get_action("sleep")


async def test_invalid_parameters_fail_the_step_naming_each_field(make_run: RunFactory) -> None:
    run = make_run("http", {"url": "ftp://example.com", "retries": 3})
    outcome = await run.once()
    assert outcome.kind is OutcomeKind.FAILED
    message = run.state.message
    assert message.startswith("invalid parameters for action 'http'")
    assert "with.url: must be an http:// or https:// URL" in message
    assert "with.retries" in message
    assert run.state.attempts == 1


async def test_a_missing_required_parameter_is_named(make_run: RunFactory) -> None:
    run = make_run("job", {})
    assert (await run.once()).kind is OutcomeKind.FAILED
    assert "with.image" in run.state.message


def test_small_outputs_are_kept_as_they_are() -> None:
    outputs = {"status": 200, "body": {"a": [1, 2]}, "ok": True}
    assert bounded_outputs("s", outputs) == outputs


def test_datetimes_in_outputs_become_iso_strings() -> None:
    when = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    assert bounded_outputs("s", {"at": when}) == {"at": "2025-01-01T12:00:00+00:00"}


def test_outputs_that_are_not_json_fail_the_step() -> None:
    with pytest.raises(PermanentError, match="outputs of step 's' are not JSON values"):
        bounded_outputs("s", {"handle": object()})


def test_values_over_the_cap_are_replaced_by_a_marker_and_listed() -> None:
    outputs: dict[str, Any] = {
        "small": "x",
        "huge": "y" * (OUTPUTS_CAP * 2),
        "after": 1,
    }
    bounded = bounded_outputs("s", outputs)
    assert bounded is not None
    assert bounded["small"] == "x"
    assert bounded["after"] == 1
    assert bounded["huge"].startswith("<truncated: ")
    assert bounded[TRUNCATED_KEY] == ["huge"]
    assert len(json.dumps(bounded, separators=(",", ":")).encode()) <= OUTPUTS_CAP


def test_many_medium_values_are_kept_while_they_fit() -> None:
    outputs = {f"k{i}": "z" * 1000 for i in range(20)}
    bounded = bounded_outputs("s", outputs, cap=4096)
    assert bounded is not None
    kept = [key for key, value in bounded.items() if value == "z" * 1000]
    assert kept == ["k0", "k1", "k2"]
    assert bounded[TRUNCATED_KEY] == [f"k{i}" for i in range(3, 20)]
    assert len(json.dumps(bounded, separators=(",", ":")).encode()) <= 4096


def test_size_is_counted_in_utf8_as_stored_not_in_escapes() -> None:
    outputs = {"text": "é" * 3000}  # 6000 bytes of UTF-8; 18000 as \u escapes
    assert bounded_outputs("s", outputs) == outputs
