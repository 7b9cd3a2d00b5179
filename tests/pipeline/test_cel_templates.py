"""``${ }`` templates: whole and interpolated values, recursion, escapes and errors."""

from __future__ import annotations

from typing import Any

import pytest

from kubesteps.pipeline.cel_evaluate import CelEvaluationError
from kubesteps.pipeline.cel_templates import (
    TemplateError,
    has_template,
    render,
    template_expressions,
)

PIPELINE: dict[str, Any] = {
    "metadata": {"name": "demo", "labels": {"team": "platform"}},
    "spec": {"enabled": True, "targets": ["a", "b"], "replicas": 3},
}
VARIABLES: dict[str, Any] = {
    "self": PIPELINE,
    "steps": {"fetch": {"phase": "Succeeded", "outputs": {"count": 2}, "attempts": 1}},
}


def test_a_whole_template_keeps_the_type_of_its_value() -> None:
    assert render("${ self.spec.replicas }", VARIABLES) == 3
    assert render("${ self.spec.targets }", VARIABLES) == ["a", "b"]
    assert render("${ self.spec.enabled }", VARIABLES) is True
    assert render("${ {'n': 1.5} }", VARIABLES) == {"n": 1.5}


def test_a_template_inside_text_is_interpolated() -> None:
    rendered = render(
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

    assert render(params, VARIABLES) == {
        "url": "https://platform.example.com",
        "body": {"targets": ["a", "b"], "static": [1, 2]},
        "count": 7,
    }


def test_braces_and_quotes_inside_a_template_do_not_end_it() -> None:
    assert render("${ {'k': '}'}['k'] }", VARIABLES) == "}"


def test_a_doubled_dollar_is_a_literal_template_opening() -> None:
    assert render("cost: $${ not a template }", VARIABLES) == "cost: ${ not a template }"
    assert not has_template("$${ x }")


def test_an_unterminated_template_is_an_error() -> None:
    with pytest.raises(TemplateError, match="position 4 has no closing"):
        render("abc ${ self.spec", VARIABLES, path="spec.steps[0].with.url")


def test_a_render_error_names_the_nested_field() -> None:
    with pytest.raises(CelEvaluationError) as raised:
        render({"a": [{"b": "${ nope }"}]}, VARIABLES, path="spec.steps[0].with")

    assert raised.value.path == "spec.steps[0].with.a[0].b"


def test_template_expressions_are_found_with_their_place() -> None:
    found = list(template_expressions({"a": ["x ${ one } ${ two }"], "b": "${three}"}))

    assert found == [(("a", 0), "one"), (("a", 0), "two"), (("b",), "three")]
