"""``job``: run a container as a Kubernetes Job owned by the Pipeline, and wait for it by requeue.

Each attempt of the step has its own Job, named from the Pipeline, the step, the Pipeline's
generation and the attempt, so a pass can always find the Job its attempt started: the
operator keeps no memory of its own. A failed Job fails the attempt (the step's retry policy
decides whether another Job runs); a Job that disappears before finishing is created again.
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any

from pydantic import BaseModel

from kubesteps.actions.base import ActionContext, Outputs
from kubesteps.actions.common import api_call, owner_reference, poll_delay, wait_started
from kubesteps.actions.params import JobParams
from kubesteps.engine import RetryableError, StepStatus, WaitError
from kubesteps.kube.client import ApiError

log = logging.getLogger("kubesteps.actions.job")

LABEL_PIPELINE = "kubesteps.dev/pipeline"
LABEL_STEP = "kubesteps.dev/step"
LABEL_GENERATION = "kubesteps.dev/generation"
LABEL_ATTEMPT = "kubesteps.dev/attempt"
CONTAINER_NAME = "step"
NAME_LIMIT = 63  # the Job controller copies the name into a pod label value


class JobAction:
    name: str = "job"
    params: type[BaseModel] = JobParams

    async def run(self, ctx: ActionContext, params: JobParams) -> Outputs:
        kube = ctx.require_kube()
        selector = ",".join(f"{key}={value}" for key, value in _selector_labels(ctx).items())
        with api_call(f"listing the Jobs of step {ctx.name!r}"):
            jobs = await kube.list("batch/v1", "Job", ctx.namespace, label_selector=selector)
        job = _latest(jobs, ctx.step.attempt)
        finished = _finished(job) if job is not None else None

        if job is None or (finished == "Failed" and _attempt_of(job) < ctx.step.attempt):
            # No Job yet for this attempt: the first pass, a retry after a failed Job, or
            # someone deleted the running one.
            name = job_name(ctx.pipeline_name, ctx.name, ctx.generation, ctx.step.attempt)
            previous = ctx.step.previous
            if previous is not None and previous.status is StepStatus.WAITING and job is None:
                log.warning("step %r: Job %s is gone before finishing; creating it again",
                            ctx.name, name)
            manifest = _manifest(ctx, params, name)
            with api_call(f"creating Job {ctx.namespace}/{name}"):
                try:
                    await kube.create(manifest, ctx.namespace)
                except ApiError as err:
                    if err.status != 409:  # already there: a pass that crashed after creating
                        raise
            raise WaitError(f"started Job {name}", poll_delay(0))

        name = job["metadata"]["name"]
        status = job.get("status") or {}
        if finished == "Complete":
            return {
                "jobName": name,
                "succeeded": int(status.get("succeeded") or 0),
                "startTime": status.get("startTime", ""),
                "completionTime": status.get("completionTime", ""),
            }
        if finished == "Failed":
            failed = _condition(job, "Failed") or {}
            why = ": ".join(
                part for part in (failed.get("reason"), failed.get("message")) if part
            )
            raise RetryableError(f"Job {name} failed: {why or 'no reason given'}")
        elapsed = (ctx.clock() - wait_started(ctx)).total_seconds()
        counts = ", ".join(
            f"{status.get(key) or 0} {key}" for key in ("active", "succeeded", "failed")
        )
        raise WaitError(f"waiting for Job {name} to finish ({counts})", poll_delay(elapsed))


def job_name(pipeline: str, step: str, generation: int, attempt: int) -> str:
    """``<pipeline>-<step>-<generation>-<attempt>``, a DNS-1123 label of at most 63 characters.

    When too long, the pipeline and step part is cut and a hash of it added, so two long
    names that share a prefix still get different Jobs.
    """
    base = re.sub(r"[^a-z0-9-]+", "-", f"{pipeline}-{step}".lower()).strip("-")
    suffix = f"-{generation}-{attempt}"
    if len(base) + len(suffix) <= NAME_LIMIT:
        return base + suffix
    digest = hashlib.sha256(f"{pipeline}/{step}".encode()).hexdigest()[:8]
    keep = NAME_LIMIT - len(suffix) - len(digest) - 1
    return f"{base[:keep].rstrip('-')}-{digest}{suffix}"


def label_value(text: str) -> str:
    """``text`` as a label value (at most 63 characters; cut and hashed when longer)."""
    if len(text) <= NAME_LIMIT:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{text[: NAME_LIMIT - 9].rstrip('-_.')}-{digest}"


def _selector_labels(ctx: ActionContext) -> dict[str, str]:
    return {
        LABEL_PIPELINE: label_value(ctx.pipeline_name),
        LABEL_STEP: label_value(ctx.name),
        LABEL_GENERATION: str(ctx.generation),
    }


def _manifest(ctx: ActionContext, params: JobParams, name: str) -> dict[str, Any]:
    labels = {**_selector_labels(ctx), LABEL_ATTEMPT: str(ctx.step.attempt)}
    container: dict[str, Any] = {"name": CONTAINER_NAME, "image": params.image}
    if params.command:
        container["command"] = list(params.command)
    if params.args:
        container["args"] = list(params.args)
    if params.env:
        container["env"] = [{"name": var.name, "value": var.value} for var in params.env]
    if params.resources is not None:
        container["resources"] = params.resources.model_dump(exclude_defaults=True)
    pod: dict[str, Any] = {"restartPolicy": "Never", "containers": [container]}
    if params.service_account_name:
        pod["serviceAccountName"] = params.service_account_name
    spec: dict[str, Any] = {
        "backoffLimit": params.backoff_limit,
        "template": {"metadata": {"labels": labels}, "spec": pod},
    }
    if params.active_deadline_seconds is not None:
        spec["activeDeadlineSeconds"] = params.active_deadline_seconds
    if params.ttl_seconds_after_finished is not None:
        spec["ttlSecondsAfterFinished"] = params.ttl_seconds_after_finished
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": ctx.namespace,
            "labels": labels,
            "ownerReferences": [owner_reference(ctx)],
        },
        "spec": spec,
    }


def _latest(jobs: list[dict[str, Any]], attempt: int) -> dict[str, Any] | None:
    """The Job of the latest attempt up to ``attempt`` (later ones belong to no live attempt)."""
    candidates = [job for job in jobs if 0 < _attempt_of(job) <= attempt]
    return max(candidates, key=_attempt_of, default=None)


def _attempt_of(job: dict[str, Any]) -> int:
    value = ((job.get("metadata") or {}).get("labels") or {}).get(LABEL_ATTEMPT, "")
    return int(value) if value.isdigit() else 0


def _condition(job: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if isinstance(condition, dict) and condition.get("type") == kind:
            return condition
    return None


def _finished(job: dict[str, Any]) -> str | None:
    """``Complete``, ``Failed``, or None while the Job runs."""
    for kind in ("Complete", "Failed"):
        condition = _condition(job, kind)
        if condition is not None and condition.get("status") == "True":
            return kind
    return None
