"""`kubectl kubesteps ...` through the real kubectl (plugin mechanism included) against the
API emulator: the views on stored objects, and the verbs with the operator reconciling."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import kopf
import pytest
import yaml

from kubesteps.controller.operator import Connection, build_registry, settings_hook
from kubesteps.kube.client import KubeClient
from kubesteps.testing import Emulator

from .conftest import API, Kubectl, manifest
from .test_render import LIVE

pytestmark = pytest.mark.slow  # each test starts kubectl and the plugin


def quick(settings: kopf.OperatorSettings) -> None:
    settings_hook(settings, {"server_timeout": 30, "client_timeout": 40})


async def store(api: KubeClient, obj: dict[str, Any]) -> None:
    """Create the object, then give it its recorded status (as the operator wrote it)."""
    body = {key: value for key, value in obj.items() if key != "status"}
    body["metadata"] = {
        k: v
        for k, v in obj["metadata"].items()
        if k in ("name", "namespace", "labels", "annotations")
    }
    await api.create(body, "default")
    if obj.get("status"):
        await api.patch(
            API,
            "Pipeline",
            body["metadata"]["name"],
            "default",
            {"status": obj["status"]},
            subresource="status",
        )


async def until(check: Callable[[], Any], within: float = 30) -> Any:
    async with asyncio.timeout(within):
        while True:
            found = await check()
            if found:
                return found
            await asyncio.sleep(0.1)


def run_of(api: KubeClient, name: str) -> Callable[[], Any]:
    async def check() -> Any:
        obj = await api.get(API, "Pipeline", name, "default")
        return (obj or {}).get("status", {}).get("run")

    return check


def timeless(data: Any) -> Any:
    """``data`` without the running run's duration (it grows between two calls)."""
    if isinstance(data, list):
        return [timeless(item) for item in data]
    if isinstance(data, dict):
        return {k: timeless(v) for k, v in data.items() if k != "durationSeconds"}
    return data


# -- views ----------------------------------------------------------------------------------


async def test_get_lists_pipelines_through_kubectl(api: KubeClient, kubectl: Kubectl) -> None:
    for name in sorted(LIVE):
        await store(api, LIVE[name])
    done = await kubectl("kubesteps", "get")
    assert done.code == 0, done.err
    rows = [line.split() for line in done.out.splitlines()]
    assert rows[0] == ["NAME", "RUN", "PHASE", "STEP", "PROGRESS", "DURATION", "AGE"]
    assert [row[:5] for row in rows[1:]] == [
        ["parallel", "1", "Succeeded", "-", "6/6"],
        ["release", "1", "Running", "approve-release", "1/3"],
        ["rollout", "1", "Succeeded", "-", "6/6"],
        ["tidy", "1", "Succeeded", "-", "3/3"],
    ]
    assert "\x1b[" not in done.out  # no terminal: no colour


async def test_get_all_namespaces_shows_the_namespace(api: KubeClient, kubectl: Kubectl) -> None:
    await store(api, LIVE["tidy"])
    done = await kubectl("kubesteps", "get", "-A")
    assert done.out.splitlines()[1].split()[:3] == ["default", "tidy", "1"]


async def test_every_view_prints_json_and_yaml(api: KubeClient, kubectl: Kubectl) -> None:
    await store(api, LIVE["release"])
    for view in ("get", "describe", "tree", "history"):
        args = [view] if view == "get" else [view, "release"]
        as_json = json.loads((await kubectl("kubesteps", *args, "-o", "json")).out)
        as_yaml = yaml.safe_load((await kubectl("kubesteps", *args, "-o", "yaml")).out)
        assert timeless(as_json) == timeless(as_yaml), view
    tree = json.loads((await kubectl("kubesteps", "tree", "release", "-o", "json")).out)
    assert [s["name"] for s in tree["steps"]] == ["build", "gated"]
    assert tree["steps"][1]["children"][0]["phase"] == "Waiting"
    assert tree["progress"] == {"done": 1, "total": 3}


async def test_describe_shows_the_tree_and_the_events(api: KubeClient, kubectl: Kubectl) -> None:
    await store(api, LIVE["release"])
    await api.create(
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "release.1", "namespace": "default"},
            "involvedObject": {
                "apiVersion": API,
                "kind": "Pipeline",
                "name": "release",
                "namespace": "default",
            },
            "reason": "RunStarted",
            "message": "release-1 started (trigger Created)",
            "type": "Normal",
            "lastTimestamp": "2026-03-01T12:00:00Z",
        },
        "default",
    )
    done = await kubectl("kubesteps", "describe", "release")
    assert done.code == 0, done.err
    assert "├─ ✓ build" in done.out
    assert "approve-release  Waiting" in done.out
    events = done.out.split("Events:")[1]
    assert "RunStarted" in events
    assert "release-1 started (trigger Created)" in events


