"""CEL compiled and analysed: syntax errors, unknown variables and functions, references."""

from __future__ import annotations

import pytest

from kubesteps.pipeline.cel_compile import CelSyntaxError, check_expression, compile_expression


def test_a_syntax_error_says_where() -> None:
    with pytest.raises(CelSyntaxError) as raised:
        check_expression("self.spec.enabled ==", variables=["self"], path="spec.steps[0]")

    assert raised.value.column == 19
    assert raised.value.path == "spec.steps[0]"
    assert "line 1, column 19: the expression ends too early" in raised.value.message


def test_an_unexpected_character_is_named() -> None:
    with pytest.raises(CelSyntaxError, match="unexpected character '#'"):
        compile_expression("a # b")


def test_an_unknown_variable_is_refused_listing_the_available_ones() -> None:
    with pytest.raises(CelSyntaxError, match="unknown variable 'item'; available here: self"):
        check_expression("item.name == 'x'", variables=["self", "steps"], path="p")


def test_variables_bound_by_macros_are_not_unknown() -> None:
    compiled = check_expression(
        "self.spec.targets.all(t, t != '') && self.spec.targets.map(x, x + '!').size() == 2",
        variables=["self"],
        path="p",
    )

    assert compiled.free_variables == {"self"}


def test_an_unknown_function_is_refused() -> None:
    with pytest.raises(CelSyntaxError, match="unknown function 'lenght'"):
        check_expression("lenght(self.spec.targets) > 0", variables=["self"], path="p")


def test_step_references_are_collected_in_both_spellings() -> None:
    compiled = compile_expression("steps.fetch.phase == steps['fan-out-1'].phase")

    assert compiled.step_references == {"fetch", "fan-out-1"}


def test_each_distinct_expression_is_compiled_once() -> None:
    assert compile_expression("1 + 2 == 3") is compile_expression("1 + 2 == 3")
