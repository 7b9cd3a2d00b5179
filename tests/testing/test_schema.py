"""Admission of custom resources against their CRD's openAPIV3Schema and CEL rules."""

from __future__ import annotations

import copy
import json
from typing import Any

import aiohttp
import pytest

from kubesteps.testing import ApiError
from kubesteps.testing.schema import SchemaValidator

from .widgets import WIDGET_CRD, WIDGETS, widget

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


async def rejected(response: aiohttp.ClientResponse) -> list[dict[str, str]]:
    body = await response.json()
    assert response.status == 422, body
    assert body["reason"] == "Invalid"
    return list(body["details"]["causes"])


async def test_a_missing_required_field_is_rejected(http: aiohttp.ClientSession) -> None:
    body = widget("w")
    del body["spec"]["size"]
    causes = await rejected(await http.post(WIDGETS, json=body))
    # The field is not repeated in the message: kubectl prints "field: message". A missing
    # value blocks the CEL rules, as on a real server.
    assert causes[0] == {
        "reason": "FieldValueRequired",
        "field": "spec.size",
        "message": "Required value",
    }
    assert [cause["field"] for cause in causes] == ["spec.size", "<nil>"]


async def test_a_value_above_the_maximum_is_rejected(http: aiohttp.ClientSession) -> None:
    causes = await rejected(await http.post(WIDGETS, json=widget("w", size=9)))
    assert causes[0]["message"] == (
        "Invalid value: 9: spec.size in body should be less than or equal to 5"
    )


async def test_a_value_outside_the_enum_is_rejected(http: aiohttp.ClientSession) -> None:
    causes = await rejected(await http.post(WIDGETS, json=widget("w", mode="warp")))
    assert causes[0]["reason"] == "FieldValueNotSupported"
    assert causes[0]["message"] == ('Unsupported value: "warp": supported values: "fast", "slow"')


async def test_a_wrong_type_is_rejected(http: aiohttp.ClientSession) -> None:
    causes = await rejected(await http.post(WIDGETS, json=widget("w", size="big")))
    assert causes[0]["reason"] == "FieldValueTypeInvalid"
    assert causes[0]["field"] == "spec.size"


async def test_every_failure_is_listed(http: aiohttp.ClientSession) -> None:
    response = await http.post(WIDGETS, json=widget("w", size=0, mode="warp"))
    body = await response.json()
    assert {cause["field"] for cause in body["details"]["causes"]} == {
        "spec.size",
        "spec.mode",
        "<nil>",
    }  # an unsupported value blocks the rules
    assert body["message"].startswith('Widget.example.dev "w" is invalid: [')


async def test_defaults_are_applied(http: aiohttp.ClientSession) -> None:
    created = await (await http.post(WIDGETS, json=widget("w"))).json()
    assert created["spec"]["mode"] == "fast"


async def test_unknown_fields_are_pruned_with_a_warning_by_default(
    http: aiohttp.ClientSession,
) -> None:
    response = await http.post(WIDGETS, json=widget("w", colour="red"))
    assert "colour" not in (await response.json())["spec"]
    assert response.headers.getall("Warning") == ['299 - "unknown field \\"spec.colour\\""']


async def test_unknown_fields_are_pruned_silently_when_ignored(
    http: aiohttp.ClientSession,
) -> None:
    response = await http.post(
        WIDGETS, json=widget("w", colour="red"), params={"fieldValidation": "Ignore"}
    )
    assert "colour" not in (await response.json())["spec"]
    assert "Warning" not in response.headers


async def test_unknown_fields_are_refused_when_strict(http: aiohttp.ClientSession) -> None:
    response = await http.post(
        WIDGETS, json=widget("w", colour="red"), params={"fieldValidation": "Strict"}
    )
    body = await response.json()
    assert response.status == 400
    assert body["reason"] == "BadRequest"
    assert 'strict decoding error: unknown field "spec.colour"' in body["message"]