async def test_a_missing_pipeline_is_one_line_naming_it(api: KubeClient, kubectl: Kubectl) -> None:
    await store(api, LIVE["release"])
    done = await kubectl("kubesteps", "describe", "relase")
    assert done.code == 1
    assert done.err == (
        "kubesteps: error: pipeline 'relase' not found in namespace 'default'"
        " — did you mean 'release'? (kubectl get pipelines -n default lists"
        " them)\n"
    )


async def test_debug_shows_the_traceback(api: KubeClient, kubectl: Kubectl) -> None:
    plain = await kubectl("kubesteps", "tree", "nope")
    debug = await kubectl("kubesteps", "tree", "nope", "--debug")
    assert "Traceback" not in plain.err
    assert "Traceback (most recent call last)" in debug.err
    assert "PipelineNotFound" in debug.err


async def test_a_namespace_flag_is_honoured(api: KubeClient, kubectl: Kubectl) -> None:
    await api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ops"}})
    obj = json.loads(json.dumps(LIVE["tidy"]))
    obj["metadata"]["namespace"] = "ops"
    body = {k: v for k, v in obj.items() if k != "status"}
    body["metadata"] = {"name": "tidy", "namespace": "ops"}
    await api.create(body, "ops")
    assert "tidy" in (await kubectl("kubesteps", "get", "-n", "ops")).out
    assert "No Pipelines in namespace default" in (await kubectl("kubesteps", "get")).err


async def test_graph_of_a_live_pipeline_colours_by_phase(api: KubeClient, kubectl: Kubectl) -> None:
    await store(api, LIVE["release"])
    done = await kubectl("kubesteps", "graph", "release")
    assert done.out.startswith("flowchart TD\n")
    assert "class s_approve_release waiting" in done.out
    dot = await kubectl("kubesteps", "graph", "release", "--format", "dot")
    assert dot.out.startswith('digraph "release" {')


# -- logs -----------------------------------------------------------------------------------


def job_pipeline() -> dict[str, Any]:
    obj = manifest("job.yaml")
    obj["status"] = {
        "run": {
            "number": 1,
            "id": "nightly-report-1",
            "trigger": "Created",
            "phase": "Running",
            "startedAt": "2026-03-01T12:00:00Z",
            "specHash": "0" * 16,
            "retries": 0,
        },
        "steps": [
            {
                "name": "report",
                "phase": "Waiting",
                "attempts": 1,
                "run": 1,
                "startedAt": "2026-03-01T12:00:01Z",
                "message": "waiting for Job nightly-report-report-1-1",
            }
        ],
    }
    return obj


def pod(name: str, run: int = 1) -> dict[str, Any]:
    labels = {
        "kubesteps.dev/pipeline": "nightly-report",
        "kubesteps.dev/step": "report",
        "kubesteps.dev/run": str(run),
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": labels},
        "spec": {"containers": [{"name": "step", "image": "busybox:1.36"}]},
    }


async def test_logs_of_a_job_step_are_its_pods_log(
    api: KubeClient, kubectl: Kubectl, k8s_emulator: Emulator
) -> None:
    await store(api, job_pipeline())
    await api.create(pod("nightly-report-report-1-1-abcde"), "default")
    await api.create(pod("of-an-earlier-run", run=0), "default")
    k8s_emulator.write_pod_log(
        "default",
        "nightly-report-report-1-1-abcde",
        "building the report for nightly-report\ndone\n",
    )
    done = await kubectl("kubesteps", "logs", "nightly-report", "report")
    assert done.code == 0, done.err
    assert done.out == "building the report for nightly-report\ndone\n"


async def test_following_the_logs_of_a_job_step_streams_until_the_log_ends(
    api: KubeClient, kubectl: Kubectl, k8s_emulator: Emulator
) -> None:
    await store(api, job_pipeline())
    await api.create(pod("p1"), "default")
    k8s_emulator.write_pod_log("default", "p1", "line 1\n", done=False)
    follower = asyncio.create_task(kubectl("kubesteps", "logs", "nightly-report", "report", "-f"))
    await asyncio.sleep(1.0)
    assert not follower.done()
    k8s_emulator.write_pod_log("default", "p1", "line 2\n")
    done = await follower
    assert done.out == "line 1\nline 2\n"


async def test_logs_of_a_job_step_without_a_pod_say_so(api: KubeClient, kubectl: Kubectl) -> None:
    await store(api, job_pipeline())
    done = await kubectl("kubesteps", "logs", "nightly-report", "report")
    assert done.code == 1
    assert done.err.startswith(
        "kubesteps: error: step 'report' of pipeline 'nightly-report' "
        "has no Pod in run nightly-report-1 (step Waiting: waiting for"
    )
    assert len(done.err.splitlines()) == 1


