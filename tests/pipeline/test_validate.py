"""validate(): one gate, every problem, each with a field path and a readable message."""

from __future__ import annotations

from typing import Any

import pytest

from kubesteps.pipeline.model import Pipeline
from kubesteps.pipeline.template import PipelineTemplate
from kubesteps.plan.validate import SpecError, validate, validate_template

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
        "must be greater than 0, got '0' [step 'leaf']"
    ]


def test_messages_are_not_pydantic_dumps() -> None:
    errors = _errors(pipeline(delay("first", when=[1])))

    assert errors == ["spec.steps[0].when[0]: must be a string, got an integer (1) [step 'first']"]


def test_an_unknown_field_lists_the_allowed_ones() -> None:
    (error,) = _errors(pipeline(delay("first", throttle={"interval": "1m", "every": "1m"})))

    assert error == (
        "spec.steps[0].throttle.every: unknown field 'every'; allowed fields here: "
        "interval, ensureSuccess, partitionKey, initialDelay [step 'first']"
    )


def test_a_template_in_with_is_checked_with_the_forEach_variables_in_scope() -> None:
    manifest = pipeline(
        delay("discover"),
        {
            "name": "fan",
            "forEach": {
                "items": "steps.discover.outputs.targets",
                "as": "target",
                "step": {"action": "delay", "with": {"duration": "${ target.wait }${ index }"}},
            },
        },
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
        "as 'check-<index>'; choose another name [step 'check-1']"
    ]


def test_template_steps_under_different_numbers_of_forEach_may_clash() -> None:
    twice = {"forEach": {"items": "[1]", "as": "y", "step": {"group": {"steps": [delay("a")]}}}}
    manifest = pipeline(_fan("once", {"group": {"steps": [delay("a-1")]}}), _fan("twice", twice))

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
            "with": {
                "url": "${ self.metadata.annotations.url }",
                "expectedStatus": "${ self.metadata.annotations.codes }",
            },
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
    from kubesteps.plan.validate import step_at

    manifest = {
        "spec": {
            "steps": [
                {"name": "outer", "group": {"steps": [{"name": "inner", "with": {"url": "x"}}]}},
            ]
        }
    }

    assert step_at(manifest, "spec.steps[0].group.steps[0].with.url") == "inner"
    assert step_at(manifest, "spec.steps[0].group") == "outer"
    assert step_at(manifest, "spec.suspend") is None
    assert step_at(manifest, "spec.steps[7].name") is None


def test_every_problem_is_reported_even_behind_a_malformed_field() -> None:
    # pydantic skips a model's own checks once a field of it failed; these checks read
    # the manifest as written, so nothing waits for another fix to be seen.
    manifest = pipeline(
        delay("same", timeout="5x", group={"steps": [delay("inner")]}),
        delay("same", when=["steps.nothing.phase == 'Failed'"], retry={"limit": "3"}),
        {
            "name": "fan",
            "forEach": {
                "items": "[1]",
                "step": {"name": "x", "continueOnError": True, "action": "delay", "with": {}},
            },
        },
        suspend="yes",
    )

    assert [error.split(" [step ")[0].split(": ")[0] for error in _errors(manifest)] == [
        "spec.steps[0]",  # two kinds
        "spec.steps[0].timeout",
        "spec.steps[1].name",  # a duplicate
        "spec.steps[1].retry.limit",
        "spec.steps[1].when[0]",  # no step 'nothing'
        "spec.steps[2].forEach.step.continueOnError",
        "spec.steps[2].forEach.step.name",
        "spec.steps[2].forEach.step.with",  # neither duration nor until
        "spec.suspend",
    ]


def test_problems_are_sorted_by_field_path_with_indexes_as_numbers() -> None:
    steps = [delay(f"s{index}") for index in range(12)]
    steps[2] = delay("s2", timeout="1d")
    steps[10] = delay("s10", timeout="1d")

    paths = [error.split(": ")[0] for error in _errors(pipeline(*steps, historyLimit=-1))]

    assert paths == ["spec.historyLimit", "spec.steps[2].timeout", "spec.steps[10].timeout"]


