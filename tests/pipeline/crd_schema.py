"""Check an object against the generated CRD's schema the way an API server would (mostly).

jsonschema checks the OpenAPI part. What it does not know is done here by hand: unknown
fields are refused (like `kubectl apply`'s strict field validation), `x-kubernetes-validations`
CEL rules are evaluated with celpy, and `x-kubernetes-list-type: map` lists refuse duplicate
keys. Not emulated: defaulting, pruning, CEL cost limits, formats.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import jsonschema

from kubesteps.pipeline.cel_compile import CelError
from kubesteps.pipeline.cel_evaluate import evaluate
from kubesteps.pipeline.crd import crd, template_crd
from kubesteps.pipeline.issues import format_path


@cache
def openapi_schema(kind: str = "Pipeline") -> dict[str, Any]:
    """The openAPIV3Schema of the generated CRD of ``kind`` (Pipeline, PipelineTemplate)."""
    definition = crd() if kind == "Pipeline" else template_crd()
    schema: dict[str, Any] = definition["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


@cache
def _strict_validator(kind: str = "Pipeline") -> jsonschema.Draft7Validator:
    schema = copy.deepcopy(openapi_schema(kind))
    _refuse_unknown_fields(schema)
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _refuse_unknown_fields(node: dict[str, Any]) -> None:
    if "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
        node["additionalProperties"] = False
    for child in node.get("properties", {}).values():
        _refuse_unknown_fields(child)
    if "items" in node:
        _refuse_unknown_fields(node["items"])


def schema_errors(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    """(path, message) for everything the CRD schema refuses in ``manifest``."""
    kind = "PipelineTemplate" if manifest.get("kind") == "PipelineTemplate" else "Pipeline"
    errors = [
        (format_path(error.absolute_path), error.message)
        for error in _strict_validator(kind).iter_errors(manifest)
    ]
    errors.extend(_rule_errors(openapi_schema(kind), manifest, ()))
    return errors


def _rule_errors(
    schema: dict[str, Any], value: Any, loc: tuple[str | int, ...]
) -> list[tuple[str, str]]:
    errors = []
    for rule in schema.get("x-kubernetes-validations", []):
        try:
            passed = evaluate(rule["rule"], {"self": value})
        except CelError as error:
            errors.append((format_path(loc), f"rule evaluation error: {error}"))
            continue
        if passed is not True:
            errors.append((format_path(loc), rule["message"]))
    if isinstance(value, dict):
        for name, child in schema.get("properties", {}).items():
            if name in value:
                errors.extend(_rule_errors(child, value[name], (*loc, name)))
    elif isinstance(value, list) and "items" in schema:
        keys = schema.get("x-kubernetes-list-map-keys", [])
        seen = set()
        for index, item in enumerate(value):
            if schema.get("x-kubernetes-list-type") == "map" and isinstance(item, dict):
                key = tuple(item.get(name) for name in keys)
                if key in seen:
                    errors.append((format_path((*loc, index)), f"Duplicate value: {key}"))
                seen.add(key)
            errors.extend(_rule_errors(schema["items"], item, (*loc, index)))
    return errors
