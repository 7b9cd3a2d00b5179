"""Approvals you can trust: the chart's opt-in ValidatingAdmissionPolicy, on a real server.

Two ordinary users may both edit Pipelines in the namespace (the built-in ``edit`` role,
which the chart extends to Pipelines): alice is in the approvers' group, bob is not. The
API server itself lets only alice approve, only in her own name, and lets the operator
remove the answers it acted on.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from kubesteps.testing.control_plane import ControlPlane

from .conftest import (
    OPERATOR_VALUES,
    Account,
    Operator,
    apply,
    condition,
    dump,
    get_pipeline,
    of_kind,
    pipeline,
    ready,
    render_chart,
    settled,
    step_record,
    wait_for_pipeline,
    wait_until,
)

APPROVERS = "kubesteps-approvers"
GATE = "kubesteps.dev/approve.gate"


@pytest.fixture(scope="module")
def policy_namespace(control_plane: ControlPlane, operator_account: Account) -> Iterator[str]:
    """A namespace where alice and bob have ``edit``, bound to the chart's approval policy."""
    cp = control_plane
    name = f"approvals-{uuid.uuid4().hex[:6]}"
    cp.request(
        "POST",
        "/api/v1/namespaces",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
    )
    apply(
        cp,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "editors", "namespace": name},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "edit",
            },
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}
                for user in ("alice", "bob")
            ],
        },
    )
    objects = render_chart(
        cp,
        {
            **OPERATOR_VALUES,
            "watchNamespaces": [name],
            "approvals": {"policy": {"enabled": True, "groups": [APPROVERS]}},
        },
    )
    policy = of_kind(objects, "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")
    assert len(policy) == 2
    apply(cp, policy)
    # The chart's aggregated role reaches the built-in edit role (the clusterrole-aggregation
    # controller), then the policy reaches the admission plugin: both take a moment.
    wait_until(
        lambda: (
            cp.kubectl(
                "auth", "can-i", "patch", "pipelines", "-n", name, user="bob", check=False
            ).stdout.strip()
            == "yes"
        ),
        "bob may patch Pipelines through the edit role",
    )
    probe = pipeline(
        "probe", name, [{"name": "wait", "action": "delay", "with": {"duration": "1h"}}]
    )
    apply(cp, probe)
    attempts = iter(range(1_000_000))
    # A new value each time: an annotation the write leaves as it was is no change to refuse.
    wait_until(
        lambda: annotate(cp, name, "probe", "bob", f"{GATE}=bob{next(attempts)}").returncode != 0,
        "the policy refuses bob's approval",
    )
    yield name
    cp.kubectl("delete", "-f", "-", "--ignore-not-found", stdin=yaml.safe_dump_all(policy))
    cp.request("DELETE", f"/api/v1/namespaces/{name}")


def annotate(
    cp: ControlPlane, namespace: str, name: str, user: str, *pairs: str
) -> subprocess.CompletedProcess[str]:
    return cp.kubectl(
        "annotate", "--overwrite", "kpl", name, "-n", namespace, *pairs, user=user, check=False
    )


def gated(name: str, namespace: str) -> dict[str, Any]:
    return pipeline(
        name,
        namespace,
        [
            {"name": "gate", "action": "approval", "with": {"message": "ship it?"}},
        ],
    )


def waiting_for_approval(cp: ControlPlane, operator: Operator, namespace: str, name: str) -> None:
    def waiting() -> bool:
        found = condition(get_pipeline(cp, namespace, name), "Ready")
        return bool(found and found["reason"] == "Waiting")

    wait_until(waiting, f"{name} waits for its approval", logs=operator.output)


def annotations(cp: ControlPlane, namespace: str, name: str) -> dict[str, str]:
    return dict(get_pipeline(cp, namespace, name)["metadata"].get("annotations") or {})


def test_a_member_approves_in_her_own_name_and_the_operator_removes_the_answer(
    control_plane: ControlPlane, operator: Operator, policy_namespace: str
) -> None:
    cp, ns = control_plane, policy_namespace
    apply(cp, gated("release", ns), user="alice")
    waiting_for_approval(cp, operator, ns, "release")

    result = annotate(cp, ns, "release", "alice", f"{GATE}=alice")
    assert result.returncode == 0, result.stderr

    body = wait_for_pipeline(cp, ns, "release", ready, "approved", logs=operator.output)
    outputs = step_record(body, "gate")["outputs"]
    assert outputs["approvedBy"] == "alice"
    # The operator's ServiceAccount is no approver, yet it may remove the answer.
    wait_until(
        lambda: GATE not in annotations(cp, ns, "release"),
        "the operator removes the approval it acted on",
        logs=operator.output,
    )