async def test_an_invalid_field_validation_value_is_refused(
    http: aiohttp.ClientSession,
) -> None:
    response = await http.post(WIDGETS, json=widget("w"), params={"fieldValidation": "Loose"})
    assert response.status == 400


async def test_preserved_unknown_fields_are_kept(http: aiohttp.ClientSession) -> None:
    created = await (await http.post(WIDGETS, json=widget("w", extra={"any": {"x": 1}}))).json()
    assert created["spec"]["extra"] == {"any": {"x": 1}}


async def test_nullable_fields_keep_null(http: aiohttp.ClientSession) -> None:
    created = await (await http.post(WIDGETS, json=widget("w", note=None))).json()
    assert created["spec"]["note"] is None


async def test_null_in_a_non_nullable_field_is_pruned_then_defaulted(
    http: aiohttp.ClientSession,
) -> None:
    created = await (await http.post(WIDGETS, json=widget("w", mode=None))).json()
    assert created["spec"]["mode"] == "fast"


@pytest.mark.parametrize("port", [8080, "http"])
async def test_int_or_string_accepts_both(http: aiohttp.ClientSession, port: Any) -> None:
    assert (await http.post(WIDGETS, json=widget("w", port=port))).status == 201


async def test_int_or_string_rejects_other_types(http: aiohttp.ClientSession) -> None:
    causes = await rejected(await http.post(WIDGETS, json=widget("w", port=[1])))
    assert causes[0]["field"] == "spec.port"


async def test_a_failing_cel_rule_is_rejected_with_its_message(
    http: aiohttp.ClientSession,
) -> None:
    causes = await rejected(await http.post(WIDGETS, json=widget("w", min=5, max=1)))
    assert causes == [
        {
            "reason": "FieldValueInvalid",
            "field": "spec",
            "message": 'Invalid value: "object": min must not exceed max',
        }
    ]


async def test_a_transition_rule_compares_with_the_old_object(
    http: aiohttp.ClientSession,
) -> None:
    await http.post(WIDGETS, json=widget("w"))
    merge = {"Content-Type": "application/merge-patch+json"}
    fast = await http.patch(f"{WIDGETS}/w", data=json.dumps({"spec": {"size": 2}}), headers=merge)
    slow = await http.patch(
        f"{WIDGETS}/w", data=json.dumps({"spec": {"size": 2, "mode": "slow"}}), headers=merge
    )
    assert (await rejected(fast))[0]["message"].endswith("size can only change in slow mode")
    assert slow.status == 200


async def test_status_writes_are_validated(http: aiohttp.ClientSession) -> None:
    await http.post(WIDGETS, json=widget("w"))
    response = await http.patch(
        f"{WIDGETS}/w/status",
        data=json.dumps({"status": {"phase": 5}}),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert (await rejected(response))[0]["field"] == "status.phase"


async def test_an_invalid_object_name_is_rejected(http: aiohttp.ClientSession) -> None:
    causes = await rejected(await http.post(WIDGETS, json=widget("Not_Valid")))
    assert causes[0]["field"] == "metadata.name"


async def test_an_invalid_label_value_is_rejected(http: aiohttp.ClientSession) -> None:
    body = widget("w")
    body["metadata"]["labels"] = {"team": "red team"}
    causes = await rejected(await http.post(WIDGETS, json=body))
    assert causes[0]["field"] == "metadata.labels"


async def test_a_crd_with_an_uncompilable_cel_rule_is_rejected(
    http: aiohttp.ClientSession,
) -> None:
    crd = copy.deepcopy(WIDGET_CRD)
    crd["metadata"]["name"] = "gadgets.example.dev"
    crd["spec"]["names"] = {"plural": "gadgets", "kind": "Gadget"}
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schema["properties"]["spec"]["x-kubernetes-validations"] = [{"rule": "self.size >"}]
    causes = await rejected(await http.post(CRDS, json=crd))
    assert "compilation failed" in causes[0]["message"]


def test_an_unknown_json_schema_type_in_a_crd_is_reported() -> None:
    with pytest.raises(ApiError, match="not a valid schema"):
        SchemaValidator({"type": "thing"}, kind="Thing", group="example.dev")


def test_exclusive_maximum_follows_openapi_v3_booleans() -> None:
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer", "maximum": 3, "exclusiveMaximum": True}},
    }
    validator = SchemaValidator(schema, kind="Thing", group="example.dev")
    with pytest.raises(ApiError) as caught:
        validator.admit({"metadata": {"name": "t"}, "n": 3}, None, field_validation="Strict")
    assert caught.value.causes[0].message == "n: Invalid value: 3: n in body should be less than 3"


