"""``job``: run a container as a Kubernetes Job owned by the Pipeline, and wait for it by requeue.

Each attempt of the step has its own Job, named from the Pipeline, the step, the run (and
its retry count) and the attempt, so a pass can always find the Job its attempt started:
the operator keeps no memory of its own. A failed Job fails the attempt (the step's retry
policy decides whether another Job runs); a Job that disappears before finishing is created
again. A Job whose attempt ended without it (timed out, cancelled, superseded by a newer
run) is deleted with background propagation: ``stop_jobs``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Sequence
from typing import Any

import aiohttp
from pydantic import BaseModel

from kubesteps.actions.base import ActionContext, Outputs
from kubesteps.actions.common import api_call, owner_reference, poll_delay, wait_started
from kubesteps.engine import PermanentError, RetryableError, StepStatus, WaitError
from kubesteps.kube.client import ApiError, KubeClient
from kubesteps.kube.meta import meta_of
from kubesteps.pipeline.params import RESTRICTED_SECURITY_CONTEXT, JobParams
from kubesteps.pipeline.status import MAX_LOG_TAIL

log = logging.getLogger("kubesteps.actions.job")

LABEL_PIPELINE = "kubesteps.dev/pipeline"
LABEL_STEP = "kubesteps.dev/step"
LABEL_RUN = "kubesteps.dev/run"
LABEL_RETRY = "kubesteps.dev/retry"
LABEL_ATTEMPT = "kubesteps.dev/attempt"
# How Jobs were labelled before runs existed (one set of Jobs per spec generation).
LEGACY_LABEL_GENERATION = "kubesteps.dev/generation"
CONTAINER_NAME = "step"
NAME_LIMIT = 63  # the Job controller copies the name into a pod label value


class JobAction:
    name: str = "job"
    params: type[BaseModel] = JobParams

    async def run(self, ctx: ActionContext, params: JobParams) -> Outputs:
        kube = ctx.require_kube()
        selector = ",".join(f"{key}={value}" for key, value in _step_labels(ctx).items())
        with api_call(f"listing the Jobs of step {ctx.name!r}"):
            listed = await kube.list("batch/v1", "Job", ctx.namespace, label_selector=selector)
        listed = [j for j in listed if not meta_of(j).deletion_timestamp]
        jobs = [j for j in listed if _of_run(j, ctx)]
        for stale in listed:
            # A Job of an earlier run (superseded), or of this step's attempt that timed out,
            # should have been stopped; if that failed, stop it now.
            older = not _of_run(stale, ctx)
            timed_out = _timed_out(ctx) and _key(stale)[1] < ctx.step.attempt
            if (older or timed_out) and _finished(stale) is None:
                await _delete(kube, stale)
                if not older:
                    jobs.remove(stale)
        job = _current(jobs, ctx)
        if job is None:
            # No Job yet for this attempt: the first pass, a retry, or someone deleted the
            # running one.
            name = job_name(ctx.pipeline_name, ctx.name, _run_part(ctx), ctx.step.attempt)
            previous = ctx.step.previous
            if previous is not None and previous.status is StepStatus.WAITING:
                log.warning(
                    "step %r: Job %s is gone before finishing; creating it again", ctx.name, name
                )
            manifest = _manifest(ctx, params, name)
            with api_call(f"creating Job {ctx.namespace}/{name}"):
                try:
                    await kube.create(manifest, ctx.namespace)
                except ApiError as err:
                    if err.status != 409:
                        raise
                    # Already there: a pass that crashed after creating it, or a Job the
                    # listing did not find (labelled by an older version): ours if we own it.
                    job = await kube.get("batch/v1", "Job", name, ctx.namespace)
                    if job is None or not _owned_by(job, ctx):
                        raise PermanentError(
                            f"Job {ctx.namespace}/{name} exists and does not belong to "
                            f"pipeline {ctx.pipeline_name!r}: delete it or rename the step"
                        ) from err
            if job is None:
                raise WaitError(f"started Job {name}", poll_delay(0))

        finished = _finished(job)
        name = job["metadata"]["name"]
        status = job.get("status") or {}
        pods = await _pods(kube, ctx, job)
        if finished == "Complete":
            pod = _last(pods, "Succeeded")
            await _keep_log_tail(kube, ctx, pod)
            said = _termination_message(pod)
            builtin = {
                "jobName": name,
                "succeeded": int(status.get("succeeded") or 0),
                "startTime": status.get("startTime", ""),
                "completionTime": status.get("completionTime", ""),
            }
            return {**_results(said, name), **builtin}
        if finished == "Failed":
            pod = _last(pods, "Failed")
            await _keep_log_tail(kube, ctx, pod)
            failed = _condition(job, "Failed") or {}
            why = ": ".join(part for part in (failed.get("reason"), failed.get("message")) if part)
            said = _termination_message(pod)
            told = f"; the container's termination message: {said[:300]}" if said else ""
            raise RetryableError(f"Job {name} failed: {why or 'no reason given'}{told}")
        elapsed = (ctx.clock() - wait_started(ctx)).total_seconds()
        counts = ", ".join(
            f"{status.get(key) or 0} {key}" for key in ("active", "succeeded", "failed")
        )
        trouble = await _trouble(kube, ctx, pods)
        raise WaitError(
            f"waiting for Job {name} to finish ({counts})" + (f": {trouble}" if trouble else ""),
            poll_delay(elapsed),
        )


# How much of a Pod's log a step keeps (status.steps[].logTail): its last lines, bounded.
LOG_TAIL_LINES = 20
LOG_TAIL_BYTES = 16 * 1024
# Why a container does not start, as the kubelet says it in its waiting state: reasons that
# mean someone has to act (a plain ContainerCreating does not).
_STUCK_REASONS = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)


async def _pods(kube: KubeClient, ctx: ActionContext, job: dict[str, Any]) -> list[dict[str, Any]]:
    """The Pods of ``job`` (by the labels its Pod template carries), oldest first; none when
    they cannot be read (results and diagnostics are then missing, and a warning says why)."""
    labels = _labels(job)
    selector = ",".join(
        f"{key}={labels[key]}"
        for key in (LABEL_PIPELINE, LABEL_STEP, LABEL_RUN, LABEL_RETRY, LABEL_ATTEMPT)
        if key in labels
    )
    try:
        pods = await kube.list("v1", "Pod", ctx.namespace, label_selector=selector)
    except (ApiError, aiohttp.ClientError, TimeoutError) as error:
        log.warning(
            "step %r: cannot read the Pods of Job %s (no results, log or scheduling "
            "problems are shown): %s",
            ctx.name,
            job["metadata"]["name"],
            error,
        )
        return []
    uid = meta_of(job).uid
    owned = [pod for pod in pods if not uid or uid in meta_of(pod).owner_uids]
    return sorted(owned, key=lambda pod: meta_of(pod).creation_timestamp)


def _last(pods: list[dict[str, Any]], phase: str) -> dict[str, Any] | None:
    """The newest Pod in ``phase``, else the newest Pod."""
    return next(
        (pod for pod in reversed(pods) if (pod.get("status") or {}).get("phase") == phase),
        pods[-1] if pods else None,
    )


def _container(pod: dict[str, Any] | None) -> dict[str, Any]:
    """The step container's status in ``pod`` (empty when there is none yet)."""
    for status in ((pod or {}).get("status") or {}).get("containerStatuses") or []:
        if isinstance(status, dict) and status.get("name") == CONTAINER_NAME:
            return status
    return {}


