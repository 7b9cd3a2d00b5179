"""CEL in Pipelines: compile checks, predicates, lists, templates and value conversion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubesteps.pipeline import cel

PIPELINE: dict[str, Any] = {
    "metadata": {"name": "demo", "labels": {"team": "platform"}},
    "spec": {"enabled": True, "targets": ["a", "b"], "replicas": 3},
}
VARIABLES: dict[str, Any] = {
    "self": PIPELINE,
    "steps": {"fetch": {"phase": "Succeeded", "outputs": {"count": 2}, "attempts": 1}},
}


def test_a_syntax_error_says_where() -> None:
    with pytest.raises(cel.CelSyntaxError) as raised:
        cel.check_expression("self.spec.enabled ==", variables=["self"], path="spec.steps[0]")

    assert raised.value.column == 19
    assert raised.value.path == "spec.steps[0]"
    assert "line 1, column 19: the expression ends too early" in raised.value.message


def test_an_unexpected_character_is_named() -> None:
    with pytest.raises(cel.CelSyntaxError, match="unexpected character '#'"):
        cel.compile_expression("a # b")


def test_an_unknown_variable_is_refused_listing_the_available_ones() -> None:
    with pytest.raises(cel.CelSyntaxError, match="unknown variable 'item'; available here: self"):
        cel.check_expression("item.name == 'x'", variables=["self", "steps"], path="p")


def test_variables_bound_by_macros_are_not_unknown() -> None:
    compiled = cel.check_expression(
        "self.spec.targets.all(t, t != '') && self.spec.targets.map(x, x + '!').size() == 2",
        variables=["self"],
        path="p",
    )

    assert compiled.free_variables == {"self"}


def test_an_unknown_function_is_refused() -> None:
    with pytest.raises(cel.CelSyntaxError, match="unknown function 'lenght'"):
        cel.check_expression("lenght(self.spec.targets) > 0", variables=["self"], path="p")


def test_step_references_are_collected_in_both_spellings() -> None:
    compiled = cel.compile_expression("steps.fetch.phase == steps['fan-out-1'].phase")

    assert compiled.step_references == {"fetch", "fan-out-1"}


def test_each_distinct_expression_is_compiled_once() -> None:
    assert cel.compile_expression("1 + 2 == 3") is cel.compile_expression("1 + 2 == 3")


def test_a_predicate_is_evaluated_against_the_pipeline_and_step_states() -> None:
    assert cel.evaluate_predicate("self.spec.enabled && steps.fetch.outputs.count == 2", VARIABLES)
    assert not cel.evaluate_predicate("self.spec.replicas > 5", VARIABLES)


def test_a_predicate_that_is_not_a_boolean_is_an_error_naming_it() -> None:
    with pytest.raises(cel.CelEvaluationError) as raised:
        cel.evaluate_predicate("self.spec.replicas", VARIABLES, path="spec.steps[1].when[0]")

    assert raised.value.expression == "self.spec.replicas"
    assert raised.value.path == "spec.steps[1].when[0]"
    assert "must give true or false, got int 3" in str(raised.value)


def test_an_evaluation_error_carries_expression_and_path_without_noise() -> None:
    with pytest.raises(cel.CelEvaluationError) as raised:
        cel.evaluate("self.spec.missing.field", VARIABLES, path="spec.steps[0].with.url")

    assert raised.value.expression == "self.spec.missing.field"
    assert raised.value.path == "spec.steps[0].with.url"
    assert "no such member" in raised.value.message
    assert "activation" not in str(raised.value)


def test_an_undeclared_variable_at_run_time_is_a_short_error() -> None:
    with pytest.raises(cel.CelEvaluationError) as raised:
        cel.evaluate("item + 1", VARIABLES)

    assert raised.value.message == "undeclared reference to 'item'"


def test_a_list_expression_must_give_a_list() -> None:
    assert cel.evaluate_list("self.spec.targets", VARIABLES) == ["a", "b"]
    with pytest.raises(cel.CelEvaluationError, match="must give a list, got string"):
        cel.evaluate_list("self.metadata.name", VARIABLES)


def test_a_whole_template_keeps_the_type_of_its_value() -> None:
    assert cel.render("${ self.spec.replicas }", VARIABLES) == 3
    assert cel.render("${ self.spec.targets }", VARIABLES) == ["a", "b"]
    assert cel.render("${ self.spec.enabled }", VARIABLES) is True
    assert cel.render("${ {'n': 1.5} }", VARIABLES) == {"n": 1.5}


def test_a_template_inside_text_is_interpolated() -> None:
    rendered = cel.render(
        "${ self.metadata.name } has ${ self.spec.replicas } replicas: ${ self.spec.targets }",
        VARIABLES,
    )

    assert rendered == 'demo has 3 replicas: ["a","b"]'


def test_templates_are_rendered_recursively() -> None:
    params = {
        "url": "https://${ self.metadata.labels.team }.example.com",
        "body": {"targets": "${ self.spec.targets }", "static": [1, "${ 1 + 1 }"]},
        "count": 7,
    }

    assert cel.render(params, VARIABLES) == {
        "url": "https://platform.example.com",
        "body": {"targets": ["a", "b"], "static": [1, 2]},
        "count": 7,
    }


def test_braces_and_quotes_inside_a_template_do_not_end_it() -> None:
    assert cel.render("${ {'k': '}'}['k'] }", VARIABLES) == "}"


def test_a_doubled_dollar_is_a_literal_template_opening() -> None:
    assert cel.render("cost: $${ not a template }", VARIABLES) == "cost: ${ not a template }"
    assert not cel.has_template("$${ x }")


def test_an_unterminated_template_is_an_error() -> None:
    with pytest.raises(cel.TemplateError, match="position 4 has no closing"):
        cel.render("abc ${ self.spec", VARIABLES, path="spec.steps[0].with.url")


def test_a_render_error_names_the_nested_field() -> None:
    with pytest.raises(cel.CelEvaluationError) as raised:
        cel.render({"a": [{"b": "${ nope }"}]}, VARIABLES, path="spec.steps[0].with")

    assert raised.value.path == "spec.steps[0].with.a[0].b"


def test_template_expressions_are_found_with_their_place() -> None:
    found = list(cel.template_expressions({"a": ["x ${ one } ${ two }"], "b": "${three}"}))

    assert found == [(("a", 0), "one"), (("a", 0), "two"), (("b",), "three")]


def test_timestamps_and_durations_come_back_as_yaml_strings() -> None:
    assert cel.evaluate("timestamp('2026-01-02T03:04:05Z')", {}) == "2026-01-02T03:04:05Z"
    assert cel.evaluate("duration('90s')", {}) == "1m30s"


def test_python_datetimes_go_into_cel() -> None:
    moment = datetime(2026, 1, 1, tzinfo=UTC)

    assert cel.evaluate_predicate("t < timestamp('2027-01-01T00:00:00Z')", {"t": moment})
    assert cel.evaluate_predicate("d > duration('1s')", {"d": timedelta(minutes=1)})


def test_a_value_with_no_yaml_form_is_an_error() -> None:
    with pytest.raises(cel.CelEvaluationError, match="has no YAML form"):
        cel.evaluate("b'abc'", {})


def test_an_unsupported_python_value_is_refused() -> None:
    with pytest.raises(TypeError, match="cannot pass a set to CEL"):
        cel.to_cel({1, 2})


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
    back = cel.to_python(cel.to_cel(value))

    assert back == value
    assert type(back) is type(value)
