"""The Pipeline model: defaults, aliases, step kinds and the tree helpers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from kubesteps.pipeline.model import Pipeline, Step

from .malformed import delay, pipeline


def _parse(manifest: dict[str, object]) -> Pipeline:
    return Pipeline.model_validate(manifest)


def test_defaults_are_applied_when_a_spec_is_parsed() -> None:
    step = _parse(pipeline(delay("first"))).spec.steps[0]

    assert step.rerun_on_spec_change is True
    assert step.continue_on_error is False
    assert step.when == []
    assert step.retry.limit == 3
    assert step.retry.backoff.initial == timedelta(seconds=1)
    assert step.retry.backoff.max == timedelta(minutes=5)
    assert step.retry.backoff.factor == 2.0
    assert step.retry.backoff.jitter == 0.2


def test_yaml_camel_case_maps_to_python_snake_case() -> None:
    manifest = pipeline(
        delay("first", continueOnError=True, finishOnSuccess=True, abortOnFalse=True),
        resyncPeriod="10m",
    )

    parsed = _parse(manifest)

    assert parsed.spec.resync_period == timedelta(minutes=10)
    step = parsed.spec.steps[0]
    assert (step.continue_on_error, step.finish_on_success, step.abort_on_false) == (
        True,
        True,
        True,
    )
    assert step.params == {"duration": "1s"}


def test_durations_are_timedeltas_in_python_and_strings_in_yaml() -> None:
    manifest = pipeline(
        delay("first", timeout="1h30m", throttle={"interval": "5m", "initialDelay": "500ms"})
    )

    parsed = _parse(manifest)
    step = parsed.spec.steps[0]
    assert step.timeout == timedelta(hours=1, minutes=30)
    assert step.throttle is not None
    assert step.throttle.initial_delay == timedelta(milliseconds=500)
    dumped = parsed.model_dump(by_alias=True, exclude_defaults=True)
    assert dumped["spec"]["steps"][0]["timeout"] == "1h30m"
    assert dumped["spec"]["steps"][0]["throttle"] == {"interval": "5m", "initialDelay": "500ms"}


def test_a_dump_parses_back_to_the_same_model() -> None:
    parsed = _parse(
        pipeline(
            delay("first", retry={"limit": 1, "backoff": {"initial": "2s"}}),
            {
                "name": "fan",
                "forEach": {
                    "items": "[1, 2]",
                    "as": "n",
                    "step": {"action": "delay", "with": {"duration": "${ string(n) + 's' }"}},
                },
            },
        )
    )

    assert _parse(parsed.model_dump(by_alias=True, mode="json")) == parsed


def test_kind_and_children_describe_the_tree() -> None:
    parsed = _parse(
        pipeline(
            {"name": "side", "parallel": {"steps": [delay("a"), delay("b")]}},
            {
                "name": "fan",
                "forEach": {
                    "items": "[1]",
                    "step": {"action": "delay", "with": {"duration": "1s"}},
                },
            },
        )
    )
    side, fan = parsed.spec.steps

    assert side.kind == "parallel"
    assert [child.kind for child in side.children] == ["action", "action"]
    assert [getattr(child, "name", None) for child in side.children] == ["a", "b"]
    assert fan.kind == "forEach"
    assert len(fan.children) == 1
    assert fan.children[0].children == []


def test_models_are_immutable() -> None:
    step = _parse(pipeline(delay("first"))).spec.steps[0]

    with pytest.raises(ValidationError):
        step.name = "other"


def test_strings_are_not_coerced_into_numbers_or_booleans() -> None:
    with pytest.raises(ValidationError):
        _parse(pipeline(delay("first", retry={"limit": "3"})))
    with pytest.raises(ValidationError):
        _parse(pipeline(delay("first", continueOnError="true")))


def test_a_step_can_be_built_in_python_with_snake_case_names() -> None:
    step = Step(name="first", action="approval", continue_on_error=True)

    assert step.continue_on_error is True
    assert step.model_dump(by_alias=True, exclude_defaults=True) == {
        "name": "first",
        "action": "approval",
        "continueOnError": True,
    }


def test_status_is_carried_without_being_checked() -> None:
    manifest = pipeline(delay("first"))
    manifest["status"] = {"anything": ["goes"]}

    assert _parse(manifest).status == {"anything": ["goes"]}


def test_metadata_keeps_what_the_api_server_adds() -> None:
    manifest = pipeline(delay("first"))
    manifest["metadata"] = {"name": "demo", "uid": "1234", "generation": 3}

    metadata = _parse(manifest).metadata
    assert metadata.name == "demo"
    assert metadata.model_extra == {"uid": "1234", "generation": 3}
