"""The verbs the web view offers, as API calls on a Pipeline.

Each is an annotation or a patch of the runs model (docs/runs.md); each checks first that it
makes sense for the Pipeline's state, and raises ``VerbRefused`` with a one-line reason
naming the state when it does not.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from kubesteps.actions.params import approval_annotation
from kubesteps.kube.client import KubeClient
from kubesteps.pipeline.model import API_VERSION
from kubesteps.pipeline.runs import FINISHED, VERB_ANNOTATIONS
from kubesteps.ui import model

Obj = dict[str, Any]
Verb = Callable[[KubeClient, Obj, Mapping[str, Any]], Awaitable[str]]
RETRYABLE = frozenset({"Failed", "Cancelled"})


class VerbRefused(Exception):
    """The verb makes no sense for the Pipeline as it is (HTTP 409)."""


def token() -> str:
    """A new verb token: each is acted on once, so each call gets its own."""
    return f"ui-{time.time_ns()}"


def _where(pipeline: Obj) -> tuple[str, str]:
    meta = pipeline.get("metadata") or {}
    return str(meta.get("namespace") or "default"), str(meta.get("name"))


async def _annotate(api: KubeClient, pipeline: Obj, key: str, value: str) -> None:
    namespace, name = _where(pipeline)
    await api.patch(API_VERSION, "Pipeline", name, namespace,
                    {"metadata": {"annotations": {key: value}}})


def _run(pipeline: Obj) -> Mapping[str, Any]:
    run = (pipeline.get("status") or {}).get("run")
    return run if isinstance(run, Mapping) else {}


def _waiting_approval(pipeline: Obj, step: str) -> None:
    leaves = {node["name"]: node for node in model._leaves(
        model.tree(pipeline)[0] + model.tree(pipeline)[1])}
    node = leaves.get(step)
    if node is None or not node.get("approval"):
        raise VerbRefused(f"Pipeline {_where(pipeline)[1]} has no approval step {step!r}")
    if node["phase"] != "Waiting":
        raise VerbRefused(f"step {step!r} is not waiting for an approval (it is {node['phase']})")


async def _answer(api: KubeClient, pipeline: Obj, params: Mapping[str, Any],
                  answer: str) -> str:
    step = str(params.get("step") or "")
    if not step:
        raise VerbRefused("say which approval step: field 'step' is empty")
    _waiting_approval(pipeline, step)
    run_id = _run(pipeline).get("id")
    value = f"{answer}@{run_id}" if run_id else answer
    await _annotate(api, pipeline, approval_annotation(step), value)
    return value


async def approve(api: KubeClient, pipeline: Obj, params: Mapping[str, Any]) -> str:
    who = str(params.get("by") or "").strip() or "approve"
    value = await _answer(api, pipeline, params, who)
    return f"approved step {params['step']!r} of {_run(pipeline).get('id')} ({value})"


async def reject(api: KubeClient, pipeline: Obj, params: Mapping[str, Any]) -> str:
    await _answer(api, pipeline, params, "reject")
    return f"rejected step {params['step']!r} of {_run(pipeline).get('id')}"


async def retry(api: KubeClient, pipeline: Obj, params: Mapping[str, Any]) -> str:
    phase = _run(pipeline).get("phase")
    if phase not in RETRYABLE:
        raise VerbRefused(f"nothing to retry: run {_run(pipeline).get('id')} is {phase}"
                          " (retry acts on a Failed or Cancelled run)")
    await _annotate(api, pipeline, VERB_ANNOTATIONS["retry"], token())
    return f"asked to retry {_run(pipeline).get('id')}"


async def rerun(api: KubeClient, pipeline: Obj, params: Mapping[str, Any]) -> str:
    await _annotate(api, pipeline, VERB_ANNOTATIONS["rerun"], token())
    return f"asked for a new run after {_run(pipeline).get('id')}"


async def cancel(api: KubeClient, pipeline: Obj, params: Mapping[str, Any]) -> str:
    phase = _run(pipeline).get("phase")
    if phase in FINISHED:
        raise VerbRefused(f"nothing to cancel: run {_run(pipeline).get('id')} is {phase}")
    await _annotate(api, pipeline, VERB_ANNOTATIONS["cancel"], token())
    return f"asked to cancel {_run(pipeline).get('id')}"


async def _suspend(api: KubeClient, pipeline: Obj, value: bool) -> None:
    namespace, name = _where(pipeline)
    await api.patch(API_VERSION, "Pipeline", name, namespace, {"spec": {"suspend": value}})


async def suspend(api: KubeClient, pipeline: Obj, params: Mapping[str, Any]) -> str:
    if (pipeline.get("spec") or {}).get("suspend"):
        raise VerbRefused(f"Pipeline {_where(pipeline)[1]} is already suspended")
    await _suspend(api, pipeline, True)
    return f"suspended {_where(pipeline)[1]}"


async def resume(api: KubeClient, pipeline: Obj, params: Mapping[str, Any]) -> str:
    if not (pipeline.get("spec") or {}).get("suspend"):
        raise VerbRefused(f"Pipeline {_where(pipeline)[1]} is not suspended")
    await _suspend(api, pipeline, False)
    return f"resumed {_where(pipeline)[1]}"


VERBS: dict[str, Verb] = {
    "approve": approve, "reject": reject, "retry": retry, "rerun": rerun, "cancel": cancel,
    "suspend": suspend, "resume": resume,
}