def test_a_wait_for_with_a_malformed_json_path_is_refused_before_it_runs() -> None:
    manifest = pipeline(
        {
            "name": "wait",
            "action": "waitFor",
            "with": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": "web",
                "jsonPath": "{.status.phase",
                "value": "Running",
            },
        }
    )

    (error,) = _errors(manifest)
    assert error.startswith(
        "spec.steps[0].with.jsonPath: '{.status.phase' is not a valid JSONPath ("
    )
    assert error.endswith("[step 'wait']")


def test_a_template_that_needs_no_variable_is_checked_rendered() -> None:
    manifest = pipeline(delay("pause", **{"with": {"duration": "${ string(2 + 3) + 'x' }"}}))

    assert _errors(manifest) == [
        "spec.steps[0].with.duration: invalid duration '5x': unknown unit 'x'; use h, m, s "
        "or ms [step 'pause']"
    ]


def test_job_resources_are_real_quantities_and_requests_fit_their_limits() -> None:
    manifest = pipeline(
        {
            "name": "build",
            "action": "job",
            "with": {
                "image": "busybox",
                "resources": {
                    "requests": {"cpu": "1", "memory": "2Gi"},
                    "limits": {"cpu": "1000m", "memory": "1024Mi", "ephemeral-storage": "1,5Gi"},
                },
            },
        }
    )

    assert _errors(manifest) == [
        "spec.steps[0].with.resources.limits.ephemeral-storage: must be a Kubernetes quantity: "
        "a number with an optional suffix, such as 500m, 2, 1.5Gi, 128Mi or 1e3; got '1,5Gi' "
        "[step 'build']",
        "spec.steps[0].with.resources.requests.memory: must not be more than "
        "limits.memory (1024Mi); got '2Gi' [step 'build']",
    ]


def test_typos_get_a_suggestion() -> None:
    manifest = pipeline(
        delay("fetch", retires=3),
        {"name": "call", "action": "htpp", "with": {}},
        delay("after", when=["steps.fetc.phase == 'Succeeded' && slef.metadata.name != ''"]),
        {"name": "get", "action": "http", "with": {"url": "https://x.example", "method": "GTE"}},
    )
    manifest["kind"] = "Pipline"
    manifest["apiVersion"] = "kubesteps.dev/v1alpah1"

    hints = [error.split(" — ")[1].split(" [")[0] for error in _errors(manifest)]

    assert hints == [
        "did you mean 'kubesteps.dev/v1alpha1'?",
        "did you mean 'Pipeline'?",
        "did you mean 'retry'?",
        "did you mean 'http'?",
        "did you mean 'self'?",
        "did you mean 'GET'?",
    ]
    assert _errors(manifest)[2] == (
        "spec.steps[0].retires: unknown field 'retires' — did you mean 'retry'? [step 'fetch']"
    )


def test_a_step_reference_with_a_typo_names_the_step_meant() -> None:
    manifest = pipeline(delay("fetch"), delay("after", when=["steps.fetc.phase == 'Failed'"]))

    assert _errors(manifest) == [
        "spec.steps[1].when[0]: refers to steps.fetc, but no step is named 'fetc' in CEL "
        "expression \"steps.fetc.phase == 'Failed'\" — did you mean 'fetch'? [step 'after']"
    ]


def test_cel_may_read_only_fields_a_spec_has() -> None:
    manifest = pipeline(delay("first", when=["self.spec.suspnd == false"]))

    assert _errors(manifest) == [
        "spec.steps[0].when[0]: refers to self.spec.suspnd, but a Pipeline's spec has no field "
        "'suspnd' (only suspend, resyncPeriod, timeout, historyLimit, params, schedule, mutex, "
        "steps, maxConcurrency, finally) in CEL expression "
        "'self.spec.suspnd == false' — did you mean 'suspend'? [step 'first']"
    ]


