"""Parameters of the built-in actions, and the check of a step's `with` against them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from kubesteps.pipeline.issues import format_path
from kubesteps.pipeline.params import (
    ACTION_PARAMS,
    ApprovalParams,
    HttpParams,
    JobParams,
    PythonParams,
    WaitForParams,
    approval_annotation,
    known_actions,
    validate_params,
)


def _problems(action: str, params: dict[str, object]) -> list[tuple[str, str]]:
    issues = validate_params(action, params, loc=("spec", "steps", 2))
    return [(format_path(issue.loc), issue.message) for issue in issues]


def test_every_built_in_action_has_a_parameter_model() -> None:
    assert known_actions() == [
        "apply",
        "approval",
        "delay",
        "http",
        "job",
        "pipeline",
        "python",
        "waitFor",
    ]
    assert set(ACTION_PARAMS) == set(known_actions())


def test_an_unknown_action_lists_the_known_ones() -> None:
    assert _problems("shell", {}) == [
        (
            "spec.steps[2].action",
            "unknown action 'shell'; known actions: apply, approval, delay, http, job, "
            "pipeline, python, waitFor",
        )
    ]


def test_problems_have_the_path_inside_with() -> None:
    assert _problems("http", {"url": "example.com"}) == [
        (
            "spec.steps[2].with.url",
            "must be an http:// or https:// URL with a host; got 'example.com'",
        )
    ]


def test_http_defaults() -> None:
    params = HttpParams.model_validate({"url": "https://example.com"})

    assert params.method == "GET"
    assert params.expected_status == [(200, 299)]
    assert params.timeout == timedelta(seconds=30)
    assert params.secret_ref is None


def test_http_expected_status_accepts_codes_ranges_and_classes() -> None:
    params = HttpParams.model_validate(
        {"url": "https://example.com", "expectedStatus": [204, "300-304", "4xx"]}
    )

    assert params.expected_status == [(204, 204), (300, 304), (400, 499)]


@pytest.mark.parametrize("header", ["Authorization", "authorization", "Proxy-Authorization"])
def test_http_refuses_inline_credentials(header: str) -> None:
    ((path, message),) = _problems(
        "http", {"url": "https://example.com", "headers": {header: "Bearer x"}}
    )

    assert path == "spec.steps[2].with.headers"
    assert "must not be written inline" in message
    assert "secretRef" in message


def test_http_secret_ref_defaults_to_a_bearer_authorization_header() -> None:
    params = HttpParams.model_validate(
        {"url": "https://example.com", "secretRef": {"name": "api", "key": "token"}}
    )

    assert params.secret_ref is not None
    assert (params.secret_ref.header, params.secret_ref.scheme) == ("Authorization", "Bearer")


def test_http_refuses_a_body_on_get() -> None:
    assert _problems("http", {"url": "https://example.com", "body": "x"}) == [
        ("spec.steps[2].with.body", "a body is not allowed with method GET")
    ]


def test_http_body_is_text_or_an_object() -> None:
    ((path, message),) = _problems(
        "http", {"url": "https://example.com", "method": "POST", "body": 5}
    )

    assert path == "spec.steps[2].with.body"
    assert "must be a string or an object" in message


def test_wait_for_needs_something_to_wait_for() -> None:
    with pytest.raises(ValidationError, match="condition, or jsonPath with value"):
        WaitForParams.model_validate({"apiVersion": "v1", "kind": "Pod", "name": "p"})


def test_wait_for_condition_status_defaults_to_true() -> None:
    params = WaitForParams.model_validate(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "web",
            "condition": {"type": "Available"},
        }
    )

    assert params.condition is not None
    assert params.condition.status == "True"


def test_wait_for_json_path_needs_a_value() -> None:
    with pytest.raises(ValidationError, match="jsonPath and value go together"):
        WaitForParams.model_validate(
            {"apiVersion": "v1", "kind": "Pod", "name": "p", "jsonPath": "{.status.phase}"}
        )


def test_apply_owns_the_object_by_default_and_keeps_the_whole_manifest() -> None:
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c"},
        "data": {"a": "b"},
    }

    assert _problems("apply", {"manifest": manifest}) == []
    params = ACTION_PARAMS["apply"].model_validate({"manifest": manifest})
    assert params.model_dump(by_alias=True)["manifest"] == manifest
    assert params.model_dump()["owned"] is True


def test_job_needs_an_image_and_checks_quantities() -> None:
    assert _problems("job", {}) == [("spec.steps[2].with.image", "is required")]
    ((path, message),) = _problems(
        "job", {"image": "busybox", "resources": {"limits": {"cpu": "lots"}}}
    )
    assert path == "spec.steps[2].with.resources.limits.cpu"
    assert "Kubernetes quantity" in message


def test_job_defaults() -> None:
    params = JobParams.model_validate({"image": "busybox"})

    assert (params.backoff_limit, params.ttl_seconds_after_finished) == (0, 3600)


def test_approval_waits_for_an_annotation_named_after_the_step() -> None:
    assert approval_annotation("release") == "kubesteps.dev/approve.release"
    assert ApprovalParams.model_validate({}).message == "waiting for approval"


def test_python_checks_the_function_name_syntax_not_its_installation() -> None:
    assert PythonParams.model_validate({"function": "no.such.module.fn"}).args == {}
    ((path, message),) = _problems("python", {"function": "kubesteps examples"})
    assert path == "spec.steps[2].with.function"
    assert "a dotted Python name" in message


def test_problems_under_a_template_are_left_for_run_time() -> None:
    assert _problems("job", {"image": "busybox", "env": "${ self.spec.env }"}) == []
    assert _problems("job", {"image": "busybox", "backoffLimit": "${ 1 + 1 }"}) == []
    assert _problems("job", {"image": "busybox", "backoffLimit": "two"}) == [
        ("spec.steps[2].with.backoffLimit", "must be an integer, got a string ('two')")
    ]