async def test_logs_of_other_steps_are_their_records_and_events_in_time_order(
    api: KubeClient, kubectl: Kubectl
) -> None:
    await store(api, LIVE["tidy"])
    done = await kubectl("kubesteps", "logs", "tidy")
    lines = done.out.splitlines()
    times = [line.split()[0] for line in lines]
    assert times == sorted(times)  # in time order
    assert any(line.split()[1:3] == ["report", "Succeeded:"] for line in lines)
    only = await kubectl("kubesteps", "logs", "tidy", "build")
    assert {line.split()[1] for line in only.out.splitlines()} == {"build"}


# -- verbs with the operator ----------------------------------------------------------------


async def test_approve_with_wait_then_watch_exits_when_the_run_settles(
    api: KubeClient, kubectl: Kubectl, operator_runner: Any
) -> None:
    release = manifest("approval.yaml")
    release["spec"]["steps"][0]["with"]["duration"] = "100ms"
    async with operator_runner(
        build_registry(Connection()), wait_for=["pipelines"], settings_hook=quick
    ):
        await api.create(release, "default")

        async def waiting() -> bool:
            obj = await api.get(API, "Pipeline", "release", "default") or {}
            steps = {s["name"]: s for s in obj.get("status", {}).get("steps", [])}
            return steps.get("approve-release", {}).get("phase") == "Waiting"

        await until(waiting)
        watcher = asyncio.create_task(kubectl("kubesteps", "watch", "release"))
        retry = await kubectl("kubesteps", "retry", "release")
        assert retry.code == 1
        assert retry.err == (
            "kubesteps: error: cannot retry pipeline 'release': run "
            "release-1 is Running with no failed step, nothing to retry; to"
            " run every step again: rerun\n"
        )
        done = await kubectl(
            "kubesteps", "approve", "release", "approve-release", "--as-name", "alice", "--wait"
        )
        assert done.code == 0, done.err
        assert done.out.startswith(
            "approved step 'approve-release' of run release-1 as alice "
            "(kubesteps.dev/approve.approve-release=alice@release-1)\n"
        )
        watched = await watcher
        assert watched.code == 0, watched.err
        assert watched.out.splitlines()[-1] == "run release-1 Succeeded"
        assert "approve-release          Succeeded" in watched.out
        obj = await api.get(API, "Pipeline", "release", "default")
        assert obj is not None
        outputs = {s["name"]: s.get("outputs") for s in obj["status"]["steps"]}
        assert outputs["approve-release"]["approvedBy"] == "alice"

        again = await kubectl("kubesteps", "approve", "release", "approve-release")
        assert again.code == 1
        assert "step 'approve-release' is Succeeded, not waiting for an approval" in again.err


async def test_rerun_cancel_retry_suspend_resume_each_wait_for_their_effect(
    api: KubeClient, kubectl: Kubectl, operator_runner: Any
) -> None:
    release = manifest("approval.yaml")
    release["spec"]["steps"][0]["with"]["duration"] = "100ms"
    async with operator_runner(
        build_registry(Connection()), wait_for=["pipelines"], settings_hook=quick
    ):
        await api.create(release, "default")
        await until(run_of(api, "release"))

        rerun = await kubectl("kubesteps", "rerun", "release", "--wait", "-o", "json")
        assert rerun.code == 0, rerun.err
        result = json.loads(rerun.out)
        assert result["patch"]["metadata"]["annotations"]["kubesteps.dev/rerun"] == result["token"]
        assert result["after"]["run"]["number"] == 2

        cancel = await kubectl("kubesteps", "cancel", "release", "--wait")
        assert cancel.code == 0, cancel.err
        assert "run release-2  Cancelled" in cancel.out
        again = await kubectl("kubesteps", "cancel", "release")
        assert again.err == (
            "kubesteps: error: cannot cancel pipeline 'release': run "
            "release-2 is Cancelled, nothing to cancel\n"
        )

        retry = await kubectl("kubesteps", "retry", "release", "--wait")
        assert retry.code == 0, retry.err
        assert "run release-2  Running" in retry.out

        suspend = await kubectl("kubesteps", "suspend", "release", "--wait")
        assert suspend.code == 0, suspend.err
        assert "run release-2  Suspended" in suspend.out
        watched = await kubectl("kubesteps", "watch", "release")
        assert watched.code == 2  # suspended: settled, not a result
        resume = await kubectl("kubesteps", "resume", "release", "--wait")
        assert resume.code == 0, resume.err
        assert "run release-2  Running" in resume.out
        not_suspended = await kubectl("kubesteps", "resume", "release")
        assert "cannot resume pipeline 'release': it is not suspended" in not_suspended.err