def test_a_user_outside_the_groups_may_not_approve_or_use_a_verb(
    control_plane: ControlPlane, operator: Operator, policy_namespace: str
) -> None:
    cp, ns = control_plane, policy_namespace
    apply(cp, gated("bobs", ns), user="bob")  # bob may create and edit Pipelines
    waiting_for_approval(cp, operator, ns, "bobs")

    refused = annotate(cp, ns, "bobs", "bob", f"{GATE}=bob")
    assert refused.returncode != 0
    assert "ValidatingAdmissionPolicy" in refused.stderr, refused.stderr
    assert f"bob may not set {GATE}: only members of {APPROVERS} may approve" in refused.stderr, (
        refused.stderr
    )
    retry = annotate(cp, ns, "bobs", "bob", "kubesteps.dev/retry=1")
    assert "bob may not set kubesteps.dev/retry" in retry.stderr, retry.stderr
    # Nothing was written: the step still waits, and bob may still label his Pipeline.
    assert GATE not in annotations(cp, ns, "bobs")
    labelled = cp.kubectl("label", "kpl", "bobs", "-n", ns, "team=web", user="bob")
    assert labelled.returncode == 0


def test_a_manifest_that_carries_an_approval_is_refused_for_a_non_member(
    control_plane: ControlPlane, policy_namespace: str
) -> None:
    manifest = gated("preapproved", policy_namespace)
    manifest["metadata"]["annotations"] = {GATE: "bob"}

    refused = apply(control_plane, manifest, user="bob", check=False)

    assert refused.returncode != 0
    assert f"bob may not set {GATE}" in refused.stderr, refused.stderr


@pytest.mark.parametrize("answer", ["bob", "approve", "yes", "alice@other-1"])
def test_a_member_may_not_approve_in_another_name_or_anonymously(
    control_plane: ControlPlane, policy_namespace: str, answer: str
) -> None:
    cp, ns = control_plane, policy_namespace
    name = f"proxy-{uuid.uuid4().hex[:6]}"
    apply(cp, gated(name, ns), user="alice")

    refused = annotate(cp, ns, name, "alice", f"{GATE}={answer}")

    assert refused.returncode != 0
    assert (
        f"an approval names its approver: set {GATE} to alice (or alice@{name}-" in refused.stderr
    ), refused.stderr
    assert GATE not in annotations(cp, ns, name)


def test_a_member_may_bind_her_answer_to_a_run_or_reject(
    control_plane: ControlPlane, operator: Operator, policy_namespace: str
) -> None:
    cp, ns = control_plane, policy_namespace
    apply(cp, gated("bound", ns), user="alice")
    apply(cp, gated("rejected", ns), user="alice")
    waiting_for_approval(cp, operator, ns, "bound")
    waiting_for_approval(cp, operator, ns, "rejected")

    assert annotate(cp, ns, "bound", "alice", f"{GATE}=alice@bound-1").returncode == 0
    assert annotate(cp, ns, "rejected", "alice", f"{GATE}=reject").returncode == 0

    body = wait_for_pipeline(cp, ns, "bound", ready, "approved", logs=operator.output)
    assert step_record(body, "gate")["outputs"]["approvedBy"] == "alice"
    body = wait_for_pipeline(cp, ns, "rejected", settled, "settled", logs=operator.output)
    record = step_record(body, "gate")
    assert (record["phase"], record["reason"]) == ("Failed", "Rejected"), dump(record)


def test_anyone_who_may_edit_may_remove_an_answer(
    control_plane: ControlPlane, policy_namespace: str
) -> None:
    # An annotation no step reads (there is no step 'later'): it stays until removed.
    cp, ns = control_plane, policy_namespace
    apply(cp, gated("tidy", ns), user="alice")
    later = "kubesteps.dev/approve.later"
    assert annotate(cp, ns, "tidy", "alice", f"{later}=alice").returncode == 0

    removed = annotate(cp, ns, "tidy", "bob", f"{later}-")

    assert removed.returncode == 0, removed.stderr
    assert later not in annotations(cp, ns, "tidy")
