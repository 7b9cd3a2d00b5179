"""The generated CRD: committed, structural, valid for Kubernetes, and as strict as it can be."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import kubernetes_validate
import pytest
import yaml

from kubesteps.pipeline.cel_compile import check_expression
from kubesteps.pipeline.crd import crd, crd_yaml
from kubesteps.pipeline.semantics import MAX_DEPTH

from .crd_schema import openapi_schema, schema_errors
from .malformed import delay, pipeline

ROOT = pathlib.Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "crds" / "pipelines.kubesteps.dev.yaml"


def _nodes(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, child in schema.get("properties", {}).items():
        yield from _nodes(child, f"{path}.{name}")
    if "items" in schema:
        yield from _nodes(schema["items"], f"{path}[]")


def test_the_committed_crd_is_the_generated_one() -> None:
    assert COMMITTED.read_text() == crd_yaml(), (
        "crds/pipelines.kubesteps.dev.yaml is out of date with the model; regenerate it (and "
        "the Helm chart's copy) with `make crd`"
    )


def test_the_committed_template_crd_is_the_generated_one() -> None:
    committed = ROOT / "crds" / "pipelinetemplates.kubesteps.dev.yaml"
    chart = ROOT / "charts" / "kubesteps" / "crds" / "pipelinetemplates.kubesteps.dev.yaml"
    assert committed.read_text() == crd_yaml("PipelineTemplate"), "run `make crd`"
    assert chart.read_text() == committed.read_text(), "run `make crd`"


def test_the_template_crd_refuses_a_template_without_steps() -> None:
    template = {
        "apiVersion": "kubesteps.dev/v1alpha1",
        "kind": "PipelineTemplate",
        "metadata": {"name": "t"},
        "spec": {"steps": []},
    }
    assert schema_errors(template) == [("spec.steps", "[] should be non-empty")]


def test_generation_is_deterministic() -> None:
    assert crd_yaml() == crd_yaml()


def test_the_yaml_parses_back_to_the_crd() -> None:
    assert yaml.safe_load(crd_yaml()) == crd()


def test_kubernetes_accepts_the_crd_manifest() -> None:
    kubernetes_validate.validate(crd(), "1.33.0", strict=True)


def test_the_schema_is_structural() -> None:
    for path, node in _nodes(openapi_schema()):
        assert not {"$ref", "anyOf", "oneOf", "allOf", "nullable"} & set(node), path
        # Only a node that keeps what is written (any JSON: a param's value) may be untyped.
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), (
            f"{path} has no type"
        )
        if "type" not in node:
            continue
        if node["type"] == "object" and path != ".metadata":  # the API server owns metadata
            assert "properties" in node or node.get("x-kubernetes-preserve-unknown-fields"), path
            assert "additionalProperties" not in node, path


def test_with_and_outputs_keep_unknown_fields() -> None:
    nodes = dict(_nodes(openapi_schema()))

    assert nodes[".spec.steps[].with"]["x-kubernetes-preserve-unknown-fields"] is True
    assert nodes[".status.steps[].outputs"]["x-kubernetes-preserve-unknown-fields"] is True
    assert nodes[".status.kopf"]["x-kubernetes-preserve-unknown-fields"] is True


def test_the_step_tree_is_unrolled_to_the_maximum_depth() -> None:
    nodes = dict(_nodes(openapi_schema()))
    deepest = ".spec.steps[]" + ".group.steps[]" * (MAX_DEPTH - 1)

    assert "action" in nodes[deepest]["properties"]
    assert "properties" not in nodes[f"{deepest}.group"]
    assert f"{deepest}.group.steps[]" not in nodes


def test_every_list_of_steps_is_a_map_keyed_by_name() -> None:
    lists = [node for path, node in _nodes(openapi_schema()) if path.endswith("steps")]

    assert lists
    for node in lists:
        assert node["x-kubernetes-list-type"] == "map"
        assert node["x-kubernetes-list-map-keys"] == ["name"]


def test_every_cel_rule_compiles() -> None:
    rules = [
        rule["rule"]
        for _, node in _nodes(openapi_schema())
        for rule in node.get("x-kubernetes-validations", [])
    ]
    assert rules
    for rule in rules:
        check_expression(rule, variables=["self"], path="rule")


def test_conditions_have_the_standard_shape() -> None:
    condition = dict(_nodes(openapi_schema()))[".status.conditions[]"]

    assert set(condition["required"]) == {
        "type",
        "status",
        "reason",
        "message",
        "lastTransitionTime",
    }
    assert condition["properties"]["status"]["enum"] == ["True", "False", "Unknown"]
    assert condition["properties"]["lastTransitionTime"]["format"] == "date-time"
    conditions = dict(_nodes(openapi_schema()))[".status.conditions"]
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]


def test_step_records_have_every_phase() -> None:
    phase = dict(_nodes(openapi_schema()))[".status.steps[].phase"]

    assert set(phase["enum"]) == {
        "Pending",
        "Running",
        "Waiting",
        "Retrying",
        "Succeeded",
        "Failed",
        "Skipped",
        "Throttled",
    }


def test_names_printer_columns_and_subresources() -> None:
    spec = crd()["spec"]
    version = spec["versions"][0]

    assert spec["names"]["shortNames"] == ["kpl"]
    assert spec["names"]["categories"] == ["kubesteps"]
    assert spec["scope"] == "Namespaced"
    assert version["subresources"] == {"status": {}}
    columns = {column["name"]: column["jsonPath"] for column in version["additionalPrinterColumns"]}
    assert columns == {
        "Ready": '.status.conditions[?(@.type=="Ready")].status',
        "Reason": '.status.conditions[?(@.type=="Ready")].reason',
        "Run": ".status.run.number",
        "Step": ".status.currentStep",
        "Next": ".status.schedule.nextScheduleTime",
        "Age": ".metadata.creationTimestamp",
    }


def test_a_status_the_operator_writes_passes_the_schema() -> None:
    manifest = pipeline(delay("first"))
    manifest["status"] = {
        "observedGeneration": 2,
        "currentStep": "first",
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "reason": "Waiting",
                "message": "first waits until 12:00",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
                "observedGeneration": 2,
            }
        ],
        "steps": [
            {
                "name": "first",
                "phase": "Waiting",
                "attempts": 1,
                "outputs": {"a": [1]},
                "run": 3,
                "attemptStartedAt": "2026-01-01T00:00:00Z",
            }
        ],
        "run": {
            "number": 3,
            "id": "demo-3",
            "trigger": "Retry",
            "phase": "Running",
            "startedAt": "2026-01-01T00:00:00Z",
            "specHash": "0123456789abcdef",
            "retries": 1,
            "retriedAt": "2026-01-01T00:01:00Z",
        },
        "history": [
            {
                "number": 2,
                "id": "demo-2",
                "trigger": "SpecChanged",
                "phase": "Cancelled",
                "reason": "Superseded",
                "startedAt": "2025-12-31T00:00:00Z",
                "finishedAt": "2026-01-01T00:00:00Z",
                "message": "superseded by run demo-3: the spec changed",
            }
        ],
        "handledTokens": {"retry": ["1767225660"]},
        "handledApprovals": [{"step": "gate", "value": "alice", "run": "demo-2"}],
        "kopf": {"progress": {}},
    }

    assert schema_errors(manifest) == []


def test_the_run_history_is_bounded_by_the_schema() -> None:
    entry = {
        "number": 1,
        "id": "demo-1",
        "trigger": "Created",
        "phase": "Succeeded",
        "startedAt": "2026-01-01T00:00:00Z",
    }
    manifest = pipeline(delay("first"))
    manifest["status"] = {"history": [entry] * 51}

    assert [path for path, _ in schema_errors(manifest)] == ["status.history"]


@pytest.mark.parametrize(
    ("status", "path"),
    [
        (
            {
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "Maybe",
                        "reason": "X",
                        "message": "",
                        "lastTransitionTime": "2026-01-01T00:00:00Z",
                    }
                ]
            },
            "status.conditions[0].status",
        ),
        (
            {
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "not ok",
                        "message": "",
                        "lastTransitionTime": "2026-01-01T00:00:00Z",
                    }
                ]
            },
            "status.conditions[0].reason",
        ),
        ({"steps": [{"name": "first", "phase": "Done"}]}, "status.steps[0].phase"),
        ({"observedGeneration": -1}, "status.observedGeneration"),
    ],
)
def test_a_malformed_status_is_refused(status: dict[str, Any], path: str) -> None:
    manifest = pipeline(delay("first"))
    manifest["status"] = status

    assert path in [found for found, _ in schema_errors(manifest)]
