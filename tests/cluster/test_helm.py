"""The chart with the real ``helm`` (v4, built with the control plane) against the real API
server: install (the CRD from ``crds/``, the release's objects), values.schema.json
enforced, upgrade, uninstall. No image is pulled (no kubelet): the checks stop at objects.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from kubesteps.testing.control_plane import ApiStatusError, ControlPlane
from tests.packaging.conftest import VARIANTS

from .conftest import CHART, REPO, helm, render_chart

RELEASE = "kubesteps"
NAMESPACE = "kubesteps-helm"
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/pipelines.kubesteps.dev"
CRD_FILE = REPO / "crds" / "pipelines.kubesteps.dev.yaml"
IMAGE = ["--set", "image.repository=registry.example.com/kubesteps"]


def exists(cp: ControlPlane, path: str) -> bool:
    try:
        cp.request("GET", path)
    except ApiStatusError as error:
        if error.status == 404:
            return False
        raise
    return True


@pytest.fixture(scope="module")
def without_the_crd(control_plane: ControlPlane) -> Iterator[None]:
    """The session's CRD removed, so that helm installs it; put back afterwards if needed."""
    cp = control_plane
    cp.request("DELETE", CRD_PATH)
    cp.wait_for(lambda: not exists(cp, CRD_PATH), "the CRD is gone", timeout=60)
    yield
    if not exists(cp, CRD_PATH):
        cp.install_crd(yaml.safe_load(CRD_FILE.read_text()))


def deployment(cp: ControlPlane) -> dict[str, Any]:
    body: dict[str, Any] = cp.request(
        "GET", f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{RELEASE}"
    )
    return body


def test_install_upgrade_and_uninstall_with_the_real_helm(
    control_plane: ControlPlane, without_the_crd: None
) -> None:
    cp = control_plane
    installed = helm(
        cp, "install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--create-namespace", *IMAGE
    )
    assert "STATUS: deployed" in installed.stdout
    assert f"is installed as {RELEASE} in namespace {NAMESPACE}" in installed.stdout  # NOTES

    # Helm created the CRD from crds/ first, and the server serves it.
    def established() -> dict[str, Any] | None:
        found: dict[str, Any] = cp.request("GET", CRD_PATH)
        conditions = (found.get("status") or {}).get("conditions") or []
        serving = any(c["type"] == "Established" and c["status"] == "True" for c in conditions)
        return found if serving else None

    crd = cp.wait_for(established, "the CRD is established")
    ours = yaml.safe_load(CRD_FILE.read_text())
    assert crd["spec"]["versions"][0]["schema"] == ours["spec"]["versions"][0]["schema"]
    operator = deployment(cp)
    (container,) = operator["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example.com/kubesteps:0.1.0"
    assert operator["spec"]["strategy"]["type"] == "Recreate"
    account = f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/{RELEASE}"
    role = f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{RELEASE}"
    binding = f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{RELEASE}"
    service = f"/api/v1/namespaces/{NAMESPACE}/services/{RELEASE}-metrics"
    for path in (account, role, binding, service):
        assert exists(cp, path), path
    # The Deployment controller made a ReplicaSet and a Pod; no kubelet will run it.
    cp.wait_for(
        lambda: cp.request("GET", f"/apis/apps/v1/namespaces/{NAMESPACE}/replicasets")["items"],
        "a ReplicaSet",
    )

    upgraded = helm(
        cp,
        "upgrade",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        *IMAGE,
        "--set",
        "replicaCount=2",
        "--set",
        "leaderElection.enabled=true",
        "--set",
        f"watchNamespaces={{{NAMESPACE}}}",
        "--set",
        "approvals.policy.enabled=true",
        "--set",
        "approvals.policy.groups={release-managers}",
    )
    assert "REVISION: 2" in upgraded.stdout
    operator = deployment(cp)
    assert operator["spec"]["replicas"] == 2
    assert operator["spec"]["strategy"]["type"] == "RollingUpdate"
    args = operator["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--leader-election" in args
    assert args[:2] == ["--namespace", NAMESPACE]
    lease_role = (
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{NAMESPACE}/roles/{RELEASE}-leader-election"
    )
    assert exists(cp, lease_role)
    assert exists(cp, f"/apis/rbac.authorization.k8s.io/v1/namespaces/{NAMESPACE}/roles/{RELEASE}")
    assert not exists(cp, binding), "namespaced mode binds a Role, not the ClusterRole"
    policy = cp.request(
        "GET",
        f"/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/{RELEASE}-approvals",
    )
    assert policy["spec"]["failurePolicy"] == "Fail"  # what it admits: test_approval_policy.py
    policy_binding = cp.request(
        "GET",
        "/apis/admissionregistration.k8s.io/v1/"
        f"validatingadmissionpolicybindings/{RELEASE}-approvals",
    )
    assert policy_binding["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"][0][
        "values"
    ] == [NAMESPACE]

    uninstalled = helm(cp, "uninstall", RELEASE, "--namespace", NAMESPACE, "--wait")
    assert f'release "{RELEASE}" uninstalled' in uninstalled.stdout
    for path in (
        account,
        role,
        service,
        lease_role,
        f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{RELEASE}",
        f"/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/{RELEASE}-approvals",
    ):
        assert not exists(cp, path), path
    assert exists(cp, CRD_PATH), "helm leaves the CRD (and every Pipeline) in place"
    assert RELEASE not in helm(cp, "list", "--all-namespaces", "--short").stdout.split()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["--set", "replicaCount=0"], "at '/replicaCount': minimum: got 0, want 1"),
        (["--set", "logFormat=xml"], "at '/logFormat': value must be one of 'text', 'json'"),
        (["--set", "replicaCount=2"], "more than one replica needs leader election"),
    ],
)
def test_helm_install_refuses_bad_values_and_creates_nothing(
    control_plane: ControlPlane, values: list[str], message: str
) -> None:
    refused = helm(
        control_plane,
        "install",
        "refused",
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--create-namespace",
        *values,
        check=False,
    )

    assert refused.returncode != 0
    assert message in refused.stderr, refused.stderr
    listed = helm(
        control_plane, "list", "--all-namespaces", "--short", "--deployed", "--failed", "--pending"
    ).stdout.split()
    assert "refused" not in listed
    assert not exists(
        control_plane, "/apis/apps/v1/namespaces/kubesteps-helm/deployments/refused-kubesteps"
    )


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_the_real_helm_renders_what_the_in_process_checks_render(
    control_plane: ControlPlane, variant: str
) -> None:
    # tests/packaging renders with helm-python-sdk (the Helm Go SDK in-process); the real
    # binary must give the same objects, or those checks would check something else.
    import helm_python

    with helm_python.Chart.load(str(CHART)) as chart:
        files = chart.render(VARIANTS[variant], name="ks", namespace="kubesteps-system")
    in_process = sorted(
        (
            doc
            for path, text in files.items()
            if path.endswith(".yaml")
            for doc in yaml.safe_load_all(text)
            if doc
        ),
        key=lambda o: (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]),
    )
    real = sorted(
        render_chart(control_plane, VARIANTS[variant]),
        key=lambda o: (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]),
    )

    assert real == in_process
