"""Helpers of the real-cluster suite: namespaces, the chart rendered by the real helm, the
operator's ServiceAccount with the chart's exact RBAC, and ``kubesteps operator`` processes.

Everything here is synchronous: the API server and the operator are other processes, so
the tests poll them with plain sleeps (no event loop to block).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from kubesteps.testing.control_plane import (
    ApiStatusError,
    ControlPlane,
    free_port,
    write_user_kubeconfig,
)

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "kubesteps"
EXAMPLES = REPO / "examples"
KUBESTEPS = Path(sys.executable).with_name("kubesteps")
API = "kubesteps.dev/v1alpha1"
PIPELINES = "/apis/kubesteps.dev/v1alpha1"

# The chart as the operator's tests install it: the release's RBAC, with the extra rules a
# user adds for their apply/waitFor steps (ConfigMaps), and leader election on (its Role).
RELEASE = "ks"
RELEASE_NAMESPACE = "kubesteps-system"
EXTRA_RULES = [
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "create", "patch"]}
]
OPERATOR_VALUES: dict[str, Any] = {
    "rbac": {"extraRules": EXTRA_RULES},
    "leaderElection": {"enabled": True},
}
# What of the rendered chart gives the operator its identity and rights (no workloads: no
# kubelet would run them, and the tests run the operator as a local process).
IDENTITY_KINDS = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}

# Hang guards, not speed checks.
SETTLE = 60.0


def wait_until(
    check: Callable[[], T | None],
    what: str,
    *,
    timeout: float = SETTLE,
    interval: float = 0.1,
    logs: Callable[[], str] | None = None,
) -> T:
    """Poll ``check`` until it gives something true (not None, False, 0 or empty); fail with
    ``what`` (and ``logs()``) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s: {what}" + (f"\n{logs()}" if logs else ""))
        time.sleep(interval)


def pipeline(name: str, namespace: str, steps: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Pipeline",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"steps": steps, **spec},
    }