async def test_a_rejected_approval_fails_the_run_and_watch_exits_1(
    api: KubeClient, kubectl: Kubectl, operator_runner: Any
) -> None:
    release = manifest("approval.yaml")
    release["spec"]["steps"][0]["with"]["duration"] = "100ms"
    async with operator_runner(
        build_registry(Connection()), wait_for=["pipelines"], settings_hook=quick
    ):
        await api.create(release, "default")

        async def waiting() -> bool:
            out = (await kubectl("kubesteps", "tree", "release", "-o", "json")).out
            return bool(json.loads(out)["steps"][1]["children"][0]["phase"] == "Waiting")

        await until(waiting)
        done = await kubectl(
            "kubesteps", "reject", "release", "approve-release", "-m", "not today", "--wait"
        )
        assert done.code == 0, done.err
        watched = await kubectl("kubesteps", "watch", "release")
        assert watched.code == 1
        assert watched.out.splitlines()[-1] == "run release-1 Failed (Rejected)"
        logs = await kubectl("kubesteps", "logs", "release", "approve-release")
        assert "step 'approve-release' rejected: not today" in logs.out


# -- refusals -------------------------------------------------------------------------------


async def test_an_rbac_refusal_is_reported_as_such(
    api: KubeClient, kubectl: Kubectl, k8s_emulator: Emulator
) -> None:
    await store(api, LIVE["release"])
    k8s_emulator.inject(
        verb="patch",
        resource="pipelines",
        status=403,
        times=None,
        message='pipelines.kubesteps.dev "release" is forbidden: User "bob" '
        'cannot patch resource "pipelines" in API group '
        '"kubesteps.dev" in the namespace "default"',
    )
    done = await kubectl("kubesteps", "approve", "release", "approve-release")
    assert done.code == 1
    assert done.err == (
        "kubesteps: error: you may not patch pipelines in namespace default (the server said:"
        ' pipelines.kubesteps.dev "release" is forbidden: User "bob" cannot patch resource '
        '"pipelines" in API group "kubesteps.dev" in the namespace "default")\n'
    )


async def test_an_unreachable_server_is_one_line(kubectl: Kubectl, tmp_path: Any) -> None:
    config = tmp_path / "gone"
    config.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "x",
                "clusters": [{"name": "x", "cluster": {"server": "http://127.0.0.1:9"}}],
                "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}],
                "users": [{"name": "x", "user": {}}],
            }
        )
    )
    done = await kubectl("kubesteps", "get", "--kubeconfig", str(config))
    assert done.code == 1
    assert done.err.startswith(
        "kubesteps: error: cannot reach the Kubernetes API at http://127.0.0.1:9: "
    )
    assert len(done.err.splitlines()) == 1


# -- completion -----------------------------------------------------------------------------


async def test_kubectl_completes_verbs_pipeline_names_and_step_names(
    api: KubeClient, kubectl: Kubectl
) -> None:
    await store(api, LIVE["release"])
    await store(api, LIVE["tidy"])
    verbs = await kubectl("__complete", "kubesteps", "")
    words = [line.split("\t")[0] for line in verbs.out.splitlines()]
    for verb in (
        "get",
        "describe",
        "tree",
        "watch",
        "history",
        "logs",
        "graph",
        "approve",
        "reject",
        "retry",
        "rerun",
        "cancel",
        "suspend",
        "resume",
    ):
        assert verb in words, verbs.out
    assert verbs.out.splitlines()[-1] == ":4"
    names = await kubectl("__complete", "kubesteps", "describe", "")
    assert [line.split("\t")[0] for line in names.out.splitlines()[:-1]] == ["release", "tidy"]
    prefix = await kubectl("__complete", "kubesteps", "watch", "ti")
    assert [line.split("\t")[0] for line in prefix.out.splitlines()[:-1]] == ["tidy"]
    steps = await kubectl("__complete", "kubesteps", "approve", "release", "")
    assert steps.out.splitlines()[:-1] == ["approve-release\tWaiting"]
    logs = await kubectl("__complete", "kubesteps", "logs", "tidy", "")
    assert [line.split("\t")[0] for line in logs.out.splitlines()[:-1]] == [
        "build",
        "alert",
        "report",
    ]


@pytest.mark.parametrize("flag", ["-h", "--help"])
async def test_the_plugin_has_help(kubectl: Kubectl, flag: str) -> None:
    done = await kubectl("kubesteps", flag)
    assert done.code == 0
    assert "Usage: kubectl kubesteps" in done.out