async def test_a_rule_using_a_kubernetes_cel_library_is_skipped_with_a_warning(
    http: aiohttp.ClientSession,
) -> None:
    crd = copy.deepcopy(WIDGET_CRD)
    crd["metadata"]["name"] = "gadgets.example.dev"
    crd["spec"]["names"] = {"plural": "gadgets", "kind": "Gadget"}
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schema["properties"]["spec"]["x-kubernetes-validations"] = [
        {"rule": "self.mode.lowerAscii() == self.mode"}
    ]
    assert (await http.post(CRDS, json=crd)).status == 201
    gadget = {**widget("g"), "apiVersion": "example.dev/v1", "kind": "Gadget"}
    response = await http.post("/apis/example.dev/v1/namespaces/default/gadgets", json=gadget)
    assert response.status == 201
    assert "cel-python has no 'lowerAscii'" in response.headers["Warning"]


async def test_rules_are_not_evaluated_over_values_of_the_wrong_type(
    http: aiohttp.ClientSession,
) -> None:
    # As on a real server: the type error is reported, and that the rules were not checked.
    response = await http.post(WIDGETS, json=widget("w", min="five", max=1))
    body = await response.json()
    assert response.status == 422, body
    assert [(c["field"], c["reason"]) for c in body["details"]["causes"]] == [
        ("spec.min", "FieldValueTypeInvalid"),
        ("<nil>", "FieldValueInvalid"),
    ]
    assert body["details"]["causes"][1]["message"] == (
        "Invalid value: null: some validation rules were not checked because the object "
        "was invalid; correct the existing errors to complete validation"
    )
    assert "TypeError" not in body["message"]


async def test_an_integer_beyond_int64_is_a_type_error_not_a_server_error(
    http: aiohttp.ClientSession,
) -> None:
    response = await http.post(
        WIDGETS,
        data=json.dumps(widget("w", size=2**70)),
        headers={"Content-Type": "application/json"},
    )
    body = await response.json()
    assert response.status == 422, body
    assert body["details"]["causes"][0]["reason"] == "FieldValueTypeInvalid"


def test_map_and_set_lists_refuse_duplicates_as_a_real_server_does() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "steps": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name"],
                        "items": {
                            "type": "object",
                            "properties": {"name": {"type": "string"}, "size": {"type": "integer"}},
                        },
                    },
                    "tags": {
                        "type": "array",
                        "x-kubernetes-list-type": "set",
                        "items": {"type": "string"},
                    },
                },
            }
        },
    }
    validator = SchemaValidator(schema, kind="Widget", group="example.dev")
    obj = {
        "apiVersion": "example.dev/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {
            "steps": [{"name": "a", "size": 1}, {"name": "b"}, {"name": "a", "size": 2}],
            "tags": ["x", "y", "x"],
        },
    }
    with pytest.raises(ApiError) as refused:
        validator.admit(obj, None, field_validation="Strict")
    assert [(c.field, c.reason, c.detail) for c in refused.value.causes] == [
        ("spec.steps[2]", "FieldValueDuplicate", 'Duplicate value: {"name":"a"}'),
        ("spec.tags[2]", "FieldValueDuplicate", 'Duplicate value: "x"'),
    ]
