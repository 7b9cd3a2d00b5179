"""The chart's RBAC grants the operator exactly what it uses, and nothing with a wildcard."""

from __future__ import annotations

from itertools import product
from typing import Any

import helm_python as helm
import pytest

Triple = tuple[str, str, str]  # (apiGroup, resource, verb)


def triples(group: str, resource: str, *verbs: str) -> set[Triple]:
    return {(group, resource, verb) for verb in verbs}


# The reviewed allow-list: every API call the operator makes on namespaced resources.
# Pipelines: kopf lists, watches and patches them (annotations), the reconciler reads one
# with GET and writes its status with PATCH only; `update` on finalizers is what the
# OwnerReferencesPermissionEnforcement admission plugin asks of whoever sets
# blockOwnerDeletion in an ownerReference to a Pipeline. Core events: created, never patched
# (kopf's event posting is off); listed for a job step's Pod. Pods: a job step reads its
# Job's Pods (results, why it does not start) and their logs. Jobs: the `job` action lists
# a step's Jobs and creates one; the operator deletes those a timed-out attempt, a
# cancelled or a superseded run left.
# Secrets: the `http` action reads the one a step names. A `pipeline` step creates its child
# Pipeline; a uses step reads its PipelineTemplate with GET ...
NAMESPACED_NEEDS = (
    triples("kubesteps.dev", "pipelines", "get", "list", "watch", "patch", "create")
    | triples("kubesteps.dev", "pipelinetemplates", "get")
    | triples("kubesteps.dev", "pipelines/status", "patch")
    | triples("kubesteps.dev", "pipelines/finalizers", "update")
    | triples("", "events", "create", "list")
    | triples("", "pods", "list")
    | triples("", "pods/log", "get")
    | triples("batch", "jobs", "create", "list", "delete")
    | triples("", "secrets", "get")
    | triples("coordination.k8s.io", "leases", "get", "create", "patch")  # spec.mutex
)
MUTEX_NEEDS = triples("coordination.k8s.io", "leases", "get", "create", "patch")
# ... kopf's cluster-scoped reads (namespace observer, CRD scanning) ...
CLUSTER_SCOPED_NEEDS = triples("", "namespaces", "get", "list", "watch") | triples(
    "apiextensions.k8s.io", "customresourcedefinitions", "get", "list", "watch"
)
# ... and leader election, which must stay inside the release namespace (read, created
# once, then written with conditional merge patches).
LEASE_NEEDS = triples("coordination.k8s.io", "leases", "get", "create", "patch")

PIPELINE_EDIT = (
    triples(
        "kubesteps.dev",
        "pipelines",
        "get",
        "list",
        "watch",
        "create",
        "update",
        "patch",
        "delete",
        "deletecollection",
    )
    | triples("kubesteps.dev", "pipelines/status", "get", "list", "watch")
    | triples(
        "kubesteps.dev",
        "pipelinetemplates",
        "get",
        "list",
        "watch",
        "create",
        "update",
        "patch",
        "delete",
        "deletecollection",
    )
)
PIPELINE_VIEW = (
    triples("kubesteps.dev", "pipelines", "get", "list", "watch")
    | triples("kubesteps.dev", "pipelines/status", "get", "list", "watch")
    | triples("kubesteps.dev", "pipelinetemplates", "get", "list", "watch")
)

RBAC_KINDS = {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}


def rule_triples(rules: list[dict[str, Any]]) -> set[Triple]:
    return {
        (group, resource, verb)
        for rule in rules
        for group, resource, verb in product(rule["apiGroups"], rule["resources"], rule["verbs"])
    }


def role_key(obj: dict[str, Any]) -> tuple[str, str | None, str]:
    namespace = obj["metadata"].get("namespace") if obj["kind"] == "Role" else None
    return obj["kind"], namespace, obj["metadata"]["name"]


