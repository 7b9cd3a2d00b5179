"""Generate the ``pipelines.kubesteps.dev`` CustomResourceDefinition from the pydantic models.

Pydantic gives a JSON schema with ``$ref``s, ``anyOf`` for optional fields and a recursive
step type; the API server wants a *structural* OpenAPI v3 schema: every node typed, no
references, no recursion. The conversion inlines every reference, drops ``null`` branches,
and unrolls the step tree to ``MAX_DEPTH`` levels (the model enforces the same depth).
Defaults are left out on purpose: the operator applies them when it parses a spec, so
``kubectl get -o yaml`` shows what the user wrote.
"""

from __future__ import annotations

from typing import Any

import yaml

from kubesteps.pipeline.model import API_VERSION, KIND, MAX_SWITCH_CASES, PipelineSpec
from kubesteps.pipeline.semantics import MAX_DEPTH
from kubesteps.pipeline.status import PipelineStatus
from kubesteps.pipeline.template import TEMPLATE_KIND, TEMPLATE_PLURAL, PipelineTemplateSpec

GROUP, VERSION = API_VERSION.split("/")
PLURAL = "pipelines"
SINGULAR = "pipeline"
CRD_NAME = f"{PLURAL}.{GROUP}"

# Nested levels repeat the fields of the first; describing them again would double the
# CRD's size (kubectl apply keeps a copy of the whole object in an annotation of <= 256 KiB).
DESCRIBED_LEVELS = 1
_STEP_DEFINITIONS = frozenset({"Step", "StepTemplate"})
_CONTAINER_FIELDS = ("parallel", "group", "forEach", "switch")
# The level a finally step's schema starts at: finally steps nest 2 levels deep (one more
# copy of the whole step tree would double the CRD).
FINALLY_LEVEL = MAX_DEPTH - 1
# Keys copied as they are from the JSON schema into the OpenAPI schema.
_KEPT = frozenset(
    {
        "type",
        "description",
        "enum",
        "format",
        "pattern",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "minItems",
        "maxItems",
        "maxProperties",
        "required",
        "x-kubernetes-validations",
        "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-preserve-unknown-fields",
    }
)
# Keys with no meaning for the API server.
_DROPPED = frozenset({"title", "default", "additionalProperties", "$defs"})


class SchemaConversionError(ValueError):
    """The model produced a JSON schema construct the CRD cannot express."""


def _convert(node: dict[str, Any], definitions: dict[str, Any], level: int) -> dict[str, Any]:
    """One JSON-schema node as a structural schema; ``level`` is the depth of the current step."""
    node = dict(node)
    reference = node.pop("$ref", None)
    if reference is not None:
        name = reference.rsplit("/", 1)[-1]
        # The referencing field's own keys (its description) win over the definition's.
        merged = {**definitions[name], **node}
        if name in _STEP_DEFINITIONS:
            return _step(merged, definitions, level + 1)
        return _convert(merged, definitions, level)
    any_of = node.pop("anyOf", None)
    if any_of is not None:
        branches = [branch for branch in any_of if branch.get("type") != "null"]
        if len(branches) != 1:
            raise SchemaConversionError(f"cannot express a union of {branches} in a CRD")
        return _convert({**branches[0], **node}, definitions, level)

    schema: dict[str, Any] = {}
    for key, value in node.items():
        if key == "description" and level > DESCRIBED_LEVELS:
            continue
        if key in _KEPT:
            schema[key] = sorted(value) if key == "required" else value
        elif key == "properties":
            schema[key] = {
                name: _convert(child, definitions, level) for name, child in value.items()
            }
        elif key == "items":
            schema[key] = _convert(value, definitions, level)
        elif key == "const":
            schema["enum"] = [value]
        elif key not in _DROPPED:
            raise SchemaConversionError(f"no CRD equivalent for JSON schema key {key!r}")
    if schema.get("type") == "object" and "properties" not in schema:
        # A free-form object (a step's `with`, outputs): kept as written, never pruned.
        schema["x-kubernetes-preserve-unknown-fields"] = True
    return schema


def _switch(level: int) -> dict[str, Any]:
    """A switch's branches, kept as written: each copy of the step schema in the tree would
    multiply the CRD's size and CEL cost again, so the API server checks their shape only
    as objects, and the operator (and ``kubesteps validate``) checks them in full."""
    switch: dict[str, Any] = {
        "type": "object",
        "required": ["steps"],
        "properties": {
            "steps": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_SWITCH_CASES,
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string", "maxLength": 63}},
                    "x-kubernetes-preserve-unknown-fields": True,
                },
            }
        },
    }
    if level <= DESCRIBED_LEVELS:
        switch["description"] = (
            "Branches of which exactly one runs: the first whose when all hold (a last one "
            "without when is the default); the others are skipped."
        )
    return switch


_ONE_KIND = "a step needs exactly one of"
_ONE_OF_THE_LEAVES = {
    "rule": "has(self.action) != has(self.uses)",
    "message": f"a step needs exactly one of action, uses (at level {MAX_DEPTH}, the deepest)",
}