def test_documents_meant_as_pipelines_include_typos_but_not_other_groups() -> None:
    from kubesteps.plan.validate import addressed

    assert addressed({"apiVersion": "kubesteps.dev/v1alpha1", "kind": "Pipline"})
    assert addressed({"apiVersion": "kubesteps.dev/v1alpha1", "kind": "Workflow"})
    assert addressed({"apiVersion": "kubestep.dev/v1alpha1", "kind": "Pipeline"})
    assert addressed({"kind": "Pipeline"})
    assert not addressed({"apiVersion": "tekton.dev/v1", "kind": "Pipeline"})
    assert not addressed({"apiVersion": "v1", "kind": "ConfigMap"})
    assert not addressed(["a list"])


def test_fields_the_api_server_dropped_are_found_in_the_last_applied_configuration() -> None:
    import json

    from kubesteps.plan.validate import LAST_APPLIED, pruned_fields

    applied = pipeline(delay("first", retires=3), delay("second", timeout="5s"), resyncPeriod="1m")
    applied["spec"]["steps"][0]["with"]["extra"] = "kept: with is free-form"
    stored = pipeline(delay("first"), delay("second"))  # timeout removed since, on purpose
    stored["spec"]["steps"][0]["with"]["extra"] = "kept: with is free-form"
    stored["metadata"]["annotations"] = {LAST_APPLIED: json.dumps(applied)}

    # resyncPeriod and timeout are fields of the schema: their absence is someone's edit.
    assert [str(error) for error in pruned_fields(stored)] == [
        "spec.steps[0].retires: dropped by the API server: unknown field 'retires' — did you "
        "mean 'retry'? [step 'first']",
    ]
    assert pruned_fields(pipeline(delay("first"))) == []


def test_retry_limit_bounds_agree_in_the_docs_the_model_the_crd_and_the_engine() -> None:
    import re
    from pathlib import Path

    from kubesteps.pipeline.crd import crd
    from kubesteps.plan.validate import prepare

    doc = (Path(__file__).resolve().parents[2] / "docs" / "pipeline-spec.md").read_text()
    ((low, high),) = re.findall(r"^\| `limit` \| (\d+)\.\.(\d+) \|", doc, flags=re.M)
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    limit = schema["properties"]["spec"]["properties"]["steps"]["items"]["properties"]["retry"][
        "properties"
    ]["limit"]
    assert (limit["minimum"], limit["maximum"]) == (int(low), int(high)) == (0, 100)
    for retries in (0, 100):  # the engine counts attempts: 1 and 101
        prepared = prepare(pipeline(delay("first", retry={"limit": retries})))
        assert not isinstance(prepared, list), prepared
        assert prepared.plan.steps[0].retry is not None
        assert prepared.plan.steps[0].retry.limit == retries + 1
    assert isinstance(validate(pipeline(delay("first", retry={"limit": 101}))), list)


def test_the_size_limit_counts_the_manifest_not_what_the_server_adds() -> None:
    import json

    from kubesteps.plan.validate import LAST_APPLIED

    manifest = pipeline(
        {
            "name": "big",
            "action": "python",
            "with": {"function": "kubesteps.examples.greet", "args": {"blob": "x" * (150 * 1024)}},
        }
    )
    assert isinstance(validate(manifest), Pipeline)
    stored = {
        **manifest,
        "status": {"steps": [{"name": "big", "outputs": {"x": "y" * 200_000}}]},
        "metadata": {**manifest["metadata"], "annotations": {LAST_APPLIED: json.dumps(manifest)}},
    }

    assert isinstance(validate(stored), Pipeline), "the same verdict as for the file"