def operator_grants(
    objects: list[dict[str, Any]], service_account: str, namespace: str
) -> dict[str | None, set[Triple]]:
    """What the operator's ServiceAccount may do, by scope: None is cluster-wide."""
    roles = {role_key(obj): obj for obj in objects if obj["kind"] in {"Role", "ClusterRole"}}
    grants: dict[str | None, set[Triple]] = {}
    for binding in objects:
        if binding["kind"] not in {"RoleBinding", "ClusterRoleBinding"}:
            continue
        if {"kind": "ServiceAccount", "name": service_account, "namespace": namespace} not in (
            binding["subjects"]
        ):
            continue
        scope = binding["metadata"]["namespace"] if binding["kind"] == "RoleBinding" else None
        ref = binding["roleRef"]
        role_namespace = scope if ref["kind"] == "Role" else None
        role = roles.get((ref["kind"], role_namespace, ref["name"]))
        assert role is not None, f"{binding['metadata']['name']} refers to a missing {ref}"
        grants.setdefault(scope, set()).update(rule_triples(role["rules"]))
    return grants


def extra_rule_triples(values: dict[str, Any]) -> set[Triple]:
    return rule_triples(values.get("rbac", {}).get("extraRules", []))


def test_no_wildcard_in_any_rule(render: Any, variants: dict[str, Any], variant: str) -> None:
    for obj in render(variants[variant]):
        if obj["kind"] not in {"Role", "ClusterRole"}:
            continue
        for rule in obj["rules"]:
            for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
                assert not any("*" in item for item in rule.get(field, [])), (
                    f"{obj['kind']}/{obj['metadata']['name']} has a wildcard in {field}: {rule}"
                )


def test_operator_permissions_are_exactly_the_reviewed_list(
    render: Any, variants: dict[str, Any], variant: str, release_namespace: str
) -> None:
    values = variants[variant]
    grants = operator_grants(render(values), "ks-kubesteps", release_namespace)
    namespaced = NAMESPACED_NEEDS | extra_rule_triples(values)
    if not values.get("mutex", {}).get("enabled", True):
        namespaced -= MUTEX_NEEDS
    expected: dict[str | None, set[Triple]]
    if values.get("watchNamespaces"):
        expected = {None: CLUSTER_SCOPED_NEEDS} | {
            namespace: set(namespaced) for namespace in values["watchNamespaces"]
        }
    else:
        expected = {None: namespaced | CLUSTER_SCOPED_NEEDS}
    if values.get("leaderElection", {}).get("enabled"):
        expected[release_namespace] = expected.get(release_namespace, set()) | LEASE_NEEDS
    assert grants == expected


def _is_mutex_rule(rule: dict[str, Any]) -> bool:
    """The rule spec.mutex needs (in the operator's namespaced rules)."""
    return rule == {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "verbs": ["get", "create", "patch"],
    }


def test_mutex_leases_are_granted_unless_mutexes_are_off(render: Any) -> None:
    def lease_rules(values: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            rule
            for obj in render(values)
            if obj["kind"] in {"Role", "ClusterRole"}
            for rule in obj["rules"]
            if "leases" in rule["resources"]
        ]

    assert [_is_mutex_rule(rule) for rule in lease_rules({})] == [True]
    assert lease_rules({"mutex": {"enabled": False}}) == []


def test_leader_election_leases_are_granted_only_by_a_role_in_the_release_namespace(
    render: Any, variants: dict[str, Any], variant: str, release_namespace: str
) -> None:
    values = {**variants[variant], "mutex": {"enabled": False}}
    lease_rules = [
        (obj, rule)
        for obj in render(values)
        if obj["kind"] in {"Role", "ClusterRole"}
        for rule in obj["rules"]
        if "leases" in rule["resources"]
    ]
    if not values.get("leaderElection", {}).get("enabled"):
        assert lease_rules == []
        return
    lease_name = values["leaderElection"].get("leaseName", "kubesteps-operator")
    assert lease_rules, "leader election is on but no rule grants leases"
    for obj, rule in lease_rules:
        assert obj["kind"] == "Role"
        assert obj["metadata"]["namespace"] == release_namespace
        if rule["verbs"] != ["create"]:
            # Only `create` cannot be narrowed to the one Lease, which does not exist yet.
            assert rule.get("resourceNames") == [lease_name]


