"""job: creates a Job per attempt and waits by requeue; the tests play the Job controller by
writing the Job's status (Jobs never run in the emulator)."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from kubesteps.actions.job import (
    LABEL_ATTEMPT,
    LABEL_PIPELINE,
    LABEL_RETRY,
    LABEL_RUN,
    LABEL_STEP,
    job_name,
    label_value,
    stop_jobs,
)
from kubesteps.engine import OutcomeKind, StepStatus
from kubesteps.kube.client import KubeClient
from kubesteps.testing import Emulator

from .conftest import PIPELINE_UID, ActionRun, FakeClock, RunFactory, pipeline_object, run_of

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
BUILD = {
    "image": "busybox:1.36",
    "command": ["sh", "-c"],
    "args": ["make"],
    "env": [{"name": "MODE", "value": "release"}],
    "resources": {"limits": {"memory": "256Mi"}},
    "backoffLimit": 2,
    "activeDeadlineSeconds": 600,
    "serviceAccountName": "builder",
}


def job(emulator: Emulator, name: str) -> dict[str, Any]:
    stored = emulator.object("jobs", name, "default")
    assert stored is not None, f"no Job {name}"
    return stored


async def finish(kube: KubeClient, name: str, kind: str, **extra: Any) -> None:
    """Write what the Job controller would when the Job ends."""
    condition = {
        "type": kind,
        "status": "True",
        "reason": extra.pop("reason", ""),
        "message": extra.pop("message", ""),
    }
    await kube.patch(
        "batch/v1",
        "Job",
        name,
        "default",
        {"status": {"conditions": [condition], **extra}},
        subresource="status",
    )


async def started_build(make_run: RunFactory) -> ActionRun:
    run = make_run("job", BUILD, step="build")
    assert (await run.once()).kind is OutcomeKind.WAIT
    return run


async def test_the_first_pass_creates_a_job_owned_by_the_pipeline_and_waits(
    make_run: RunFactory, k8s_emulator: Emulator
) -> None:
    run = make_run("job", BUILD, step="build")
    outcome = await run.once()
    assert outcome.kind is OutcomeKind.WAIT
    assert outcome.delay == 5
    assert run.state.message.startswith("started Job demo-build-1-1")
    created = job(k8s_emulator, "demo-build-1-1")
    labels = {
        LABEL_PIPELINE: "demo",
        LABEL_STEP: "build",
        LABEL_RUN: "1",
        LABEL_RETRY: "0",
        LABEL_ATTEMPT: "1",
    }
    assert created["metadata"]["labels"] == labels
    assert [ref["uid"] for ref in created["metadata"]["ownerReferences"]] == [PIPELINE_UID]
    spec = created["spec"]
    assert spec["backoffLimit"] == 2
    assert spec["activeDeadlineSeconds"] == 600
    assert spec["ttlSecondsAfterFinished"] == 3600
    assert spec["template"]["metadata"]["labels"] == labels
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["serviceAccountName"] == "builder"
    assert pod["containers"] == [
        {
            "name": "step",
            "image": "busybox:1.36",
            "command": ["sh", "-c"],
            "args": ["make"],
            "env": [{"name": "MODE", "value": "release"}],
            "resources": {"limits": {"memory": "256Mi"}},
            "securityContext": {  # restricted by default
                "runAsNonRoot": True,
                "runAsUser": 65532,
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"},
            },
        }
    ]


async def test_waits_while_the_job_runs_and_succeeds_when_it_completes(
    make_run: RunFactory, kube: KubeClient, clock: FakeClock
) -> None:
    run = await started_build(make_run)
    await kube.patch(
        "batch/v1",
        "Job",
        "demo-build-1-1",
        "default",
        {"status": {"active": 1}},
        subresource="status",
    )
    clock.advance(5)
    assert (await run.once()).kind is OutcomeKind.WAIT
    assert run.state.message.startswith(
        "waiting for Job demo-build-1-1 to finish (1 active, 0 succeeded, 0 failed)"
    )
    await finish(
        kube,
        "demo-build-1-1",
        "Complete",
        succeeded=1,
        startTime="2025-01-01T12:00:01Z",
        completionTime="2025-01-01T12:00:09Z",
    )
    clock.advance(5)
    assert (await run.once()).kind is OutcomeKind.DONE
    assert run.state.status is StepStatus.SUCCEEDED
    assert run.state.outputs == {
        "jobName": "demo-build-1-1",
        "succeeded": 1,
        "startTime": "2025-01-01T12:00:01Z",
        "completionTime": "2025-01-01T12:00:09Z",
    }


async def test_a_failed_job_is_retried_with_a_new_job_for_the_next_attempt(
    make_run: RunFactory, kube: KubeClient, k8s_emulator: Emulator, clock: FakeClock
) -> None:
    run = await started_build(make_run)
    await finish(
        kube,
        "demo-build-1-1",
        "Failed",
        reason="BackoffLimitExceeded",
        message="Job has reached the specified backoff limit",
    )
    clock.advance(5)
    outcome = await run.once()
    assert outcome.kind is OutcomeKind.RETRY
    assert run.state.message == (
        "attempt 1/3 failed: Job demo-build-1-1 failed: BackoffLimitExceeded: "
        "Job has reached the specified backoff limit"
    )
    clock.advance(outcome.delay or 0)
    assert (await run.once()).kind is OutcomeKind.WAIT
    assert run.state.message.startswith("started Job demo-build-1-2")
    assert job(k8s_emulator, "demo-build-1-2")["metadata"]["labels"][LABEL_ATTEMPT] == "2"
    assert job(k8s_emulator, "demo-build-1-1")  # the failed one stays, for its logs
    await finish(kube, "demo-build-1-2", "Complete", succeeded=1)
    clock.advance(5)
    assert (await run.once()).kind is OutcomeKind.DONE
    assert run.state.outputs is not None
    assert run.state.outputs["jobName"] == "demo-build-1-2"


async def test_the_step_fails_for_good_when_its_jobs_keep_failing(
    make_run: RunFactory, kube: KubeClient, clock: FakeClock
) -> None:
    run = await started_build(make_run)
    for attempt in (1, 2, 3):
        await finish(
            kube,
            f"demo-build-1-{attempt}",
            "Failed",
            reason="DeadlineExceeded",
            message="Job was active longer than specified deadline",
        )
        clock.advance(60)
        outcome = await run.once()
        if attempt < 3:
            assert outcome.kind is OutcomeKind.RETRY
            clock.advance(60)
            assert (await run.once()).kind is OutcomeKind.WAIT
    assert outcome.kind is OutcomeKind.FAILED
    assert run.state.message == (
        "Job demo-build-1-3 failed: DeadlineExceeded: Job was active longer than specified deadline"
    )


async def test_a_job_deleted_before_finishing_is_created_again(
    make_run: RunFactory, kube: KubeClient, k8s_emulator: Emulator, clock: FakeClock
) -> None:
    run = await started_build(make_run)
    first_uid = job(k8s_emulator, "demo-build-1-1")["metadata"]["uid"]
    await kube.delete("batch/v1", "Job", "demo-build-1-1", "default")
    clock.advance(5)
    assert (await run.once()).kind is OutcomeKind.WAIT
    assert job(k8s_emulator, "demo-build-1-1")["metadata"]["uid"] != first_uid


async def test_after_a_transient_error_the_running_job_is_still_the_one_waited_for(
    make_run: RunFactory, kube: KubeClient, k8s_emulator: Emulator, clock: FakeClock
) -> None:
    run = await started_build(make_run)
    k8s_emulator.inject(verb="list", resource="jobs", status=500)
    clock.advance(5)
    outcome = await run.once()
    assert outcome.kind is OutcomeKind.RETRY
    clock.advance(outcome.delay or 0)
    assert (await run.once()).kind is OutcomeKind.WAIT  # attempt 2, since the error
    assert run.state.message.startswith("waiting for Job demo-build-1-1 to finish")
    assert k8s_emulator.object("jobs", "demo-build-1-2", "default") is None
    await finish(kube, "demo-build-1-1", "Complete", succeeded=1)
    clock.advance(5)
    assert (await run.once()).kind is OutcomeKind.DONE
    assert run.state.outputs is not None
    assert run.state.outputs["jobName"] == "demo-build-1-1"


async def test_a_new_run_runs_a_new_job(
    make_run: RunFactory, kube: KubeClient, k8s_emulator: Emulator
) -> None:
    run = await started_build(make_run)
    await finish(kube, "demo-build-1-1", "Complete", succeeded=1)
    assert (await run.once()).kind is OutcomeKind.DONE
    rerun = make_run("job", BUILD, step="build", run=run_of(2))
    assert (await rerun.once()).kind is OutcomeKind.WAIT
    assert job(k8s_emulator, "demo-build-2-1")["metadata"]["labels"][LABEL_RUN] == "2"


async def test_a_retried_run_counts_its_attempts_afresh_in_jobs_of_their_own(
    make_run: RunFactory, k8s_emulator: Emulator
) -> None:
    run = make_run("job", BUILD, step="build", run=run_of(3, retries=1))
    assert (await run.once()).kind is OutcomeKind.WAIT
    created = job(k8s_emulator, "demo-build-3r1-1")
    assert created["metadata"]["labels"][LABEL_RETRY] == "1"
    assert created["metadata"]["labels"][LABEL_ATTEMPT] == "1"


async def test_a_timed_out_attempt_leaves_its_job_behind_and_the_next_attempt_starts_anew(
    make_run: RunFactory, kube: KubeClient, k8s_emulator: Emulator, clock: FakeClock
) -> None:
    """The reconciler stops a timed-out attempt's Job; should that fail, the next attempt
    does not adopt it but deletes it and starts its own."""
    from datetime import timedelta

    run = make_run("job", BUILD, step="build", timeout=timedelta(minutes=1))
    assert (await run.once()).kind is OutcomeKind.WAIT
    clock.advance(61)
    timed_out = await run.once()
    assert timed_out.kind is OutcomeKind.RETRY
    assert run.state.reason == "TimedOut"
    clock.advance(timed_out.delay or 0)

    assert (await run.once()).kind is OutcomeKind.WAIT

    assert run.state.message.startswith("started Job demo-build-1-2")
    assert k8s_emulator.object("jobs", "demo-build-1-1", "default") is None


async def test_stop_jobs_deletes_unfinished_jobs_only_and_can_spare_a_run(
    make_run: RunFactory, kube: KubeClient, k8s_emulator: Emulator
) -> None:
    first = make_run("job", BUILD, step="build")
    await first.once()
    done = make_run("job", BUILD, step="test")
    await done.once()
    await finish(kube, "demo-test-1-1", "Complete", succeeded=1)
    newer = make_run("job", BUILD, step="deploy", run=run_of(2))
    await newer.once()

    assert await stop_jobs(kube, "default", "demo", keep_run=2) == ["demo-build-1-1"]
    assert k8s_emulator.object("jobs", "demo-test-1-1", "default") is not None
    assert k8s_emulator.object("jobs", "demo-deploy-2-1", "default") is not None
    assert await stop_jobs(kube, "default", "demo") == ["demo-deploy-2-1"]


async def test_a_newer_run_stops_what_an_older_run_of_the_step_left_running(
    make_run: RunFactory, k8s_emulator: Emulator
) -> None:
    await started_build(make_run)
    newer = make_run("job", BUILD, step="build", run=run_of(2))

    assert (await newer.once()).kind is OutcomeKind.WAIT

    assert k8s_emulator.object("jobs", "demo-build-1-1", "default") is None
    assert k8s_emulator.object("jobs", "demo-build-2-1", "default") is not None


async def test_a_step_waiting_across_a_retry_of_its_run_keeps_its_job(
    make_run: RunFactory, kube: KubeClient, k8s_emulator: Emulator, clock: FakeClock
) -> None:
    """A retry restarts failed steps only; one still waiting goes on with its Job."""
    run = await started_build(make_run)
    run.run = run_of(1, retries=1)
    clock.advance(5)

    assert (await run.once()).kind is OutcomeKind.WAIT

    assert run.state.message.startswith("waiting for Job demo-build-1-1")
    assert k8s_emulator.object("jobs", "demo-build-1r1-1", "default") is None
    await finish(kube, "demo-build-1-1", "Complete", succeeded=1)
    clock.advance(5)
    assert (await run.once()).kind is OutcomeKind.DONE


async def test_a_job_started_before_runs_existed_is_adopted(
    make_run: RunFactory, kube: KubeClient, k8s_emulator: Emulator, clock: FakeClock
) -> None:
    """An upgrade keeps a waiting step's record as run 1's; its Job carries the labels of
    the version before (one set of Jobs per generation), and a name that may equal the new
    one: it is found, not doubled."""
    legacy = {
        "kubesteps.dev/pipeline": "demo",
        "kubesteps.dev/step": "build",
        "kubesteps.dev/generation": "1",
        "kubesteps.dev/attempt": "1",
    }
    await kube.create(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": "demo-build-1-1",
                "namespace": "default",
                "labels": legacy,
                "ownerReferences": [
                    {
                        "apiVersion": "kubesteps.dev/v1alpha1",
                        "kind": "Pipeline",
                        "name": "demo",
                        "uid": PIPELINE_UID,
                    }
                ],
            },
            "spec": {
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "step", "image": "busybox:1.36"}],
                    }
                }
            },
        }
    )
    await finish(kube, "demo-build-1-1", "Complete", succeeded=1)
    run = make_run("job", BUILD, step="build")

    assert (await run.once()).kind is OutcomeKind.DONE
    assert run.state.outputs is not None
    assert run.state.outputs["jobName"] == "demo-build-1-1"


async def test_a_job_of_the_same_name_owned_by_someone_else_fails_the_step_clearly(
    make_run: RunFactory, kube: KubeClient
) -> None:
    await kube.create(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "demo-build-1-1", "namespace": "default"},
            "spec": {
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "c", "image": "busybox:1.36"}],
                    }
                }
            },
        }
    )
    run = make_run("job", BUILD, step="build")

    assert (await run.once()).kind is OutcomeKind.FAILED
    assert run.state.message == (
        "Job default/demo-build-1-1 exists and does not belong to "
        "pipeline 'demo': delete it or rename the step"
    )


async def test_a_refused_job_fails_for_good(make_run: RunFactory, k8s_emulator: Emulator) -> None:
    k8s_emulator.inject(
        verb="create",
        resource="jobs",
        status=403,
        message='jobs.batch is forbidden: User "system:serviceaccount:x" '
        'cannot create resource "jobs"',
    )
    run = make_run("job", BUILD, step="build")
    assert (await run.once()).kind is OutcomeKind.FAILED
    assert run.state.message.startswith("creating Job default/demo-build-1-1: 403 Forbidden")


async def test_a_pipeline_without_a_uid_cannot_own_its_job(make_run: RunFactory) -> None:
    pipeline = pipeline_object()
    pipeline["metadata"]["uid"] = ""
    run = make_run("job", BUILD, step="build", pipeline=pipeline)
    assert (await run.once()).kind is OutcomeKind.FAILED
    assert "has no metadata.uid" in run.state.message


async def test_without_the_kubernetes_api_the_step_fails_clearly(
    make_run: RunFactory,
) -> None:
    run = make_run("job", BUILD, step="build", kube=None)
    assert (await run.once()).kind is OutcomeKind.FAILED
    assert "needs the Kubernetes API" in run.state.message


def test_long_names_are_cut_and_hashed_to_stay_distinct() -> None:
    long_pipeline = "p" * 70
    first = job_name(long_pipeline, "build", "12", 3)
    second = job_name(long_pipeline + "x", "build", "12", 3)
    assert len(first) == 63
    assert first.endswith("-12-3")
    assert first != second
    assert DNS_LABEL.match(first)


def test_dots_in_a_pipeline_name_become_dashes() -> None:
    assert job_name("release.v2", "build", "1", 1) == "release-v2-build-1-1"


@given(
    pipeline=st.from_regex(r"[a-z0-9]([-a-z0-9.]{0,200}[a-z0-9])?", fullmatch=True),
    step=st.from_regex(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", fullmatch=True),
    run=st.integers(min_value=1, max_value=10**9),
    retries=st.integers(min_value=0, max_value=10**6),
    attempt=st.integers(min_value=1, max_value=100),
)
def test_job_names_are_always_dns_labels(
    pipeline: str, step: str, run: int, retries: int, attempt: int
) -> None:
    name = job_name(pipeline, step, f"{run}r{retries}" if retries else str(run), attempt)
    assert len(name) <= 63
    assert DNS_LABEL.match(name), name


def test_long_label_values_are_cut_and_hashed() -> None:
    value = label_value("a" * 100)
    assert len(value) == 63
    assert value != label_value("a" * 101)
    assert label_value("short") == "short"
