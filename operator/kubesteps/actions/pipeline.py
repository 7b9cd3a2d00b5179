"""``pipeline``: run another Pipeline as a child, wait for its run, return its result.

A child made here (from a ``template`` or a ``spec``) is a Pipeline of the parent's
namespace, owned by the parent, one per run of the parent (``<parent>-<step>-<run>``), so
each parent run has a child run of its own and deleting the parent deletes its children.
A ``ref`` names an existing Pipeline, which is not owned: each parent run asks it for a run
of its own (a ``rerun`` whose token is the parent's run id). Either way the child carries
labels naming the parent and its run, so that a cancel of the parent reaches it
(``cancel_children``); a retry of the parent retries a failed child (a ``retry`` whose
token counts the parent's retries). Children nest at most ``MAX_PIPELINE_DEPTH`` deep.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from pydantic import BaseModel

from kubesteps.actions.base import ActionContext, Outputs
from kubesteps.actions.common import api_call, owner_reference, poll_delay, wait_started
from kubesteps.engine import PermanentError, WaitError
from kubesteps.kube.client import KubeClient
from kubesteps.kube.meta import meta_of
from kubesteps.pipeline.params import PipelineParams
from kubesteps.pipeline.runs import DOMAIN, VERB_ANNOTATIONS, handled_tokens, token_key

API_VERSION = "kubesteps.dev/v1alpha1"
PARENT_LABEL = f"{DOMAIN}/parent"  # the parent's uid
PARENT_RUN_LABEL = f"{DOMAIN}/parent-run"  # the number of the parent's run
DEPTH_ANNOTATION = f"{DOMAIN}/depth"
PARENT_ANNOTATION = f"{DOMAIN}/parent-run-id"  # the parent's run id, for people
TEMPLATE_ANNOTATION = f"{DOMAIN}/template"  # name@resourceVersion a child was made from
# A Pipeline runs children of children of ... at most this deep (the top one is depth 0).
MAX_PIPELINE_DEPTH = 5
FINISHED = ("Succeeded", "Failed", "Cancelled")


class PipelineAction:
    name: str = "pipeline"
    params: type[BaseModel] = PipelineParams

    async def run(self, ctx: ActionContext, params: PipelineParams) -> Outputs:
        kube = ctx.require_kube()
        name = params.ref or params.name or child_name(ctx)
        child: Mapping[str, Any] | None
        with api_call(f"reading Pipeline {name}"):
            child = await kube.get(API_VERSION, "Pipeline", name, ctx.namespace)
        if params.ref is not None:
            if child is None:
                raise PermanentError(
                    f"with.ref: no Pipeline {name!r} in namespace {ctx.namespace!r}"
                )
            child = await _claim(ctx, kube, child)
        elif child is None:
            await _create(ctx, kube, name, params)
            raise WaitError(f"started child Pipeline {name}", timedelta(seconds=1))
        elif (child["metadata"].get("labels") or {}).get(PARENT_RUN_LABEL) != str(ctx.run_number):
            # A name given in with.name, reused by a later run: this run's spec, and a run.
            child = await _claim(ctx, kube, child, await _spec(ctx, kube, params))
        return await _observe(ctx, kube, child)


def child_name(ctx: ActionContext) -> str:
    """``<parent>-<step>-<run number>``, shortened with a hash to fit 253 characters."""
    name = f"{ctx.pipeline_name}-{ctx.name}-{ctx.run_number}"
    if len(name) <= 253:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{name[: 253 - 11]}-{digest}"


def _depth(ctx: ActionContext) -> int:
    value = meta_of(ctx.pipeline).annotations.get(DEPTH_ANNOTATION)
    try:
        return int(value or 0)
    except ValueError:
        return 0


def _family(ctx: ActionContext) -> tuple[dict[str, str], dict[str, str]]:
    """The labels and annotations that tie a child to this step's run."""
    uid = meta_of(ctx.pipeline).uid
    labels = {PARENT_LABEL: uid, PARENT_RUN_LABEL: str(ctx.run_number)}
    annotations = {DEPTH_ANNOTATION: str(_depth(ctx) + 1), PARENT_ANNOTATION: ctx.run_id}
    return labels, annotations


async def _spec(ctx: ActionContext, kube: KubeClient, params: PipelineParams) -> dict[str, Any]:
    """The child's spec: the template's params and steps (params given as their values), or
    ``spec`` with the values of its params replaced by those given."""
    if params.template is not None:
        with api_call(f"reading PipelineTemplate {params.template}"):
            template = await kube.get(
                API_VERSION, "PipelineTemplate", params.template, ctx.namespace
            )
        if template is None:
            raise PermanentError(
                f"with.template: no PipelineTemplate {params.template!r} in "
                f"namespace {ctx.namespace!r}"
            )
        body = template.get("spec") or {}
        declared = [dict(p) for p in body.get("params") or [] if isinstance(p, Mapping)]
        spec: dict[str, Any] = {"steps": body.get("steps") or []}
        version = meta_of(template).resource_version
        spec["_template"] = f"{params.template}@{version}"
    else:
        spec = dict(params.spec or {})
        declared = [dict(p) for p in spec.get("params") or [] if isinstance(p, Mapping)]
    names = [str(p.get("name")) for p in declared]
    for given in params.params:
        if given not in names:
            raise PermanentError(
                f"with.params.{given}: the child has no param {given!r} "
                f"(it has: {', '.join(names) or 'none'})"
            )
    for param in declared:
        if param["name"] in params.params:
            param["value"] = params.params[param["name"]]
        elif param.get("value") is None:
            raise PermanentError(
                f"with.params: the child needs a value for param "
                f"{param['name']!r} (it has no default)"
            )
    if declared:
        spec["params"] = declared
    return spec