def test_leader_election_is_off_for_a_single_replica_by_default(render: Any) -> None:
    objects = render({})
    assert not any(
        "leases" in rule["resources"] and not _is_mutex_rule(rule)
        for obj in objects
        if obj["kind"] in {"Role", "ClusterRole"}
        for rule in obj["rules"]
    )


def test_namespaced_install_binds_a_role_in_each_watched_namespace(
    render: Any, variants: dict[str, Any]
) -> None:
    objects = render(variants["namespaced"])
    roles = {obj["metadata"]["namespace"] for obj in objects if obj["kind"] == "Role"}
    bindings = {obj["metadata"]["namespace"] for obj in objects if obj["kind"] == "RoleBinding"}
    assert roles == bindings == {"team-a", "team-b"}
    cluster_bindings = [obj for obj in objects if obj["kind"] == "ClusterRoleBinding"]
    assert [b["roleRef"]["name"] for b in cluster_bindings] == ["ks-kubesteps-cluster-reads"]


def test_users_get_pipelines_through_the_aggregated_default_roles(render: Any) -> None:
    objects = render({})
    roles = {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == "ClusterRole"}
    edit, view = roles["ks-kubesteps-edit"], roles["ks-kubesteps-view"]
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert rule_triples(edit["rules"]) == PIPELINE_EDIT
    assert rule_triples(view["rules"]) == PIPELINE_VIEW
    # They extend the built-in roles; nothing binds them to the operator.
    bound = {obj["roleRef"]["name"] for obj in objects if obj["kind"].endswith("Binding")}
    assert bound.isdisjoint({"ks-kubesteps-edit", "ks-kubesteps-view"})


def test_aggregated_roles_can_be_left_out(render: Any) -> None:
    names = {
        obj["metadata"]["name"]
        for obj in render({"rbac": {"aggregateToDefaultRoles": False}})
        if obj["kind"] == "ClusterRole"
    }
    assert names == {"ks-kubesteps"}


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({"apiGroups": ["*"], "resources": ["deployments"], "verbs": ["get"]}, "apiGroups"),
        ({"apiGroups": ["apps"], "resources": ["*"], "verbs": ["get"]}, "resources"),
        ({"apiGroups": ["apps"], "resources": ["deployments/*"], "verbs": ["get"]}, "resources"),
        ({"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["*"]}, "verbs"),
    ],
)
def test_extra_rule_wildcards_are_refused(chart: Any, rule: dict[str, Any], field: str) -> None:
    with pytest.raises(helm.HelmRenderError) as caught:
        chart.render({"rbac": {"extraRules": [rule]}}, name="ks", namespace="kubesteps-system")
    assert f"rbac.extraRules[0].{field} contains the wildcard" in str(caught.value)
    assert "rbac.allowWildcards=true" in str(caught.value)


def test_extra_rule_wildcards_pass_when_deliberately_allowed(render: Any) -> None:
    rule = {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["*"]}
    objects = render({"rbac": {"extraRules": [rule], "allowWildcards": True}})
    operator_role = next(
        obj
        for obj in objects
        if obj["kind"] == "ClusterRole" and obj["metadata"]["name"] == "ks-kubesteps"
    )
    assert rule in operator_role["rules"]


def test_no_rbac_objects_when_rbac_is_managed_elsewhere(render: Any) -> None:
    objects = render({"rbac": {"create": False}})
    assert {obj["kind"] for obj in objects}.isdisjoint(RBAC_KINDS)


def test_an_existing_service_account_can_be_used(render: Any, release_namespace: str) -> None:
    objects = render({"serviceAccount": {"create": False, "name": "platform-operator"}})
    assert [obj for obj in objects if obj["kind"] == "ServiceAccount"] == []
    deployment = next(obj for obj in objects if obj["kind"] == "Deployment")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "platform-operator"
    grants = operator_grants(objects, "platform-operator", release_namespace)
    assert grants == {None: NAMESPACED_NEEDS | CLUSTER_SCOPED_NEEDS}