# -- params, switch, finally, schedule ----------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {
                "params": [{"name": "region", "value": "eu"}],
                "steps": [delay("first", when=["params.regoin == 'eu'"])],
            },
            "spec.steps[0].when[0]: refers to params.regoin, but no param is named 'regoin' "
            "(declared: region) in CEL expression \"params.regoin == 'eu'\" — did you mean "
            "'region'? [step 'first']",
        ),
        (
            {
                "params": [{"name": "size", "value": "huge", "enum": ["small", "large"]}],
                "steps": [delay("first")],
            },
            'spec.params[0].value: "huge" is not one of the allowed values: "small", "large"',
        ),
        (
            {
                "params": [{"name": "a", "value": 1}, {"name": "a", "value": 2}],
                "steps": [delay("first")],
            },
            "spec.params[1].name: duplicate param name 'a' (also params[0]); param names must be "
            "unique",
        ),
        (
            {
                "steps": [
                    {
                        "name": "pick",
                        "switch": {
                            "steps": [delay("default-first"), delay("never", when=["true"])]
                        },
                    }
                ]
            },
            "spec.steps[0].switch.steps[0].when: branch 'default-first' has no when, so it is the "
            "default, which must be the last branch: the branches after it ('never') could never "
            "be taken [step 'default-first']",
        ),
        (
            {
                "steps": [delay("first")],
                "finally": [
                    {
                        "name": "outer",
                        "group": {
                            "steps": [{"name": "inner", "group": {"steps": [delay("deepest")]}}]
                        },
                    }
                ],
            },
            "spec.finally[0].group.steps[0].group: finally steps nest at most 2 levels deep: this "
            "step is at level 2 and must be an action step [step 'inner']",
        ),
        (
            {"steps": [delay("first")], "finally": [delay("first")]},
            "spec.finally[0].name: duplicate step name 'first' (also used at spec.steps[0].name); "
            "step names must be unique across the whole pipeline [step 'first']",
        ),
        (
            {"steps": [delay("first", when=["run.phase == 'Failed'"])]},
            "spec.steps[0].when[0]: unknown variable 'run'; available here: params, self, steps in "
            "CEL expression \"run.phase == 'Failed'\" [step 'first']",
        ),
        (
            {"schedule": {"cron": "61 * * * *"}, "steps": [delay("first")]},
            "spec.schedule.cron: '61 * * * *' is not a valid cron expression: Bad minute",
        ),
        (
            {"schedule": {"cron": "@often"}, "steps": [delay("first")]},
            "spec.schedule.cron: '@often' is not a known macro; use one of @annually, @daily, "
            "@hourly, @midnight, @monthly, @weekly, @yearly or five fields",
        ),
        (
            {
                "schedule": {"cron": "@hourly", "timeZone": "Mars/Olympus"},
                "steps": [delay("first")],
            },
            "spec.schedule.timeZone: 'Mars/Olympus' is not an IANA time zone name (such as UTC, "
            "Europe/Berlin or America/New_York)",
        ),
    ],
)
def test_the_authoring_fields_are_checked_with_the_field_named(
    spec: dict[str, Any], expected: str
) -> None:
    manifest = {
        "apiVersion": "kubesteps.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "demo", "namespace": "default"},
        "spec": spec,
    }

    assert expected in _errors(manifest)


# -- needs ----------------------------------------------------------------------------------


def test_needs_that_form_a_cycle_are_refused_naming_the_cycle() -> None:
    manifest = pipeline(delay("a", needs=["c"]), delay("b", needs=["a"]), delay("c", needs=["b"]))

    assert _errors(manifest) == [
        "spec.steps[0].needs: the needs form a cycle: a -> c -> b -> a; a step cannot wait, "
        "directly or through others, for itself [step 'a']"
    ]


def test_needs_name_steps_of_the_same_list() -> None:
    manifest = pipeline(
        delay("a"),
        delay("b", needs=["inner", "aa", {"step": "a", "phase": "Done"}]),
        {"name": "g", "group": {"steps": [delay("inner", needs=["a"])]}},
    )

    assert _errors(manifest) == [
        "spec.steps[1].needs[0]: step 'inner' is not in this list (it is at "
        "spec.steps[2].group.steps[0]); needs name steps of the same list only [step 'b']",
        "spec.steps[1].needs[1]: no step of this list is named 'aa' — did you mean 'a'? [step 'b']",
        "spec.steps[1].needs[2].phase: must be one of 'Succeeded', 'Failed', 'Skipped' or "
        "'Finished'; got a string ('Done') [step 'b']",
        "spec.steps[2].group.steps[0].needs[0]: step 'a' is not in this list (it is at "
        "spec.steps[0]); needs name steps of the same list only [step 'inner']",
    ]