def _termination_message(pod: dict[str, Any] | None) -> str:
    """What the container wrote to /dev/termination-log ("" for nothing)."""
    container = _container(pod)
    for state in (container.get("state"), container.get("lastState")):
        terminated = (state or {}).get("terminated") if isinstance(state, dict) else None
        if isinstance(terminated, dict) and terminated.get("message"):
            return str(terminated["message"]).strip()
    return ""


def _results(said: str, job: str) -> dict[str, Any]:
    """The container's results: its termination message when that is a JSON object (its
    keys become outputs), else the text as ``terminationMessage``."""
    if not said:
        return {}
    try:
        parsed = json.loads(said)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        clash = sorted(set(parsed) & _BUILTIN_OUTPUTS)
        if clash:
            log.warning(
                "Job %s: result(s) %s are replaced by the job action's own outputs",
                job,
                ", ".join(clash),
            )
        return {str(key): value for key, value in parsed.items()}
    return {"terminationMessage": said}


_BUILTIN_OUTPUTS = frozenset({"jobName", "succeeded", "startTime", "completionTime"})


async def _keep_log_tail(kube: KubeClient, ctx: ActionContext, pod: dict[str, Any] | None) -> None:
    """Keep the last lines of ``pod``'s log in the step's record (``logTail``)."""
    if pod is None:
        return
    name = meta_of(pod).name
    try:
        text = await kube.read_log(
            ctx.namespace,
            name,
            container=CONTAINER_NAME,
            tail_lines=LOG_TAIL_LINES,
            limit_bytes=LOG_TAIL_BYTES,
        )
    except (ApiError, aiohttp.ClientError, TimeoutError) as error:
        log.warning("step %r: cannot read the log of Pod %s: %s", ctx.name, name, error)
        return
    ctx.keep_in_record(logTail=log_tail(text))


