"""The operator as a real process against a real API server, as the chart runs it: its
ServiceAccount with the chart's exact RBAC (plus the ConfigMap rule a user adds with
``rbac.extraRules``) and the Deployment's own arguments.

Every documented action reaches Ready (a ``job`` step's Pod is played by the test, since
no kubelet runs here), ``kubectl get``/``describe`` show what users are told they show,
owned objects go with their Pipeline through the garbage collector, an ungranted kind is
refused with the operator's clear message, and status writes converge while others write
the same object.
"""

from __future__ import annotations

import base64
import http.server
import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from kubesteps.pipeline.crd import crd
from kubesteps.testing.control_plane import ApiStatusError, ControlPlane

from .conftest import (
    EXAMPLES,
    PIPELINES,
    Account,
    Operator,
    apply,
    condition,
    dump,
    get_pipeline,
    pipeline,
    ready,
    settled,
    step_record,
    wait_for_pipeline,
    wait_until,
)

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"


def example(name: str, namespace: str) -> dict[str, Any]:
    manifest: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    manifest["metadata"]["namespace"] = namespace
    return manifest


def until_ready(cp: ControlPlane, operator: Operator, namespace: str, name: str) -> dict[str, Any]:
    return wait_for_pipeline(
        cp, namespace, name, ready, "Ready", logs=lambda: _report(cp, operator, namespace, name)
    )


def until_settled(
    cp: ControlPlane, operator: Operator, namespace: str, name: str
) -> dict[str, Any]:
    return wait_for_pipeline(
        cp, namespace, name, settled, "settled", logs=lambda: _report(cp, operator, namespace, name)
    )


def _report(cp: ControlPlane, operator: Operator, namespace: str, name: str) -> str:
    return dump(get_pipeline(cp, namespace, name).get("status")) + "\n" + operator.output()[-6000:]


def gone(cp: ControlPlane, path: str) -> bool:
    try:
        cp.request("GET", path)
    except ApiStatusError as error:
        if error.status == 404:
            return True
        raise
    return False


def test_the_operator_runs_as_the_charts_service_account(
    control_plane: ControlPlane, operator: Operator, operator_account: Account
) -> None:
    # Every request the operator makes is decided by the chart's RBAC, not by an admin.
    whoami = control_plane.kubectl(
        "auth", "whoami", "-o", "json", "--kubeconfig", str(operator_account.kubeconfig)
    )
    assert json.loads(whoami.stdout)["status"]["userInfo"]["username"] == operator_account.username
    assert "--all-namespaces" in operator_account.args