def test_needs_are_refused_where_steps_run_side_by_side_and_with_finish_on_success() -> None:
    manifest = pipeline(
        delay("a", finishOnSuccess=True),
        delay("b", needs=["a"]),
        {"name": "p", "parallel": {"steps": [delay("x"), delay("y", needs=["x"])]}},
    )

    assert _errors(manifest) == [
        "spec.steps[0].finishOnSuccess: not allowed in a list whose steps have needs: it runs "
        "as a graph, so there are no later steps to skip [step 'a']",
        "spec.steps[2].parallel.steps[1].needs: only allowed on steps of spec.steps, "
        "spec.finally or a group: the sub-steps of parallel run side by side already "
        "[step 'y']",
    ]


# -- uses -----------------------------------------------------------------------------------


def _template(**spec: Any) -> PipelineTemplate:
    checked = validate_template(
        {
            "apiVersion": "kubesteps.dev/v1alpha1",
            "kind": "PipelineTemplate",
            "metadata": {"name": "deploy", "namespace": "default"},
            "spec": {
                "params": [
                    {"name": "target", "enum": ["staging", "production"]},
                    {"name": "replicas", "value": 2},
                ],
                "steps": [delay("check"), delay("roll-out", needs=["check"])],
                **spec,
            },
        }
    )
    assert isinstance(checked, PipelineTemplate), checked
    return checked


def test_a_use_is_checked_against_its_template() -> None:
    manifest = pipeline(
        {"name": "a", "uses": {"template": "deplo"}},
        {"name": "b", "uses": {"template": "deploy", "params": {"targt": 1, "target": "x"}}},
        delay("c-check"),
        {"name": "c", "uses": {"template": "deploy", "params": {"target": "staging"}}},
    )

    result = validate(manifest, {"deploy": _template()})

    assert isinstance(result, list)
    assert [str(e) for e in result] == [
        "spec.steps[0].uses.template: no PipelineTemplate 'deplo' in namespace 'default' "
        "(there are: deploy) — did you mean 'deploy'? [step 'a']",
        "spec.steps[1].uses.params.target: \"x\" is not one of the values template 'deploy' "
        'allows: "staging", "production" [step \'b\']',
        "spec.steps[1].uses.params.targt: template 'deploy' has no param 'targt' (it has: "
        "target, replicas) — did you mean 'target'? [step 'b']",
        "spec.steps[3].name: step 'c-check' of template 'deploy' clashes with step 'c-check' "
        "at spec.steps[2]; rename one [step 'c']",
    ]


def test_a_use_without_its_templates_says_they_cannot_be_read() -> None:
    manifest = pipeline({"name": "a", "uses": {"template": "deploy"}})

    assert _errors(manifest) == [
        "spec.steps[0].uses.template: uses PipelineTemplate 'deploy', which cannot be read "
        "here: give the templates (kubesteps validate --templates DIR, or in the same file) "
        "or check against a cluster (--cluster) [step 'a']"
    ]


def test_a_template_is_checked_on_its_own() -> None:
    checked = validate_template(
        {
            "apiVersion": "kubesteps.dev/v1alpha1",
            "kind": "PipelineTemplate",
            "metadata": {"name": "t"},
            "spec": {
                "steps": [
                    delay("a", condition="Done"),
                    {"name": "b", "uses": {"template": "other"}},
                    delay("c", when=["params.nope == 1"]),
                ]
            },
        }
    )

    assert isinstance(checked, list)
    messages = [str(e) for e in checked]
    assert (
        "spec.steps[0].condition: not allowed in a template: every use of it would write "
        "the same condition; set condition on the step that uses it [step 'a']" in messages
    )
    assert (
        "spec.steps[1].uses: not allowed in a template: templates do not nest (use the "
        "steps of the other one here) [step 'b']" in messages
    )
    assert any(m.startswith("spec.steps[2].when[0]: refers to params.nope") for m in messages)
