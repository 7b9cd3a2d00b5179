"""The CRD and the manifests, judged by a real kube-apiserver.

The generated CRD is accepted as it is (structural, within the CEL cost budget), every
example applies with plain ``kubectl apply`` (client-side validation on, strict field
validation), and the malformed Pipelines of the bad-input table are refused by the server
itself exactly where the CRD schema can tell.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
import yaml

from kubesteps.pipeline.crd import crd
from kubesteps.testing.control_plane import ApiStatusError, ControlPlane, CRDRefused
from tests.pipeline.malformed import MALFORMED, Malformed

from .conftest import EXAMPLES, PIPELINES, REPO, apply

CRD_NAME = "pipelines.kubesteps.dev"
# apiVersion, kind and metadata.name are the API server's business before any schema.
_BEFORE_THE_SCHEMA = ("apiVersion", "kind", "metadata.name")


def stored_crd(cp: ControlPlane) -> dict[str, Any]:
    body: dict[str, Any] = cp.request(
        "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{CRD_NAME}"
    )
    return body


def test_the_generated_crd_is_established_with_its_schema_unchanged(
    control_plane: ControlPlane,
) -> None:
    # The session fixture installed crds/pipelines.kubesteps.dev.yaml as it is in the repo.
    body = stored_crd(control_plane)
    conditions = {c["type"]: c["status"] for c in body["status"]["conditions"]}
    assert conditions["Established"] == "True"
    assert conditions["NamesAccepted"] == "True"
    assert "NonStructuralSchema" not in conditions
    ours = yaml.safe_load((REPO / "crds" / f"{CRD_NAME}.yaml").read_text())
    assert ours == crd(), "crds/ is stale: run make crd"
    (version,) = body["spec"]["versions"]
    assert version["schema"] == ours["spec"]["versions"][0]["schema"], (
        "the server changed the schema it was given"
    )
    assert (
        version["additionalPrinterColumns"]
        == ours["spec"]["versions"][0]["additionalPrinterColumns"]
    )
    assert body["status"]["acceptedNames"]["shortNames"] == ["kpl"]


def _tiny_crd(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    plural = f"{name}s"
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.refusals.kubesteps.dev"},
        "spec": {
            "group": "refusals.kubesteps.dev",
            "scope": "Namespaced",
            "names": {"kind": name.capitalize(), "plural": plural, "singular": name},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def test_a_crd_over_the_cel_cost_budget_is_refused_loudly(control_plane: ControlPlane) -> None:
    # Unbounded lists of unbounded strings, each checked with a regex: the estimated cost
    # is the rule's cost times every string it may run on.
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "names": {
                        "type": "array",
                        "items": {
                            "type": "array",
                            "items": {
                                "type": "string",
                                "x-kubernetes-validations": [{"rule": "self.matches('^[a-z]+$')"}],
                            },
                        },
                    },
                },
            }
        },
    }
    with pytest.raises(CRDRefused) as refused:
        control_plane.install_crd(_tiny_crd("costly", schema))

    assert "estimated rule cost exceeds budget" in str(refused.value)
    assert "x-kubernetes-validations[0].rule" in str(refused.value)


def test_a_non_structural_crd_is_refused_loudly(control_plane: ControlPlane) -> None:
    schema = {"type": "object", "properties": {"spec": {"properties": {"a": {"type": "string"}}}}}
    with pytest.raises(CRDRefused) as refused:
        control_plane.install_crd(_tiny_crd("shapeless", schema))

    assert "spec.validation.openAPIV3Schema.properties[spec].type: Required value" in str(
        refused.value
    )


def _example(path: str, namespace: str) -> dict[str, Any]:
    manifest: dict[str, Any] = yaml.safe_load((EXAMPLES / path).read_text())
    manifest["metadata"]["namespace"] = namespace
    return manifest


EXAMPLE_FILES = sorted(p.name for p in EXAMPLES.glob("*.yaml"))


def test_the_examples_folder_is_what_the_next_test_covers() -> None:
    assert len(EXAMPLE_FILES) >= 6
    assert {"hello.yaml", "job.yaml", "approval.yaml"} <= set(EXAMPLE_FILES)


def _documents(path: str, namespace: str) -> list[dict[str, Any]]:
    """Every object of an example file (PipelineTemplates first), in ``namespace``."""
    documents = [d for d in yaml.safe_load_all((EXAMPLES / path).read_text()) if d]
    for document in documents:
        document["metadata"]["namespace"] = namespace
    return documents


def test_the_template_crd_is_established_with_its_schema_unchanged(
    control_plane: ControlPlane,
) -> None:
    name = "pipelinetemplates.kubesteps.dev"
    body = control_plane.request(
        "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
    )
    conditions = {c["type"]: c["status"] for c in body["status"]["conditions"]}
    assert conditions["Established"] == "True"
    assert "NonStructuralSchema" not in conditions
    ours = yaml.safe_load((REPO / "crds" / f"{name}.yaml").read_text())
    assert body["spec"]["versions"][0]["schema"] == ours["spec"]["versions"][0]["schema"]
    assert body["status"]["acceptedNames"]["shortNames"] == ["kplt"]


@pytest.mark.parametrize("path", EXAMPLE_FILES)
def test_every_example_applies_with_plain_kubectl_apply(
    control_plane: ControlPlane, namespace: str, path: str
) -> None:
    documents = _documents(path, namespace)
    shown = [f"{d['kind'].lower()}.kubesteps.dev/{d['metadata']['name']}" for d in documents]
    manifest = documents[-1]
    name = manifest["metadata"]["name"]

    created = apply(control_plane, documents)
    assert created.stdout.strip().splitlines() == [f"{s} created" for s in shown], created.stderr
    assert "Warning" not in created.stderr, created.stderr  # no unknown field was pruned
    again = apply(control_plane, documents)
    assert again.stdout.strip().splitlines() == [f"{s} unchanged" for s in shown]
    # Server-side apply too (the field manager takes over the fields kubectl apply set).
    server_side = control_plane.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        "-",
        stdin=yaml.safe_dump_all(documents),
    )
    assert server_side.stdout.strip().splitlines() == [f"{s} serverside-applied" for s in shown]

    stored = control_plane.request("GET", f"{PIPELINES}/namespaces/{namespace}/pipelines/{name}")
    assert stored["metadata"]["generation"] == 1
    # What the server stored is the manifest, plus what the schema defaults.
    assert [s["name"] for s in stored["spec"]["steps"]] == [
        s["name"] for s in manifest["spec"]["steps"]
    ]


def test_kubectl_validation_refuses_an_unknown_field_before_sending(
    control_plane: ControlPlane, namespace: str
) -> None:
    manifest = _example("hello.yaml", namespace)
    manifest["spec"]["stepz"] = []

    refused = apply(control_plane, manifest, check=False)

    assert refused.returncode != 0
    assert 'unknown field "spec.stepz"' in refused.stderr, refused.stderr


def _named(case: Malformed, namespace: str) -> dict[str, Any]:
    manifest = copy.deepcopy(case.manifest)
    manifest["metadata"]["name"] = re.sub(r"[^a-z0-9-]", "-", case.id.lower())[:63].strip("-")
    manifest["metadata"]["namespace"] = namespace
    return manifest


def _create(cp: ControlPlane, namespace: str, manifest: dict[str, Any]) -> ApiStatusError | None:
    """A create with strict field validation (kubectl apply's default), not persisted."""
    try:
        cp.request(
            "POST",
            f"{PIPELINES}/namespaces/{namespace}/pipelines",
            manifest,
            params={"fieldValidation": "Strict", "dryRun": "All"},
        )
    except ApiStatusError as error:
        return error
    return None


def _reaches_the_crd_schema(case: Malformed) -> bool:
    return case.validate.path not in _BEFORE_THE_SCHEMA


SCHEMA_CASES = [c for c in MALFORMED if c.schema is not None]
OPERATOR_CASES = [c for c in MALFORMED if c.schema is None and _reaches_the_crd_schema(c)]
NOT_PIPELINES = [c for c in MALFORMED if not _reaches_the_crd_schema(c)]


def _named_fields(error: ApiStatusError) -> str:
    """Everything in a refusal that names a field: the message and each cause."""
    return " ".join(
        [error.message, *(f"{c.get('field', '')} {c.get('message', '')}" for c in error.causes)]
    )


@pytest.mark.parametrize("case", SCHEMA_CASES, ids=lambda case: case.id)
def test_what_the_crd_can_refuse_the_server_refuses_at_the_field(
    control_plane: ControlPlane, namespace: str, case: Malformed
) -> None:
    assert case.schema is not None
    error = _create(control_plane, namespace, _named(case, namespace))

    assert error is not None, f"{case.id}: the server accepted it"
    assert error.status in (400, 422), error
    assert case.schema.path in _named_fields(error), f"{case.id}: {error}"


@pytest.mark.parametrize("case", OPERATOR_CASES, ids=lambda case: case.id)
def test_what_only_the_operator_can_tell_the_server_accepts(
    control_plane: ControlPlane, namespace: str, case: Malformed
) -> None:
    # The table promises the operator's test that these reach it (Ready=False/InvalidSpec).
    assert _create(control_plane, namespace, _named(case, namespace)) is None


@pytest.mark.parametrize("case", NOT_PIPELINES, ids=lambda case: case.id)
def test_what_is_no_pipeline_of_this_version_the_server_refuses_before_the_schema(
    control_plane: ControlPlane, namespace: str, case: Malformed
) -> None:
    manifest = copy.deepcopy(case.manifest)
    manifest["metadata"]["namespace"] = namespace
    if "name" in manifest["metadata"]:
        manifest["metadata"]["name"] = "not-a-pipeline"
    error = _create(control_plane, namespace, manifest)

    assert error is not None, f"{case.id}: the server accepted it"
    assert error.status in (400, 422), error


def test_the_tables_cover_the_whole_bad_input_corpus() -> None:
    assert len(SCHEMA_CASES) + len(OPERATOR_CASES) + len(NOT_PIPELINES) == len(MALFORMED)
    assert len(SCHEMA_CASES) >= 20
    assert len(NOT_PIPELINES) >= 3