async def _create(ctx: ActionContext, kube: KubeClient, name: str, params: PipelineParams) -> None:
    depth = _depth(ctx) + 1
    if depth > MAX_PIPELINE_DEPTH:
        raise PermanentError(
            f"child Pipelines nest at most {MAX_PIPELINE_DEPTH} deep; this "
            f"one would be at depth {depth} (a child that runs itself?)"
        )
    spec = await _spec(ctx, kube, params)
    labels, annotations = _family(ctx)
    template = spec.pop("_template", None)
    if template:
        annotations[TEMPLATE_ANNOTATION] = template
    manifest = {
        "apiVersion": API_VERSION,
        "kind": "Pipeline",
        "metadata": {
            "name": name,
            "namespace": ctx.namespace,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [owner_reference(ctx)],
        },
        "spec": spec,
    }
    with api_call(f"creating child Pipeline {name}"):
        await kube.create(manifest)


async def _claim(
    ctx: ActionContext,
    kube: KubeClient,
    child: Mapping[str, Any],
    spec: Mapping[str, Any] | None = None,
) -> Mapping[str, Any]:
    """Make an existing Pipeline this run's child: labels that name it, and a run of its
    own (a rerun whose token is this run's id), once."""
    name = child["metadata"]["name"]
    token = ctx.run_id
    if token_key(token) in handled_tokens(child.get("status") or {}).get("rerun", []):
        return child
    annotations = child["metadata"].get("annotations") or {}
    if annotations.get(VERB_ANNOTATIONS["rerun"]) != token:
        labels, extra = _family(ctx)
        patch: dict[str, Any] = {
            "metadata": {
                "labels": labels,
                "annotations": {**extra, VERB_ANNOTATIONS["rerun"]: token},
            }
        }
        if spec is not None:
            spec = {k: v for k, v in spec.items() if k != "_template"}
            patch["spec"] = spec
        with api_call(f"asking Pipeline {name} for a run"):
            await kube.patch(API_VERSION, "Pipeline", name, ctx.namespace, patch)
    raise WaitError(f"waiting for Pipeline {name} to start run for {token}", timedelta(seconds=1))


async def _observe(ctx: ActionContext, kube: KubeClient, child: Mapping[str, Any]) -> Outputs:
    name = child["metadata"]["name"]
    status = child.get("status") or {}
    run = status.get("run") or {}
    phase = str(run.get("phase") or "")
    retries = ctx.run.retries if ctx.run is not None else 0
    if phase in ("Failed", "Cancelled") and retries:
        # The parent was retried: so is its failed child, once per retry of the parent.
        token = f"{ctx.run_id}-retry-{retries}"
        if token_key(token) not in handled_tokens(status).get("retry", []):
            annotations = child["metadata"].get("annotations") or {}
            if annotations.get(VERB_ANNOTATIONS["retry"]) != token:
                with api_call(f"retrying Pipeline {name}"):
                    await kube.patch(
                        API_VERSION,
                        "Pipeline",
                        name,
                        ctx.namespace,
                        {"metadata": {"annotations": {VERB_ANNOTATIONS["retry"]: token}}},
                    )
            raise WaitError(f"retrying child Pipeline {name}", timedelta(seconds=1))
    outputs = {
        "pipeline": name,
        "run": str(run.get("id") or ""),
        "phase": phase,
        "outputs": {
            str(r["name"]): r["outputs"]
            for r in status.get("steps") or []
            if isinstance(r, Mapping) and r.get("outputs") and "name" in r
        },
    }
    ready = next(
        (
            c
            for c in status.get("conditions") or []
            if isinstance(c, Mapping) and c.get("type") == "Ready"
        ),
        None,
    )
    if phase == "Succeeded":
        return outputs
    if phase in FINISHED:
        message = str(run.get("message") or (ready or {}).get("message") or "")
        raise PermanentError(
            f"child Pipeline {name}: run {outputs['run']} {phase.lower()}"
            + (f": {message}" if message else ""),
            reason=f"Child{phase}",
            outputs=outputs,
        )
    if ready is not None and ready.get("reason") == "InvalidSpec":
        raise PermanentError(
            f"child Pipeline {name} is invalid: {ready.get('message')}", reason="ChildInvalid"
        )
    elapsed = (ctx.clock() - wait_started(ctx)).total_seconds()
    now = f"{ready.get('reason')}" if ready else "not started yet"
    step = status.get("currentStep")
    raise WaitError(
        f"waiting for child Pipeline {name}: {now}" + (f" (step {step})" if step else ""),
        timedelta(seconds=min(poll_delay(elapsed), 10.0)),
    )


async def cancel_children(
    kube: KubeClient, parent: Mapping[str, Any], *, keep_run: int | None = None, reason: str
) -> None:
    """Ask the children of ``parent``'s runs (all, or all but run ``keep_run``) whose run
    is not over to cancel it; a child gone meanwhile needs nothing."""
    meta = meta_of(parent)
    uid = meta.uid
    if not uid:
        return
    namespace = meta.namespace or "default"
    children = await kube.list(
        API_VERSION, "Pipeline", namespace, label_selector=f"{PARENT_LABEL}={uid}"
    )
    for child in children:
        labels = child["metadata"].get("labels") or {}
        if keep_run is not None and labels.get(PARENT_RUN_LABEL) == str(keep_run):
            continue
        run = (child.get("status") or {}).get("run") or {}
        if run.get("phase") in FINISHED:
            continue
        await kube.patch(
            API_VERSION,
            "Pipeline",
            child["metadata"]["name"],
            namespace,
            {"metadata": {"annotations": {VERB_ANNOTATIONS["cancel"]: reason}}},
        )