def test_a_delay_and_python_pipeline_is_ready_and_kubectl_get_shows_the_printer_columns(
    control_plane: ControlPlane, operator: Operator, namespace: str
) -> None:
    apply(control_plane, example("hello.yaml", namespace))
    body = until_ready(control_plane, operator, namespace, "hello")
    assert condition(body, "Greeted") is not None
    assert condition(body, "Greeted")["status"] == "True"  # type: ignore[index]

    columns = [c["name"] for c in crd()["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert columns[:4] == ["Ready", "Reason", "Run", "Step"]
    table = control_plane.kubectl("get", "kpl", "-n", namespace).stdout
    header, row = table.strip().splitlines()
    assert header.split() == ["NAME", *(name.upper() for name in columns)]
    assert row.split()[:4] == ["hello", "True", "Succeeded", "1"]

    # The columns come from the server (a meta.k8s.io Table), not from kubectl.
    served = control_plane.request(
        "GET", f"{PIPELINES}/namespaces/{namespace}/pipelines", accept=TABLE
    )
    assert served["kind"] == "Table"
    assert [c["name"] for c in served["columnDefinitions"]] == ["Name", *columns]
    (cells,) = [r["cells"] for r in served["rows"]]
    assert cells[:5] == ["hello", "True", "Succeeded", 1, ""]  # no current step: done


def test_kubectl_describe_shows_the_operators_events(
    control_plane: ControlPlane, operator: Operator, namespace: str
) -> None:
    apply(control_plane, example("hello.yaml", namespace))
    until_ready(control_plane, operator, namespace, "hello")

    def described() -> str | None:
        text = control_plane.kubectl("describe", "kpl", "hello", "-n", namespace).stdout
        return text if "RunSucceeded" in text else None

    text = wait_until(described, "describe lists the RunSucceeded Event")
    events = text[text.index("\nEvents:") :]
    for reason, message in [
        ("RunStarted", "hello-1 started (trigger Created)"),
        ("StepSucceeded", "hello-1: step 'greet': completed"),
        ("StepSkipped", "hello-1: step 'greet-again': predicate"),
        ("RunSucceeded", "hello-1 succeeded"),
    ]:
        assert re.search(rf"Normal\s+{reason}\s+\S+\s+kubesteps\s+{re.escape(message)}", events), (
            events
        )


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Endpoint:
    url: str
    requests: list[Recorded] = field(default_factory=list)
    # Called with each request before it is answered (the test acts while a step waits).
    on_request: Callable[[Recorded], None] | None = None


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    """An HTTP server on loopback that answers 200 and records what it got."""
    recorded: list[Recorded] = []
    hooks: list[Endpoint] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = Recorded(
                self.command, self.path, dict(self.headers.items()), self.rfile.read(length)
            )
            recorded.append(request)
            if hooks[0].on_request is not None:
                hooks[0].on_request(request)
            payload = json.dumps({"ok": True}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    hooks.append(Endpoint(f"http://127.0.0.1:{server.server_address[1]}", recorded))
    try:
        yield hooks[0]
    finally:
        server.shutdown()
        server.server_close()


def test_an_http_step_sends_the_labelled_secret_and_records_the_answer(
    control_plane: ControlPlane, operator: Operator, namespace: str, endpoint: Endpoint
) -> None:
    apply(
        control_plane,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": "api-token",
                "namespace": namespace,
                "labels": {"kubesteps.dev/http-credential": "true"},
                "annotations": {"kubesteps.dev/allowed-urls": f"{endpoint.url}/v1/"},
            },
            "data": {"token": base64.b64encode(b"s3cr3t").decode()},
        },
    )
    apply(
        control_plane,
        pipeline(
            "notify",
            namespace,
            [
                {
                    "name": "notify",
                    "action": "http",
                    "with": {
                        "method": "POST",
                        "url": f"{endpoint.url}/v1/events",
                        "headers": {"Content-Type": "application/json"},
                        "body": {"pipeline": "${ self.metadata.name }"},
                        "expectedStatus": ["2xx"],
                        "secretRef": {"name": "api-token", "key": "token"},
                    },
                }
            ],
        ),
    )

    body = until_ready(control_plane, operator, namespace, "notify")

    (sent,) = [r for r in endpoint.requests if r.path == "/v1/events"]
    assert sent.method == "POST"
    assert sent.headers["Authorization"] == "Bearer s3cr3t"
    assert json.loads(sent.body) == {"pipeline": "notify"}
    assert step_record(body, "notify")["outputs"]["status"] == 200


def test_apply_then_wait_for_and_the_applied_object_goes_with_its_pipeline(
    control_plane: ControlPlane, operator: Operator, namespace: str
) -> None:
    apply(control_plane, example("apply-and-wait.yaml", namespace))
    body = until_ready(control_plane, operator, namespace, "apply-and-wait")
    path = f"/api/v1/namespaces/{namespace}/configmaps/apply-and-wait-settings"
    settings = control_plane.request("GET", path)
    assert settings["data"] == {"greeting": "hello", "generation": "1"}
    (owner,) = settings["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == (
        "Pipeline",
        "apply-and-wait",
        body["metadata"]["uid"],
    )
    assert owner["blockOwnerDeletion"] is True  # allowed: the chart grants pipelines/finalizers

    control_plane.kubectl("delete", "kpl", "apply-and-wait", "-n", namespace, "--wait=true")

    # kube-controller-manager's garbage collector, not the operator (it has no finalizer).
    wait_until(lambda: gone(control_plane, path), "the owned ConfigMap is garbage-collected")


def test_an_approval_step_waits_until_someone_approves_and_records_who(
    control_plane: ControlPlane, operator: Operator, namespace: str
) -> None:
    apply(control_plane, example("approval.yaml", namespace))

    def waits_for_approval(body: dict[str, Any]) -> bool:
        found = condition(body, "Ready")
        return bool(
            found
            and found["reason"] == "Waiting"
            and (body.get("status") or {}).get("currentStep") == "approve-release"
        )

    waiting = wait_for_pipeline(
        control_plane,
        namespace,
        "release",
        waits_for_approval,
        "the approval step waits",
        logs=operator.output,
    )
    message = condition(waiting, "Ready")["message"]  # type: ignore[index]
    assert "kubectl annotate pipeline release kubesteps.dev/approve.approve-release=" in message

    control_plane.kubectl(
        "annotate", "kpl", "release", "-n", namespace, "kubesteps.dev/approve.approve-release=admin"
    )
    body = until_ready(control_plane, operator, namespace, "release")

    outputs = step_record(body, "approve-release")["outputs"]
    assert (outputs["approvedBy"], outputs["run"]) == ("admin", "release-1")
    # The operator removed the answer (a JSON patch), so the next run asks again.
    annotations = (
        get_pipeline(control_plane, namespace, "release")["metadata"].get("annotations") or {}
    )
    assert "kubesteps.dev/approve.approve-release" not in annotations


def _play_kubelet(
    cp: ControlPlane, namespace: str, pod: dict[str, Any], exit_code: int, message: str = ""
) -> None:
    """What a kubelet reports when the Pod's one container ran to the end (having written
    ``message`` to its termination log)."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    container = pod["spec"]["containers"][0]
    terminated: dict[str, Any] = {
        "exitCode": exit_code,
        "startedAt": now,
        "finishedAt": now,
        "reason": "Completed" if exit_code == 0 else "Error",
    }
    if message:
        terminated["message"] = message
    cp.request(
        "PATCH",
        f"/api/v1/namespaces/{namespace}/pods/{pod['metadata']['name']}/status",
        {
            "status": {
                "phase": "Succeeded" if exit_code == 0 else "Failed",
                "startTime": now,
                "containerStatuses": [
                    {
                        "name": container["name"],
                        "image": container["image"],
                        "imageID": "",
                        "ready": False,
                        "restartCount": 0,
                        "state": {"terminated": terminated},
                    }
                ],
            }
        },
        content_type="application/merge-patch+json",
    )


def test_a_job_step_succeeds_when_its_pod_does_and_the_job_goes_with_the_pipeline(
    control_plane: ControlPlane, operator: Operator, namespace: str
) -> None:
    cp = control_plane
    apply(cp, example("job.yaml", namespace))
    jobs = f"/apis/batch/v1/namespaces/{namespace}/jobs"
    job = wait_until(
        lambda: (cp.request("GET", jobs)["items"] or [None])[0],
        "the operator creates the step's Job",
        logs=operator.output,
    )
    assert job["metadata"]["name"] == "nightly-report-report-1-1"
    labels = job["metadata"]["labels"]
    assert {
        k: labels[k]
        for k in (
            "kubesteps.dev/pipeline",
            "kubesteps.dev/step",
            "kubesteps.dev/run",
            "kubesteps.dev/attempt",
        )
    } == {
        "kubesteps.dev/pipeline": "nightly-report",
        "kubesteps.dev/step": "report",
        "kubesteps.dev/run": "1",
        "kubesteps.dev/attempt": "1",
    }
    pods = f"/api/v1/namespaces/{namespace}/pods"
    selector = {"labelSelector": "job-name=nightly-report-report-1-1"}
    # The Job controller (kube-controller-manager) makes the Pod; nothing schedules it.
    pod = wait_until(
        lambda: (cp.request("GET", pods, params=selector)["items"] or [None])[0],
        "the Job controller creates a Pod",
    )
    assert pod["status"]["phase"] == "Pending"
    # What the server accepted and the Job controller copied into the Pod: the restricted
    # security context (with the example's override), volumes, env sources, scheduling.
    spec = pod["spec"]
    (container,) = spec["containers"]
    assert container["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
        "readOnlyRootFilesystem": True,
    }
    assert [m["mountPath"] for m in container["volumeMounts"]][:2] == ["/etc/report", "/scratch"]
    assert container["envFrom"] == [
        {"configMapRef": {"name": "report-settings"}, "prefix": "REPORT_"}
    ]
    assert container["env"][1] == {
        "name": "DB_PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "report-db", "key": "password"}},
    }
    assert [v["name"] for v in spec["volumes"]][:2] == ["settings", "scratch"]
    assert spec["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert {"key": "batch-only", "operator": "Exists", "effect": "NoSchedule"} in spec[
        "tolerations"
    ]
    assert (
        pod["metadata"]["annotations"]["cluster-autoscaler.kubernetes.io/safe-to-evict"] == "true"
    )

    # A scheduler that cannot place the Pod: the step's message says so.
    cp.request(
        "PATCH",
        f"{pods}/{pod['metadata']['name']}/status",
        {
            "status": {
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": "0/3 nodes are available: 3 node(s) didn't match Pod's"
                        " node affinity.",
                    }
                ]
            }
        },
        content_type="application/merge-patch+json",
    )
    wait_for_pipeline(
        cp,
        namespace,
        "nightly-report",
        lambda body: (
            "cannot be scheduled: 0/3 nodes" in (step_record(body, "report").get("message") or "")
        ),
        "the step says its Pod cannot be scheduled",
        logs=operator.output,
    )

    _play_kubelet(cp, namespace, pod, exit_code=0, message='{"rows": 42, "format": "csv"}')
    body = until_ready(cp, operator, namespace, "nightly-report")

    record = step_record(body, "report")
    outputs = record["outputs"]
    assert (outputs["jobName"], outputs["succeeded"]) == ("nightly-report-report-1-1", 1)
    assert (outputs["rows"], outputs["format"]) == (42, "csv")  # the container's results
    assert step_record(body, "announce")["outputs"]["who"] == "42 rows"
    # No kubelet serves the log (the server answers that the Pod has no node): no logTail.
    assert "logTail" not in record
    cp.kubectl("delete", "kpl", "nightly-report", "-n", namespace, "--wait=true")
    wait_until(lambda: not cp.request("GET", jobs)["items"], "the Job is garbage-collected")
    wait_until(
        lambda: not cp.request("GET", pods, params=selector)["items"],
        "its Pod is garbage-collected",
    )


def test_a_mutex_is_a_lease_on_the_server_one_run_holds_and_the_next_in_line_takes(
    control_plane: ControlPlane, operator: Operator, namespace: str
) -> None:
    cp = control_plane
    web, api = yaml.safe_load_all((EXAMPLES / "mutex.yaml").read_text())
    for body in (web, api):
        body["metadata"]["namespace"] = namespace
    web["spec"]["steps"][0]["with"]["duration"] = "1h"  # holds it until cancelled
    apply(cp, web)
    lease_path = (
        f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/kubesteps-mutex-deploy-prod"
    )
    held = wait_until(
        lambda: _lease_held_by(cp, lease_path, "deploy-web/deploy-web-1"),
        "deploy-web holds the mutex's Lease",
        logs=operator.output,
    )
    assert held["spec"]["leaseDurationSeconds"] == 300
    apply(cp, api)

    def waits(body: dict[str, Any]) -> bool:
        found = condition(body, "Ready")
        return bool(found and found["reason"] == "MutexHeld")

    waiting = wait_for_pipeline(
        cp, namespace, "deploy-api", waits, "deploy-api waits in line", logs=operator.output
    )
    assert condition(waiting, "Ready")["message"] == (  # type: ignore[index]
        "waiting for mutex 'deploy-prod', held by pipeline 'deploy-web' (run deploy-web-1)"
    )
    queue = json.loads(
        cp.request("GET", lease_path)["metadata"]["annotations"]["kubesteps.dev/queue"]
    )
    assert [entry["pipeline"] for entry in queue] == ["deploy-api"]

    cp.kubectl("annotate", "kpl", "deploy-web", "-n", namespace, "kubesteps.dev/cancel=1")
    until_ready(cp, operator, namespace, "deploy-api")
    assert get_pipeline(cp, namespace, "deploy-web")["status"]["run"]["phase"] == "Cancelled"
    wait_until(
        lambda: not cp.request("GET", lease_path)["spec"].get("holderIdentity"),
        "deploy-api releases the mutex when its run settles",
        logs=operator.output,
    )


def _lease_held_by(cp: ControlPlane, path: str, holder: str) -> dict[str, Any] | None:
    try:
        lease = cp.request("GET", path)
    except ApiStatusError as error:
        if error.status == 404:
            return None
        raise
    return lease if lease["spec"].get("holderIdentity") == holder else None


def test_cancel_deletes_the_running_job_with_the_charts_delete_permission(
    control_plane: ControlPlane, operator: Operator, namespace: str
) -> None:
    cp = control_plane
    apply(cp, example("job.yaml", namespace))
    jobs = f"/apis/batch/v1/namespaces/{namespace}/jobs"
    wait_until(lambda: cp.request("GET", jobs)["items"], "the step's Job", logs=operator.output)

    cp.kubectl("annotate", "kpl", "nightly-report", "-n", namespace, "kubesteps.dev/cancel=1")

    body = until_settled(cp, operator, namespace, "nightly-report")
    assert body["status"]["run"]["phase"] == "Cancelled"
    assert condition(body, "Ready")["reason"] == "Cancelled"  # type: ignore[index]
    wait_until(
        lambda: not cp.request("GET", jobs)["items"],
        "the operator deletes the Job",
        logs=operator.output,
    )

    def reasons() -> set[str]:
        return {
            e["reason"]
            for e in cp.request("GET", f"/api/v1/namespaces/{namespace}/events")["items"]
        }

    wait_until(
        lambda: {"RunCancelled", "JobDeleted"} <= reasons(),
        "the RunCancelled and JobDeleted Events",
        logs=lambda: str(reasons()),
    )


def test_block_owner_deletion_needs_the_finalizers_right_the_chart_grants(
    control_plane: ControlPlane, namespace: str
) -> None:
    # The control plane runs OwnerReferencesPermissionEnforcement, as hardened clusters do:
    # the same ownerReference the operator sets is refused to someone without
    # `update pipelines/finalizers` (bob, with the namespace's edit role).
    cp = control_plane
    apply(
        cp,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "bob-edits", "namespace": namespace},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "edit",
            },
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bob"}],
        },
    )
    owner = apply(
        cp,
        pipeline(
            "owner", namespace, [{"name": "wait", "action": "delay", "with": {"duration": "1h"}}]
        ),
    )
    assert owner.returncode == 0
    uid = get_pipeline(cp, namespace, "owner")["metadata"]["uid"]
    owned = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "owned",
            "namespace": namespace,
            "ownerReferences": [
                {
                    "apiVersion": "kubesteps.dev/v1alpha1",
                    "kind": "Pipeline",
                    "name": "owner",
                    "uid": uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
    }
    wait_until(
        lambda: (
            cp.kubectl(
                "auth", "can-i", "create", "configmaps", "-n", namespace, user="bob", check=False
            ).stdout.strip()
            == "yes"
        ),
        "bob may create ConfigMaps",
    )

    refused = apply(cp, owned, user="bob", check=False)

    assert refused.returncode != 0
    assert (
        "cannot set blockOwnerDeletion if an ownerReference refers to a resource you "
        "can't set finalizers on" in refused.stderr
    ), refused.stderr


def test_a_kind_the_chart_does_not_grant_is_refused_with_the_operators_message(
    control_plane: ControlPlane, operator: Operator, namespace: str
) -> None:
    # ConfigMaps are granted (rbac.extraRules); Services are not.
    apply(
        control_plane,
        pipeline(
            "expose",
            namespace,
            [
                {
                    "name": "service",
                    "action": "apply",
                    "with": {
                        "manifest": {
                            "apiVersion": "v1",
                            "kind": "Service",
                            "metadata": {"name": "web"},
                            "spec": {"ports": [{"port": 80}]},
                        }
                    },
                }
            ],
        ),
    )

    body = until_settled(control_plane, operator, namespace, "expose")

    failed = condition(body, "Ready")
    assert failed is not None
    assert (failed["status"], failed["reason"]) == ("False", "Failed"), failed
    message = step_record(body, "service")["message"]
    assert "403 Forbidden" in message
    assert "the operator's service account lacks this permission" in message
    assert (
        'cannot get resource "services"' in message
        or 'cannot create resource "services"' in message
    ), message
    assert gone(control_plane, f"/api/v1/namespaces/{namespace}/services/web")


def _conflicts(operator: Operator) -> float:
    match = re.search(r"^kubesteps_status_write_conflicts_total (\S+)$", operator.scrape(), re.M)
    return float(match.group(1)) if match else 0.0


CALLS = 3


def test_status_writes_converge_when_another_writer_overtakes_each_pass(
    control_plane: ControlPlane, operator: Operator, namespace: str, endpoint: Endpoint
) -> None:
    # Each http step's request reaches the test while the operator's pass waits for the
    # answer; the test writes the Pipeline meanwhile, so the pass's status patch (conditional
    # on the resourceVersion it read) meets a real 409 and must re-read and re-apply.
    cp = control_plane
    path = f"{PIPELINES}/namespaces/{namespace}/pipelines/busy"
    overtaken: list[str] = []

    def overtake(request: Recorded) -> None:
        stored = cp.request(
            "PATCH",
            path,
            {"metadata": {"labels": {"overtaken": str(len(overtaken) + 1)}}},
            content_type="application/merge-patch+json",
        )
        overtaken.append(stored["metadata"]["resourceVersion"])

    endpoint.on_request = overtake
    before = _conflicts(operator)
    # A delay between the calls ends each pass (a wait), so every call has a pass of its own.
    steps = [
        step
        for i in range(CALLS)
        for step in (
            {
                "name": f"call-{i}",
                "action": "http",
                "with": {"url": f"{endpoint.url}/step/{i}", "expectedStatus": [200]},
            },
            {"name": f"pause-{i}", "action": "delay", "with": {"duration": "100ms"}},
        )
    ]
    apply(cp, pipeline("busy", namespace, steps))

    body = until_ready(cp, operator, namespace, "busy")

    assert len(overtaken) >= CALLS
    records = {r["name"]: r for r in body["status"]["steps"]}
    assert [records[f"call-{i}"]["phase"] for i in range(CALLS)] == ["Succeeded"] * CALLS
    assert body["status"]["run"]["number"] == 1
    assert body["metadata"]["generation"] == 1
    assert body["metadata"]["labels"]["overtaken"] == str(len(overtaken))
    conflicts = _conflicts(operator) - before
    assert conflicts >= CALLS, (conflicts, operator.output()[-4000:])
