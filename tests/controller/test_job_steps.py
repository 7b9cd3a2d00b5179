"""Job steps through a reconcile pass, the test playing the Job controller and the kubelet:
it creates the Job's Pod and writes the statuses they would (nothing runs containers here).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from kubesteps.actions.job import LOG_TAIL_LINES
from kubesteps.controller.reconciler import Reconciler
from kubesteps.kube.client import KubeClient
from kubesteps.pipeline.status import MAX_LOG_TAIL
from kubesteps.testing import Emulator

from .conftest import pipeline

JOB = "build-compile-1-1"


def job_step(**extra: Any) -> dict[str, Any]:
    return {
        "name": "compile",
        "action": "job",
        "with": {"image": "registry.example/builder:1", "command": ["make"], **extra},
    }


async def started(
    api: KubeClient, reconciler: Reconciler, fetch: Any, **params: Any
) -> dict[str, Any]:
    await api.create(pipeline("build", [job_step(**params)]))
    result = await reconciler.reconcile(await fetch("build"))
    assert result.outcome == "wait"
    job = await api.get("batch/v1", "Job", JOB, "default")
    assert job is not None
    return job


async def pod_of(
    api: KubeClient,
    job: dict[str, Any],
    *,
    phase: str,
    container: dict[str, Any] | None = None,
    conditions: list[dict[str, Any]] | None = None,
) -> str:
    """The Pod the Job controller would create, with the status a kubelet would write."""
    name = f"{JOB}-x7k2p"
    await api.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": "default",
                "labels": job["spec"]["template"]["metadata"]["labels"],
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": JOB,
                        "uid": job["metadata"]["uid"],
                        "controller": True,
                    }
                ],
            },
            "spec": job["spec"]["template"]["spec"],
        }
    )
    status: dict[str, Any] = {"phase": phase, "conditions": conditions or []}
    if container is not None:
        status["containerStatuses"] = [{"name": "step", **container}]
    await api.patch("v1", "Pod", name, "default", {"status": status}, subresource="status")
    return name


async def finish(api: KubeClient, kind: str, **condition: str) -> None:
    await api.patch(
        "batch/v1",
        "Job",
        JOB,
        "default",
        {
            "status": {
                "conditions": [{"type": kind, "status": "True", **condition}],
                "succeeded": 1 if kind == "Complete" else 0,
            }
        },
        subresource="status",
    )


def terminated(message: str, code: int = 0) -> dict[str, Any]:
    return {"state": {"terminated": {"exitCode": code, "message": message}}}


async def test_the_termination_message_becomes_the_outputs_and_the_log_tail_is_kept(
    api: KubeClient, reconciler: Reconciler, fetch: Any, k8s_emulator: Emulator
) -> None:
    job = await started(api, reconciler, fetch)
    results = {"version": "1.4.2", "digest": "sha256:ab12", "tests": 118, "jobName": "not this one"}
    pod = await pod_of(api, job, phase="Succeeded", container=terminated(json.dumps(results)))
    k8s_emulator.set_log("default", pod, "".join(f"line {n}\n" for n in range(1, 101)))
    await finish(api, "Complete")

    result = await reconciler.reconcile(await fetch("build"))

    assert result.outcome == "done"
    record = (await fetch("build"))["status"]["steps"][0]
    outputs = record["outputs"]
    assert {k: outputs[k] for k in ("version", "digest", "tests")} == {
        "version": "1.4.2",
        "digest": "sha256:ab12",
        "tests": 118,
    }
    assert outputs["jobName"] == JOB  # the action's own outputs win
    assert record["logTail"] == "\n".join(f"line {n}" for n in range(101 - LOG_TAIL_LINES, 101))


async def test_a_later_step_reads_a_result_in_cel(
    api: KubeClient, reconciler: Reconciler, fetch: Any
) -> None:
    await api.create(
        pipeline(
            "build",
            [
                job_step(),
                {
                    "name": "announce",
                    "action": "python",
                    "when": ["steps.compile.outputs.tests > 100"],
                    "with": {
                        "function": "kubesteps.examples.greet",
                        "args": {"who": "${ steps.compile.outputs.version }"},
                    },
                },
            ],
        )
    )
    await reconciler.reconcile(await fetch("build"))
    job = await api.get("batch/v1", "Job", JOB, "default")
    assert job is not None
    await pod_of(
        api, job, phase="Succeeded", container=terminated('{"version": "2.0.0", "tests": 118}')
    )
    await finish(api, "Complete")

    await reconciler.reconcile(await fetch("build"))

    announce = (await fetch("build"))["status"]["steps"][1]
    assert announce["phase"] == "Succeeded"
    assert announce["outputs"]["who"] == "2.0.0"


async def test_a_termination_message_that_is_no_json_object_is_kept_as_text(
    api: KubeClient, reconciler: Reconciler, fetch: Any
) -> None:
    job = await started(api, reconciler, fetch)
    await pod_of(api, job, phase="Succeeded", container=terminated("built 3 images"))
    await finish(api, "Complete")

    await reconciler.reconcile(await fetch("build"))

    record = (await fetch("build"))["status"]["steps"][0]
    assert record["outputs"]["terminationMessage"] == "built 3 images"
    assert "logTail" in record
    assert record["logTail"] == ""


async def test_a_failed_job_says_what_the_container_said_and_keeps_its_log(
    api: KubeClient, reconciler: Reconciler, fetch: Any, k8s_emulator: Emulator
) -> None:
    await api.create(pipeline("build", [{**job_step(), "retry": {"limit": 0}}]))
    await reconciler.reconcile(await fetch("build"))
    job = await api.get("batch/v1", "Job", JOB, "default")
    assert job is not None
    pod = await pod_of(api, job, phase="Failed", container=terminated("compiler: 3 errors", code=2))
    k8s_emulator.set_log("default", pod, "main.c:3: error: expected ';'\n")
    await finish(
        api,
        "Failed",
        reason="BackoffLimitExceeded",
        message="Job has reached the specified backoff limit",
    )

    result = await reconciler.reconcile(await fetch("build"))

    assert result.outcome == "failed"
    record = (await fetch("build"))["status"]["steps"][0]
    assert record["message"] == (
        f"Job {JOB} failed: BackoffLimitExceeded: Job has reached the specified backoff "
        "limit; the container's termination message: compiler: 3 errors"
    )
    assert record["logTail"] == "main.c:3: error: expected ';'"


async def test_a_long_log_keeps_whole_last_lines_within_the_bound(
    api: KubeClient, reconciler: Reconciler, fetch: Any, k8s_emulator: Emulator
) -> None:
    job = await started(api, reconciler, fetch)
    pod = await pod_of(api, job, phase="Succeeded", container=terminated(""))
    k8s_emulator.set_log("default", pod, "".join(f"{n:04d} " + "x" * 300 + "\n" for n in range(40)))
    await finish(api, "Complete")

    await reconciler.reconcile(await fetch("build"))

    tail = (await fetch("build"))["status"]["steps"][0]["logTail"]
    assert len(tail) <= MAX_LOG_TAIL
    assert tail.endswith("x")
    assert tail.startswith("0034 ")


@pytest.mark.parametrize(
    ("status", "said"),
    [
        (
            {
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": "0/3 nodes are available: 3 Insufficient cpu.",
                    }
                ]
            },
            "cannot be scheduled: 0/3 nodes are available: 3 Insufficient cpu.",
        ),
        (
            {
                "container": {
                    "state": {
                        "waiting": {
                            "reason": "ImagePullBackOff",
                            "message": 'Back-off pulling image "registry.example/builder:1"',
                        }
                    }
                }
            },
            'ImagePullBackOff: Back-off pulling image "registry.example/builder:1"',
        ),
        (
            {
                "container": {
                    "state": {
                        "waiting": {
                            "reason": "CreateContainerConfigError",
                            "message": 'secret "db" not found',
                        }
                    }
                }
            },
            'CreateContainerConfigError: secret "db" not found',
        ),
    ],
)
async def test_a_stuck_pod_is_named_in_the_step_message(
    api: KubeClient, reconciler: Reconciler, fetch: Any, status: dict[str, Any], said: str
) -> None:
    job = await started(api, reconciler, fetch)
    pod = await pod_of(
        api,
        job,
        phase="Pending",
        container=status.get("container"),
        conditions=status.get("conditions"),
    )

    result = await reconciler.reconcile(await fetch("build"))

    assert result.outcome == "wait"
    message = (await fetch("build"))["status"]["steps"][0]["message"]
    assert message.startswith(
        f"waiting for Job {JOB} to finish (0 active, 0 succeeded, 0 failed): Pod {pod}"
    )
    assert f"{said} (next check " in message


async def test_a_pending_pod_with_a_warning_event_says_it(
    api: KubeClient, reconciler: Reconciler, fetch: Any
) -> None:
    job = await started(api, reconciler, fetch)
    pod = await pod_of(
        api, job, phase="Pending", container={"state": {"waiting": {"reason": "ContainerCreating"}}}
    )
    for reason, message, stamp in (
        (
            "FailedMount",
            'MountVolume.SetUp failed for volume "conf": configmap "app" not found',
            "2026-01-01T00:00:09Z",
        ),
        ("Pulled", "an older, unrelated event", "2026-01-01T00:00:01Z"),
    ):
        await api.create(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": f"{pod}.{reason.lower()}", "namespace": "default"},
                "involvedObject": {"kind": "Pod", "name": pod, "namespace": "default"},
                "reason": reason,
                "message": message,
                "type": "Warning",
                "lastTimestamp": stamp,
            }
        )

    await reconciler.reconcile(await fetch("build"))

    message = (await fetch("build"))["status"]["steps"][0]["message"]
    assert (
        f'Pod {pod}: FailedMount: MountVolume.SetUp failed for volume "conf": configmap '
        '"app" not found (next check '
    ) in message


async def test_a_pod_that_is_starting_normally_adds_nothing_to_the_message(
    api: KubeClient, reconciler: Reconciler, fetch: Any
) -> None:
    job = await started(api, reconciler, fetch)
    await pod_of(
        api, job, phase="Pending", container={"state": {"waiting": {"reason": "ContainerCreating"}}}
    )

    await reconciler.reconcile(await fetch("build"))

    message = (await fetch("build"))["status"]["steps"][0]["message"]
    assert "(0 active, 0 succeeded, 0 failed) (next check " in message
