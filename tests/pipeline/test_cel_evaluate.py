"""CEL evaluated: predicates, lists, errors, and values converted to CEL and back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubesteps.pipeline.cel_evaluate import (
    CelEvaluationError,
    evaluate,
    evaluate_list,
    evaluate_predicate,
    to_cel,
    to_python,
)

PIPELINE: dict[str, Any] = {
    "metadata": {"name": "demo", "labels": {"team": "platform"}},
    "spec": {"enabled": True, "targets": ["a", "b"], "replicas": 3},
}
VARIABLES: dict[str, Any] = {
    "self": PIPELINE,
    "steps": {"fetch": {"phase": "Succeeded", "outputs": {"count": 2}, "attempts": 1}},
}


def test_a_predicate_is_evaluated_against_the_pipeline_and_step_states() -> None:
    assert evaluate_predicate("self.spec.enabled && steps.fetch.outputs.count == 2", VARIABLES)
    assert not evaluate_predicate("self.spec.replicas > 5", VARIABLES)


def test_a_predicate_that_is_not_a_boolean_is_an_error_naming_it() -> None:
    with pytest.raises(CelEvaluationError) as raised:
        evaluate_predicate("self.spec.replicas", VARIABLES, path="spec.steps[1].when[0]")

    assert raised.value.expression == "self.spec.replicas"
    assert raised.value.path == "spec.steps[1].when[0]"
    assert "must give true or false, got int 3" in str(raised.value)


def test_an_evaluation_error_carries_expression_and_path_without_noise() -> None:
    with pytest.raises(CelEvaluationError) as raised:
        evaluate("self.spec.missing.field", VARIABLES, path="spec.steps[0].with.url")

    assert raised.value.expression == "self.spec.missing.field"
    assert raised.value.path == "spec.steps[0].with.url"
    assert "no such member" in raised.value.message
    assert "activation" not in str(raised.value)


def test_an_undeclared_variable_at_run_time_is_a_short_error() -> None:
    with pytest.raises(CelEvaluationError) as raised:
        evaluate("item + 1", VARIABLES)

    assert raised.value.message == "undeclared reference to 'item'"


def test_a_list_expression_must_give_a_list() -> None:
    assert evaluate_list("self.spec.targets", VARIABLES) == ["a", "b"]
    with pytest.raises(CelEvaluationError, match="must give a list, got string"):
        evaluate_list("self.metadata.name", VARIABLES)


def test_timestamps_and_durations_come_back_as_yaml_strings() -> None:
    assert evaluate("timestamp('2026-01-02T03:04:05Z')", {}) == "2026-01-02T03:04:05Z"
    assert evaluate("duration('90s')", {}) == "1m30s"


def test_python_datetimes_go_into_cel() -> None:
    moment = datetime(2026, 1, 1, tzinfo=UTC)

    assert evaluate_predicate("t < timestamp('2027-01-01T00:00:00Z')", {"t": moment})
    assert evaluate_predicate("d > duration('1s')", {"d": timedelta(minutes=1)})


def test_a_value_with_no_yaml_form_is_an_error() -> None:
    with pytest.raises(CelEvaluationError, match="has no YAML form"):
        evaluate("b'abc'", {})


def test_an_unsupported_python_value_is_refused() -> None:
    with pytest.raises(TypeError, match="cannot pass a set to CEL"):
        to_cel({1, 2})


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=15,
)


@given(_json)
def test_plain_values_survive_the_trip_through_cel(value: Any) -> None:
    back = to_python(to_cel(value))

    assert back == value
    assert type(back) is type(value)
