"""DAGs, PipelineTemplates and child Pipelines on a real API server, through the operator
as the chart runs it (its ServiceAccount, the chart's RBAC): the examples reach Ready, a
template edit that changes the work starts a new run, a child is owned and collected with
its parent, and a cancel of the parent reaches the child's run."""

from __future__ import annotations

from typing import Any

import yaml

from kubesteps.testing.control_plane import ControlPlane

from .conftest import (
    EXAMPLES,
    PIPELINES,
    Operator,
    apply,
    get_pipeline,
    pipeline,
    step_record,
    wait_until,
)
from .test_operator import gone, until_ready, until_settled


def documents(name: str, namespace: str) -> list[dict[str, Any]]:
    found = [d for d in yaml.safe_load_all((EXAMPLES / name).read_text()) if d]
    for document in found:
        document["metadata"]["namespace"] = namespace
    return found


def test_the_dag_example_runs_its_branches_and_skips_the_unmet_need(
    control_plane: ControlPlane, operator: Operator, namespace: str
) -> None:
    apply(control_plane, documents("dag.yaml", namespace))

    body = until_ready(control_plane, operator, namespace, "build-graph")

    notify = step_record(body, "notify-failure")
    assert (notify["phase"], notify["reason"]) == ("Skipped", "NeedsNotMet")
    assert step_record(body, "report")["phase"] == "Succeeded"
    assert step_record(body, "sign")["phase"] == "Succeeded"


def test_a_template_is_read_with_the_charts_rbac_and_an_edit_of_it_starts_a_new_run(
    control_plane: ControlPlane, operator: Operator, namespace: str
) -> None:
    objects = documents("template.yaml", namespace)
    apply(control_plane, objects)
    body = until_ready(control_plane, operator, namespace, "release-train")
    stored = control_plane.request(
        "GET", f"{PIPELINES}/namespaces/{namespace}/pipelinetemplates/deploy"
    )
    assert body["status"]["run"]["templates"] == [
        {"name": "deploy", "resourceVersion": stored["metadata"]["resourceVersion"]}
    ]
    assert (
        step_record(body, "deploy-production-roll-out")["outputs"]["who"]
        == "3 replicas of production"
    )

    template = objects[0]
    template["spec"]["params"][1]["value"] = 4  # the default staging takes
    apply(control_plane, template)
    # Nothing watches templates: the Pipeline sees the edit at its next pass.
    control_plane.kubectl("annotate", "kpl", "release-train", "-n", namespace, "poke=1")

    def second_run() -> dict[str, Any] | None:
        current = get_pipeline(control_plane, namespace, "release-train")
        run = (current.get("status") or {}).get("run") or {}
        return current if run.get("number") == 2 and run.get("phase") == "Succeeded" else None

    body = wait_until(second_run, "run 2 after the template edit", logs=operator.output)
    assert body["status"]["run"]["trigger"] == "SpecChanged"
    assert step_record(body, "deploy-staging-roll-out")["outputs"]["who"] == "4 replicas of staging"


def test_a_child_pipeline_is_owned_returns_its_outputs_and_goes_with_its_parent(
    control_plane: ControlPlane, operator: Operator, namespace: str
) -> None:
    apply(control_plane, documents("child-pipeline.yaml", namespace))

    body = until_ready(control_plane, operator, namespace, "nightly")

    assert step_record(body, "done")["outputs"]["who"] == "Hello, eu-west-1!"
    path = f"{PIPELINES}/namespaces/{namespace}/pipelines/nightly-smoke-eu-1"
    child = control_plane.request("GET", path)
    (owner,) = child["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"]) == ("Pipeline", body["metadata"]["uid"])
    control_plane.kubectl("delete", "kpl", "nightly", "-n", namespace, "--wait=true")
    wait_until(lambda: gone(control_plane, path), "the child is garbage-collected")


def test_a_cancel_of_the_parent_cancels_the_childs_run(
    control_plane: ControlPlane, operator: Operator, namespace: str
) -> None:
    apply(
        control_plane,
        pipeline(
            "holder",
            namespace,
            [
                {
                    "name": "sub",
                    "action": "pipeline",
                    "with": {
                        "spec": {
                            "steps": [
                                {"name": "gate", "action": "approval", "with": {"message": "never"}}
                            ]
                        }
                    },
                },
            ],
        ),
    )
    child = "holder-sub-1"

    def child_waits() -> bool:
        try:
            found = get_pipeline(control_plane, namespace, child)
        except Exception:
            return False
        return (found.get("status") or {}).get("currentStep") == "gate"

    wait_until(child_waits, "the child waits for its approval", logs=operator.output)
    control_plane.kubectl("annotate", "kpl", "holder", "-n", namespace, "kubesteps.dev/cancel=stop")

    parent = until_settled(control_plane, operator, namespace, "holder")
    assert parent["status"]["run"]["phase"] == "Cancelled"
    cancelled = until_settled(control_plane, operator, namespace, child)
    assert cancelled["status"]["run"]["phase"] == "Cancelled"