def _step(definition: dict[str, Any], definitions: dict[str, Any], level: int) -> dict[str, Any]:
    if level < MAX_DEPTH:
        definition = {**definition, "properties": {**definition["properties"], "switch": {}}}
        converted = _convert(definition, definitions, level)
        converted["properties"]["switch"] = _switch(level)
        return converted
    # At the deepest level, containers would need the step schema again (the recursion a
    # structural schema cannot have), so they are opaque here and a rule refuses them.
    properties = dict(definition["properties"])
    for field in _CONTAINER_FIELDS:
        properties[field] = {
            "type": "object",
            "description": f"Not allowed at level {MAX_DEPTH}: steps nest at most "
            f"{MAX_DEPTH} levels deep.",
        }
    # So of the kinds only action and uses are left, and the one-kind rule needs test only
    # those two: at this level it applies to the most steps (100 * 16 * 16 * 16), so its
    # cost is what keeps the CRD within the API server's CEL budget.
    rules = [
        *(
            _ONE_OF_THE_LEAVES if rule["message"].startswith(_ONE_KIND) else rule
            for rule in definition.get("x-kubernetes-validations", [])
        ),
        {
            "rule": " && ".join(f"!has(self.{field})" for field in _CONTAINER_FIELDS),
            "message": f"steps nest at most {MAX_DEPTH} levels deep: a step at level "
            f"{MAX_DEPTH} must be an action step",
        },
    ]
    shallow = {**definition, "properties": properties, "x-kubernetes-validations": rules}
    return _convert(shallow, definitions, level)


def _model_schema(
    model: type[PipelineSpec] | type[PipelineStatus] | type[PipelineTemplateSpec],
) -> dict[str, Any]:
    json_schema = model.model_json_schema(by_alias=True, mode="validation")
    definitions = json_schema.get("$defs", {})
    final = json_schema.get("properties", {}).get("finally")
    if final is None:
        return _convert(json_schema, definitions, level=0)
    properties = {k: v for k, v in json_schema["properties"].items() if k != "finally"}
    converted = _convert({**json_schema, "properties": properties}, definitions, level=0)
    items = {**definitions["Step"], "description": "A step run once the steps end."}
    converted["properties"]["finally"] = {
        **_convert({k: v for k, v in final.items() if k != "items"}, definitions, level=0),
        "items": _step(items, definitions, FINALLY_LEVEL),
    }
    return converted


def open_api_schema() -> dict[str, Any]:
    """The ``openAPIV3Schema`` of a Pipeline object."""
    spec = _model_schema(PipelineSpec)
    status = _model_schema(PipelineStatus)
    return {
        "type": "object",
        "description": "A Pipeline runs its steps in order and reports each step in its status.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }


def ready_column(name: str, field: str) -> dict[str, Any]:
    """A printer column that shows one field of the Ready condition."""
    return {
        "name": name,
        "type": "string",
        "jsonPath": f'.status.conditions[?(@.type=="Ready")].{field}',
    }


def crd() -> dict[str, Any]:
    """The CustomResourceDefinition, as a dict ready for YAML."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                # `pl` is taken by other projects' pipelines; a clash makes kubectl warn.
                "shortNames": ["kpl"],
                "categories": ["kubesteps"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        ready_column("Ready", "status"),
                        ready_column("Reason", "reason"),
                        {
                            "name": "Run",
                            "type": "integer",
                            "jsonPath": ".status.run.number",
                            "description": "The number of the current run.",
                        },
                        {"name": "Step", "type": "string", "jsonPath": ".status.currentStep"},
                        {
                            "name": "Next",
                            "type": "string",
                            "jsonPath": ".status.schedule.nextScheduleTime",
                            "description": "When the next scheduled run starts (spec.schedule).",
                        },
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                    "schema": {"openAPIV3Schema": open_api_schema()},
                }
            ],
        },
    }


TEMPLATE_CRD_NAME = f"{TEMPLATE_PLURAL}.{GROUP}"


def template_crd() -> dict[str, Any]:
    """The PipelineTemplate CustomResourceDefinition, as a dict ready for YAML."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": TEMPLATE_CRD_NAME},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": TEMPLATE_KIND,
                "listKind": f"{TEMPLATE_KIND}List",
                "plural": TEMPLATE_PLURAL,
                "singular": TEMPLATE_KIND.lower(),
                "shortNames": ["kplt"],
                "categories": ["kubesteps"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "additionalPrinterColumns": [
                        {"name": "Description", "type": "string", "jsonPath": ".spec.description"},
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "Params and steps that Pipelines run with a uses step.",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": _model_schema(PipelineTemplateSpec),
                            },
                        }
                    },
                }
            ],
        },
    }


class _Dumper(yaml.SafeDumper):
    """Writes repeated sub-schemas out in full: anchors and aliases confuse readers of a CRD."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def crd_yaml(kind: str = KIND) -> str:
    """A CRD as YAML (``kind`` Pipeline or PipelineTemplate): what ``kubesteps crd`` prints
    and the repository commits."""
    source = "model.py" if kind == KIND else "template.py"
    header = (
        f"# Generated by `kubesteps crd` from kubesteps/pipeline/{source}; do not edit.\n"
        "# Regenerate with `make crd` (this file and the Helm chart's copy).\n"
    )
    definition = crd() if kind == KIND else template_crd()
    body = yaml.dump(
        definition, Dumper=_Dumper, sort_keys=True, default_flow_style=False, width=100
    )
    return header + body