def log_tail(text: str) -> str:
    """The end of a log as a record keeps it: whole lines, at most ``MAX_LOG_TAIL``
    characters (a longer last line is cut at its start, marked with "…")."""
    text = text.rstrip("\n")
    if len(text) <= MAX_LOG_TAIL:
        return text
    kept = text[-(MAX_LOG_TAIL - 1) :]
    newline = kept.find("\n")
    return kept[newline + 1 :] if 0 <= newline < len(kept) - 1 else "…" + kept


async def _trouble(kube: KubeClient, ctx: ActionContext, pods: list[dict[str, Any]]) -> str:
    """Why the Job's Pod does not get going, if it is stuck: not schedulable, no image, a
    missing ConfigMap or Secret... ("" when nothing is wrong that a person should know)."""
    for pod in reversed(pods):
        status = pod.get("status") or {}
        name = meta_of(pod).name
        if status.get("phase") not in (None, "Pending"):
            continue
        for condition in status.get("conditions") or []:
            if (
                condition.get("type") == "PodScheduled"
                and condition.get("status") == "False"
                and condition.get("reason") == "Unschedulable"
            ):
                why = condition.get("message") or "no reason given"
                return f"Pod {name} cannot be scheduled: {why}"
        waiting = (_container(pod).get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in _STUCK_REASONS:
            return _joined(f"Pod {name}: {waiting['reason']}", waiting.get("message"))
        event = await _warning(kube, ctx, str(name))
        if event:
            return f"Pod {name}: {event}"
    return ""


async def _warning(kube: KubeClient, ctx: ActionContext, pod: str) -> str:
    """The newest Warning Event about a pending Pod (FailedMount, FailedScheduling...)."""
    try:
        events = await kube.list(
            "v1",
            "Event",
            ctx.namespace,
            field_selector=f"involvedObject.kind=Pod,involvedObject.name={pod},type=Warning",
        )
    except (ApiError, aiohttp.ClientError, TimeoutError) as error:
        log.debug("step %r: cannot read the Events of Pod %s: %s", ctx.name, pod, error)
        return ""
    if not events:
        return ""
    newest = max(
        events,
        key=lambda e: str(
            e.get("lastTimestamp") or e.get("eventTime") or meta_of(e).creation_timestamp
        ),
    )
    return _joined(str(newest.get("reason") or "Warning"), newest.get("message"))


def _joined(reason: str, message: Any) -> str:
    return f"{reason}: {message}" if message else reason


def job_name(pipeline: str, step: str, run: str, attempt: int) -> str:
    """``<pipeline>-<step>-<run>-<attempt>``, a DNS-1123 label of at most 63 characters.

    ``run`` is the run's number, with ``r<retries>`` after it once the run was retried
    (``3r1``): a retried step counts its attempts afresh. When too long, the pipeline and
    step part is cut and a hash of it added, so two long names that share a prefix still
    get different Jobs.
    """
    base = re.sub(r"[^a-z0-9-]+", "-", f"{pipeline}-{step}".lower()).strip("-")
    suffix = f"-{run}-{attempt}"
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


def _retries(ctx: ActionContext) -> int:
    return ctx.run.retries if ctx.run is not None else 0


def _run_part(ctx: ActionContext) -> str:
    retries = _retries(ctx)
    return f"{ctx.run_number}r{retries}" if retries else str(ctx.run_number)


def _step_labels(ctx: ActionContext) -> dict[str, str]:
    return {LABEL_PIPELINE: label_value(ctx.pipeline_name), LABEL_STEP: label_value(ctx.name)}


def _job_labels(ctx: ActionContext) -> dict[str, str]:
    return {
        **_step_labels(ctx),
        LABEL_RUN: str(ctx.run_number),
        LABEL_RETRY: str(_retries(ctx)),
        LABEL_ATTEMPT: str(ctx.step.attempt),
    }


def _labels(job: dict[str, Any]) -> dict[str, str]:
    return dict(meta_of(job).labels)


def _of_run(job: dict[str, Any], ctx: ActionContext) -> bool:
    """Whether ``job`` belongs to this step's current run. A Job labelled by a version of
    kubesteps without runs (``kubesteps.dev/generation``) belongs to run 1 when it was made
    for the current generation: the run an upgrade adopted."""
    labels = _labels(job)
    if LABEL_RUN in labels:
        return labels[LABEL_RUN] == str(ctx.run_number)
    return ctx.run_number == 1 and labels.get(LEGACY_LABEL_GENERATION) == str(ctx.generation)


def _key(job: dict[str, Any]) -> tuple[int, int]:
    """(retry, attempt) of a Job of the current run, for ordering."""
    labels = _labels(job)
    retry, attempt = labels.get(LABEL_RETRY, "0"), labels.get(LABEL_ATTEMPT, "")
    return (int(retry) if retry.isdigit() else 0, int(attempt) if attempt.isdigit() else 0)


def _owned_by(job: dict[str, Any], ctx: ActionContext) -> bool:
    uid = meta_of(ctx.pipeline).uid
    return bool(uid) and uid in meta_of(job).owner_uids


def _manifest(ctx: ActionContext, params: JobParams, name: str) -> dict[str, Any]:
    labels = _job_labels(ctx)
    container: dict[str, Any] = {"name": CONTAINER_NAME, "image": params.image}
    if params.command:
        container["command"] = list(params.command)
    if params.args:
        container["args"] = list(params.args)
    if params.env:
        container["env"] = [
            var.model_dump(by_alias=True, exclude_defaults=True)
            | ({} if var.value_from else {"value": var.value})
            for var in params.env
        ]
    if params.env_from:
        container["envFrom"] = _dumped(params.env_from)
    if params.resources is not None:
        container["resources"] = params.resources.model_dump(exclude_defaults=True)
    if params.volume_mounts:
        container["volumeMounts"] = _dumped(params.volume_mounts)
    container["securityContext"] = security_context(params)
    pod: dict[str, Any] = {"restartPolicy": "Never", "containers": [container]}
    if params.service_account_name:
        pod["serviceAccountName"] = params.service_account_name
    if params.volumes:
        pod["volumes"] = _dumped(params.volumes)
    if params.node_selector:
        pod["nodeSelector"] = dict(params.node_selector)
    if params.tolerations:
        pod["tolerations"] = _dumped(params.tolerations)
    template: dict[str, Any] = {"metadata": {"labels": labels}, "spec": pod}
    if params.pod_annotations:
        template["metadata"]["annotations"] = dict(params.pod_annotations)
    spec: dict[str, Any] = {"backoffLimit": params.backoff_limit, "template": template}
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


def security_context(params: JobParams) -> dict[str, Any]:
    """The container's securityContext: restricted, with the step's overrides field by
    field (``capabilities`` and ``seccompProfile`` as a whole)."""
    context = dict(RESTRICTED_SECURITY_CONTEXT)
    if params.security_context is not None:
        context.update(params.security_context.model_dump(by_alias=True, exclude_none=True))
    return context


def _dumped(models: Sequence[BaseModel]) -> list[dict[str, Any]]:
    """As the API server spells them: camelCase, defaults left out (``optional: false``)."""
    return [m.model_dump(by_alias=True, exclude_defaults=True) for m in models]


def _current(jobs: list[dict[str, Any]], ctx: ActionContext) -> dict[str, Any] | None:
    """The Job of this attempt among the run's Jobs, if there is one.

    Normally the Job labelled with this retry and attempt. A step that was waiting goes on
    waiting for the Job it started, also across a retry of the run (which leaves a step at
    work alone). After an operator crash while the step was running, or an attempt that
    failed on an API error, the engine counts a new attempt, yet the Job an earlier attempt
    created may be at work (or done): it is adopted rather than doubled. A failed Job, or
    the Job of an attempt that timed out, belongs to no attempt.
    """
    current = (_retries(ctx), ctx.step.attempt)
    own = [job for job in jobs if _key(job) == current]
    if own:
        return own[0]
    if _timed_out(ctx):
        return None
    previous = ctx.step.previous
    if previous is not None and previous.status is StepStatus.WAITING:
        working = [job for job in jobs if _finished(job) != "Failed"]
        return max(working, key=_key, default=None)
    earlier = [
        job
        for job in jobs
        if _key(job)[0] == current[0]
        and 0 < _key(job)[1] < current[1]
        and _finished(job) != "Failed"
    ]
    return max(earlier, key=_key, default=None)


def _timed_out(ctx: ActionContext) -> bool:
    """The previous attempt ended by its timeout: its Job is no one's now."""
    previous = ctx.step.previous
    return previous is not None and previous.reason == "TimedOut"


async def _delete(kube: KubeClient, job: dict[str, Any]) -> None:
    meta = meta_of(job)
    with api_call(f"deleting Job {meta.namespace}/{meta.name}"):
        await kube.delete(
            "batch/v1", "Job", meta.name, meta.namespace or None, propagation="Background"
        )


async def stop_jobs(
    kube: KubeClient,
    namespace: str,
    pipeline: str,
    *,
    step: str | None = None,
    keep_run: int | None = None,
) -> list[str]:
    """Delete the unfinished Jobs of ``pipeline`` (of one ``step``, or of every run but
    ``keep_run``); their Pods go with them (background propagation). The names deleted."""
    labels = {LABEL_PIPELINE: label_value(pipeline)}
    if step is not None:
        labels[LABEL_STEP] = label_value(step)
    selector = ",".join(f"{key}={value}" for key, value in labels.items())
    with api_call(f"listing the Jobs of pipeline {pipeline!r}"):
        jobs = await kube.list("batch/v1", "Job", namespace, label_selector=selector)
    stopped = []
    for job in jobs:
        meta = meta_of(job)
        labels_of = meta.labels
        if meta.deletion_timestamp or _finished(job) is not None:
            continue
        if keep_run is not None and labels_of.get(LABEL_RUN) == str(keep_run):
            continue
        await _delete(kube, job)
        stopped.append(meta.name)
    return stopped


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