def get_pipeline(cp: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    body: dict[str, Any] = cp.request("GET", f"{PIPELINES}/namespaces/{namespace}/pipelines/{name}")
    return body


def wait_for_pipeline(
    cp: ControlPlane,
    namespace: str,
    name: str,
    predicate: Callable[[dict[str, Any]], bool],
    what: str,
    *,
    logs: Callable[[], str] | None = None,
) -> dict[str, Any]:
    """Poll the Pipeline until ``predicate(body)`` holds; its body then."""

    def check() -> dict[str, Any] | None:
        body = get_pipeline(cp, namespace, name)
        return body if predicate(body) else None

    return wait_until(check, f"{namespace}/{name}: {what}", logs=logs)


def condition(body: Mapping[str, Any], kind: str) -> dict[str, Any] | None:
    for item in (body.get("status") or {}).get("conditions") or []:
        if item.get("type") == kind:
            return dict(item)
    return None


def step_record(body: Mapping[str, Any], name: str) -> dict[str, Any]:
    for record in (body.get("status") or {}).get("steps") or []:
        if record.get("name") == name:
            return dict(record)
    raise AssertionError(f"no record of step {name!r} in {body.get('status')}")


def ready(body: Mapping[str, Any]) -> bool:
    found = condition(body, "Ready")
    return bool(
        found
        and found["status"] == "True"
        and found.get("observedGeneration") == body["metadata"]["generation"]
    )


def settled(body: Mapping[str, Any]) -> bool:
    """Ready, or not Ready for a reason that no longer changes by itself."""
    found = condition(body, "Ready")
    return bool(
        found
        and found.get("observedGeneration") == body["metadata"]["generation"]
        and found["reason"] not in ("Running", "Pending", "Waiting", "Retrying")
    )


def apply(
    cp: ControlPlane,
    objects: list[dict[str, Any]] | dict[str, Any],
    *,
    user: str = "admin",
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """``kubectl apply -f -``: client-side validation against the server's OpenAPI is on."""
    documents = objects if isinstance(objects, list) else [objects]
    return cp.kubectl(
        "apply", "-f", "-", user=user, check=check, stdin=yaml.safe_dump_all(documents)
    )


# -- namespaces -------------------------------------------------------------------------------


@pytest.fixture
def namespace(control_plane: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards (the namespace controller empties it)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    test = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)[:63].strip("-_.")
    control_plane.request(
        "POST",
        "/api/v1/namespaces",
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": {"kubesteps.dev/test": test}},
        },
    )
    yield name
    try:
        control_plane.request("DELETE", f"/api/v1/namespaces/{name}")
    except ApiStatusError as error:
        if error.status != 404:
            raise


# -- the chart, rendered by the real helm -------------------------------------------------------


def helm(
    cp: ControlPlane, *args: str, check: bool = True, user: str = "admin"
) -> subprocess.CompletedProcess[str]:
    """The helm built with the control plane, talking to it as ``user``."""
    assert cp.assets.helm is not None, "helm is built with the control plane (make cluster-bin)"
    home = cp.workdir / "helm"
    env = {
        **cp.env(user),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
        "HELM_CONTENT_CACHE": str(home / "content"),
    }
    result = subprocess.run(
        [str(cp.assets.helm), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"helm {' '.join(args)} exited with {result.returncode}:\n"
            f"{result.stdout}{result.stderr}"
        )
    return result


def render_chart(
    cp: ControlPlane,
    values: Mapping[str, Any],
    *,
    release: str = RELEASE,
    namespace: str = RELEASE_NAMESPACE,
) -> list[dict[str, Any]]:
    """``helm template`` of the chart: its objects (without the CRD, as helm does)."""
    values_file = cp.workdir / f"values-{uuid.uuid4().hex[:8]}.yaml"
    values_file.write_text(yaml.safe_dump(dict(values)))
    out = helm(
        cp, "template", release, str(CHART), "--namespace", namespace, "--values", str(values_file)
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def of_kind(objects: list[dict[str, Any]], *kinds: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj["kind"] in kinds]


def container_args(objects: list[dict[str, Any]]) -> list[str]:
    """The operator container's args, exactly as the chart's Deployment gives them."""
    (deployment,) = of_kind(objects, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return [str(arg) for arg in container["args"]]


@dataclass(frozen=True)
class Account:
    """The operator's ServiceAccount, its token's kubeconfig, and the chart's operator args."""

    name: str
    namespace: str
    kubeconfig: Path
    args: list[str]

    @property
    def username(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"


def ensure_namespace(cp: ControlPlane, name: str) -> None:
    try:
        cp.request(
            "POST",
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
        )
    except ApiStatusError as error:
        if error.status != 409:
            raise


def service_account_kubeconfig(cp: ControlPlane, name: str, namespace: str) -> Path:
    """A kubeconfig with a token for the ServiceAccount (TokenRequest: kubectl create token)."""
    token = cp.kubectl(
        "create", "token", name, "--namespace", namespace, "--duration", "4h"
    ).stdout.strip()
    assert token.count(".") == 2, f"not a JWT: {token[:40]}"
    return write_user_kubeconfig(
        cp.workdir / "kubeconfigs" / f"sa-{namespace}-{name}.kubeconfig",
        server=cp.url,
        ca_path=cp.ca_path,
        user=f"{namespace}-{name}",
        token=token,
    )


@pytest.fixture(scope="session")
def operator_account(control_plane: ControlPlane) -> Account:
    """The chart's ServiceAccount and RBAC applied as rendered (OPERATOR_VALUES); a token."""
    cp = control_plane
    ensure_namespace(cp, RELEASE_NAMESPACE)
    objects = render_chart(cp, OPERATOR_VALUES)
    apply(cp, of_kind(objects, *IDENTITY_KINDS))
    (account,) = of_kind(objects, "ServiceAccount")
    name = account["metadata"]["name"]
    return Account(
        name=name,
        namespace=RELEASE_NAMESPACE,
        kubeconfig=service_account_kubeconfig(cp, name, RELEASE_NAMESPACE),
        args=container_args(objects),
    )


# -- operator processes -------------------------------------------------------------------------


@dataclass
class Operator:
    """One ``kubesteps operator`` process (its own process group), its probes and its log."""

    name: str
    process: subprocess.Popen[bytes]
    health: str
    metrics: str | None
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, *, timeout: float = 15.0) -> int:
        """SIGTERM, as Kubernetes stops a pod; the exit code."""
        if self.alive():
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"{self.name} ignored SIGTERM for {timeout:g}s:\n{self.output()}")

    def kill(self) -> None:
        """SIGKILL, as a crashed node or an OOM kill ends it: nothing is cleaned up."""
        if self.alive():
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def scrape(self) -> str:
        assert self.metrics is not None, f"{self.name} runs without metrics"
        with urllib.request.urlopen(self.metrics, timeout=5) as response:
            return str(response.read().decode())


def _serves(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def replace_flag(args: list[str], flag: str, value: str) -> list[str]:
    """The args with ``flag``'s value (the next argument) replaced; the flag must be there."""
    assert flag in args, f"{flag} not in {args}"
    index = args.index(flag)
    return [*args[: index + 1], value, *args[index + 2 :]]


def start_operator(
    cp: ControlPlane,
    directory: Path,
    name: str,
    args: list[str],
    *,
    kubeconfig: Path,
    metrics: bool = True,
) -> Operator:
    """Start ``kubesteps operator ARGS`` as ``kubeconfig``'s user; return once it is healthy.

    The chart's probe and metrics addresses are swapped for free loopback ports.
    """
    health = f"http://127.0.0.1:{free_port()}/healthz"
    metrics_port = free_port() if metrics else 0
    argv = list(args)
    argv = (
        replace_flag(argv, "--liveness", health)
        if "--liveness" in argv
        else [*argv, "--liveness", health]
    )
    argv = (
        replace_flag(argv, "--metrics-port", str(metrics_port))
        if "--metrics-port" in argv
        else [*argv, "--metrics-port", str(metrics_port)]
    )
    log = directory / f"{name}.log"
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [str(KUBESTEPS), "operator", *argv],
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={
                **os.environ,
                "KUBECONFIG": str(kubeconfig),
                "POD_NAME": name,
                "POD_NAMESPACE": RELEASE_NAMESPACE,
            },
        )
    operator = Operator(
        name, process, health, f"http://127.0.0.1:{metrics_port}/metrics" if metrics else None, log
    )
    try:
        wait_until(
            lambda: _serves(health) or (not operator.alive() and "exited"),
            f"{name} answers {health}",
            timeout=60,
            logs=operator.output,
        )
        if not operator.alive():
            pytest.fail(f"{name} exited with {process.returncode}:\n{operator.output()}")
    except BaseException:
        operator.kill()
        raise
    return operator


@pytest.fixture
def operators(control_plane: ControlPlane, tmp_path: Path) -> Iterator[Callable[..., Operator]]:
    """Start operator processes for one test; whatever still runs at the end is killed."""
    started: list[Operator] = []

    def launch(name: str, args: list[str], *, kubeconfig: Path, metrics: bool = True) -> Operator:
        operator = start_operator(
            control_plane, tmp_path, name, args, kubeconfig=kubeconfig, metrics=metrics
        )
        started.append(operator)
        return operator

    yield launch
    for operator in started:
        operator.kill()


@pytest.fixture(scope="module")
def operator(
    control_plane: ControlPlane, operator_account: Account, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Operator]:
    """One operator for a test module, run as the chart runs it: its ServiceAccount and RBAC,
    the Deployment's args (a single replica: standalone, all namespaces)."""
    single = render_chart(control_plane, {**OPERATOR_VALUES, "leaderElection": {"enabled": False}})
    running = start_operator(
        control_plane,
        tmp_path_factory.mktemp("operator"),
        "operator",
        container_args(single),
        kubeconfig=operator_account.kubeconfig,
    )
    yield running
    code = running.stop()
    assert code == 0, f"the operator exited with {code}:\n{running.output()}"


def events_of(cp: ControlPlane, namespace: str, name: str) -> list[dict[str, Any]]:
    """The core/v1 Events about one Pipeline (by field selector, as kubectl describe does)."""
    found = cp.request(
        "GET",
        f"/api/v1/namespaces/{namespace}/events",
        params={"fieldSelector": f"involvedObject.kind=Pipeline,involvedObject.name={name}"},
    )
    return list(found["items"])


def dump(value: Any) -> str:
    return json.dumps(value, indent=1, sort_keys=True)[:6000]


def bob_may_read_pipelines(cp: ControlPlane, namespace: str) -> None:
    """bob may get, list and watch Pipelines in ``namespace``, no more; one Pipeline,
    ``hello``, waits an hour there."""
    apply(
        cp,
        [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "pipeline-reader", "namespace": namespace},
                "rules": [
                    {
                        "apiGroups": ["kubesteps.dev"],
                        "resources": ["pipelines"],
                        "verbs": ["get", "list", "watch"],
                    }
                ],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "bob-reads", "namespace": namespace},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "pipeline-reader",
                },
                "subjects": [
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bob"}
                ],
            },
            pipeline(
                "hello",
                namespace,
                [{"name": "wait", "action": "delay", "with": {"duration": "1h"}}],
            ),
        ],
    )
