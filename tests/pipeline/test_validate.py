"""validate(): one gate, every problem, each with a field path and a readable message."""

from __future__ import annotations

from typing import Any

from kubesteps.pipeline.model import Pipeline
from kubesteps.pipeline.validate import SpecError, validate

from .malformed import delay, pipeline


def _errors(manifest: Any) -> list[str]:
    result = validate(manifest)
    assert isinstance(result, list), "expected errors, got a valid Pipeline"
    return [str(error) for error in result]


def test_a_valid_manifest_gives_the_parsed_pipeline() -> None:
    result = validate(pipeline(delay("first")))

    assert isinstance(result, Pipeline)
    assert result.metadata.name == "demo"


def test_every_problem_is_reported_not_just_the_first() -> None:
    errors = _errors(
        pipeline(delay("Bad_Name", timeout="5x"), delay("second", retry={"limit": -2}))
    )

    assert sorted(error.split(": ", 1)[0] for error in errors) == [
        "spec.steps[0].name",
        "spec.steps[0].timeout",
        "spec.steps[1].retry.limit",
    ]


def test_errors_deep_in_the_tree_have_the_full_path() -> None:
    manifest = pipeline(
        {
            "name": "outer",
            "parallel": {
                "steps": [
                    {
                        "name": "inner",
                        "group": {"steps": [delay("leaf", throttle={"interval": "0"})]},
                    }
                ]
            },
        }
    )

    assert _errors(manifest) == [
        "spec.steps[0].parallel.steps[0].group.steps[0].throttle.interval: "
        "must be greater than 0, got '0'"
    ]


def test_messages_are_not_pydantic_dumps() -> None:
    errors = _errors(pipeline(delay("first", when=[1])))

    assert errors == ["spec.steps[0].when[0]: must be a string, got an integer (1)"]


def test_an_unknown_field_lists_the_allowed_ones() -> None:
    (error,) = _errors(pipeline(delay("first", throttle={"interval": "1m", "every": "1m"})))

    assert error == (
        "spec.steps[0].throttle.every: unknown field; allowed fields here: "
        "interval, ensureSuccess, partitionKey, initialDelay"
    )


def test_a_template_in_with_is_checked_with_the_forEach_variables_in_scope() -> None:
    manifest = pipeline(
        {
            "name": "fan",
            "forEach": {
                "items": "self.spec.targets",
                "as": "target",
                "step": {"action": "delay", "with": {"duration": "${ target.wait }${ index }"}},
            },
        }
    )

    assert isinstance(validate(manifest), Pipeline)


def test_an_item_variable_is_not_in_scope_outside_its_forEach() -> None:
    manifest = pipeline(
        {
            "name": "fan",
            "forEach": {"items": "[1]", "step": {"action": "delay", "with": {"duration": "1s"}}},
        },
        delay("after", **{"with": {"duration": "${ item }"}}),
    )

    (error,) = _errors(manifest)
    assert error.startswith("spec.steps[1].with.duration: unknown variable 'item'")


def test_a_nested_forEach_may_not_reuse_the_item_name() -> None:
    inner = {"forEach": {"items": "[1]", "step": {"action": "delay", "with": {"duration": "1s"}}}}
    manifest = pipeline({"name": "fan", "forEach": {"items": "[1]", "step": inner}})

    (error,) = _errors(manifest)
    assert error.startswith("spec.steps[0].forEach.step.forEach.as: 'item' is already the item")


def test_steps_may_refer_to_generated_forEach_sub_steps() -> None:
    manifest = pipeline(
        {
            "name": "fan",
            "forEach": {"items": "[1, 2]", "step": {"action": "delay", "with": {"duration": "1s"}}},
        },
        delay("after", when=["steps['fan-1'].phase == 'Succeeded'", "steps.fan.phase != ''"]),
    )

    assert isinstance(validate(manifest), Pipeline)


def _fan(name: str, template: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "forEach": {"items": "[1, 2]", "step": template}}


def test_a_top_level_step_may_not_take_the_run_time_name_of_a_template_step() -> None:
    manifest = pipeline(delay("check-1"), _fan("fan", {"parallel": {"steps": [delay("check")]}}))

    assert _errors(manifest) == [
        "spec.steps[0].name: step name 'check-1' clashes with step 'check' at "
        "spec.steps[1].forEach.step.parallel.steps[0].name, which runs once per forEach item "
        "as 'check-<index>'; choose another name"
    ]


def test_template_steps_under_different_numbers_of_forEach_may_clash() -> None:
    twice = {"forEach": {"items": "[1]", "as": "y", "step": {"group": {"steps": [delay("a")]}}}}
    manifest = pipeline(
        _fan("once", {"group": {"steps": [delay("a-1")]}}), _fan("twice", twice)
    )

    (error,) = _errors(manifest)
    assert error.startswith(
        "spec.steps[0].forEach.step.group.steps[0].name: step name 'a-1' (run as "
        "'a-1-<index>') clashes with step 'a' at "
        "spec.steps[1].forEach.step.forEach.step.group.steps[0].name, which runs once per "
        "forEach item as 'a-<index>-<index>'"
    )


def test_names_that_cannot_meet_at_run_time_do_not_clash() -> None:
    manifest = pipeline(
        _fan("fan", {"group": {"steps": [delay("check"), delay("other")]}}),
        delay("check-x"),  # not an index suffix
        delay("other-0-1"),  # one suffix too many for 'other'
        _fan("more", {"group": {"steps": [delay("check-0")]}}),  # same number of suffixes
    )

    assert isinstance(validate(manifest), Pipeline)


def test_steps_may_refer_to_the_run_time_names_of_template_steps() -> None:
    manifest = pipeline(
        _fan("fan", {"group": {"steps": [delay("check")]}}),
        delay("after", when=["steps['check-1'].phase == 'Succeeded'"]),
    )

    assert isinstance(validate(manifest), Pipeline)


def test_values_with_templates_are_left_to_the_run_time_check() -> None:
    manifest = pipeline(
        {
            "name": "call",
            "action": "http",
            "with": {"url": "${ self.spec.url }", "expectedStatus": "${ self.spec.codes }"},
        }
    )

    assert isinstance(validate(manifest), Pipeline)


def test_four_levels_of_nesting_are_allowed() -> None:
    step = delay("level4")
    for level in (3, 2, 1):
        step = {"name": f"level{level}", "group": {"steps": [step]}}

    assert isinstance(validate(pipeline(step)), Pipeline)


def test_a_manifest_that_is_not_an_object_is_refused() -> None:
    assert _errors(["not", "a", "manifest"]) == ["a Pipeline manifest must be an object, got list"]


def test_an_error_prints_as_path_and_message() -> None:
    assert str(SpecError("spec.steps[0].name", "is required")) == "spec.steps[0].name: is required"
    assert str(SpecError("", "too big")) == "too big"


def test_step_at_names_the_innermost_named_step_of_a_path() -> None:
    from kubesteps.pipeline.validate import step_at

    manifest = {"spec": {"steps": [
        {"name": "outer", "group": {"steps": [{"name": "inner", "with": {"url": "x"}}]}},
    ]}}

    assert step_at(manifest, "spec.steps[0].group.steps[0].with.url") == "inner"
    assert step_at(manifest, "spec.steps[0].group") == "outer"
    assert step_at(manifest, "spec.suspend") is None
    assert step_at(manifest, "spec.steps[7].name") is None
