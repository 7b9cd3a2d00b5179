"""``waitFor``: wait, by requeue, until an object has a condition or a field has a value."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import BaseModel

from kubesteps.actions.base import ActionContext, Outputs
from kubesteps.actions.common import (
    api_call,
    check_namespace,
    poll_delay,
    resolve,
    wait_started,
)
from kubesteps.engine import PermanentError, WaitError
from kubesteps.kube.client import ResourceRef
from kubesteps.pipeline.durations import format_duration
from kubesteps.pipeline.params import ConditionMatch, WaitForParams
from kubesteps.pipeline.paths import Query, as_text, compile_path

SEEN_CAP = 120
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


class WaitForAction:
    name: str = "waitFor"
    params: type[BaseModel] = WaitForParams

    async def run(self, ctx: ActionContext, params: WaitForParams) -> Outputs:
        kube = ctx.require_kube()
        started = wait_started(ctx)
        check = _check_for(params)
        resource = await resolve(kube, params.api_version, params.kind)
        if resource is None:
            what = f"{params.kind} {params.name} to have {check.wanted}"
            seen = f"the server does not serve kind {params.kind!r} in {params.api_version!r}"
        else:
            namespace = (params.namespace or ctx.namespace) if resource.namespaced else None
            if namespace is not None:
                check_namespace(ctx, namespace, "with.namespace", f"{params.kind} {params.name}")
            where = f"{namespace}/{params.name}" if namespace else params.name
            what = f"{params.kind} {where} to have {check.wanted}"
            with api_call(f"reading {params.kind} {where}"):
                obj = await kube.get(params.api_version, params.kind, params.name, namespace)
            if obj is None:
                seen = "it does not exist"
            else:
                outputs, seen = check.test(_visible_part(resource, obj))
                if outputs is not None:
                    return outputs

        elapsed = (ctx.clock() - started).total_seconds()
        delay = poll_delay(elapsed)
        if params.timeout is not None:
            left = params.timeout.total_seconds() - elapsed
            if left <= 0:
                raise PermanentError(
                    f"timed out after {format_duration(params.timeout)} waiting for {what}; "
                    f"last saw {seen}"
                )
            delay = min(delay, left)
        raise WaitError(f"waiting for {what}; saw {seen}", timedelta(seconds=delay))


def _visible_part(resource: ResourceRef, obj: dict[str, Any]) -> dict[str, Any]:
    """What waitFor may look at: all of an object, but a Secret without its data.

    What waitFor sees ends up in the step's message and outputs, readable by anyone who may
    read the Pipeline, and the operator may read Secrets only so that ``http`` steps get
    their credentials. kubectl's last-applied annotation is a copy of the whole Secret.
    """
    if resource.group or resource.kind != "Secret":
        return obj
    visible = {key: value for key, value in obj.items() if key not in ("data", "stringData")}
    metadata = dict(obj.get("metadata") or {})
    metadata.pop("managedFields", None)
    annotations = dict(metadata.get("annotations") or {})
    annotations.pop(LAST_APPLIED, None)
    metadata["annotations"] = annotations
    visible["metadata"] = metadata
    return visible


@dataclass(frozen=True)
class _ConditionCheck:
    match: ConditionMatch

    @property
    def wanted(self) -> str:
        return f"condition {self.match.type}={self.match.status}"

    def test(self, obj: dict[str, Any]) -> tuple[Outputs, str]:
        status = obj.get("status") or {}
        conditions = status.get("conditions") or []
        found = next(
            (c for c in conditions if isinstance(c, dict) and c.get("type") == self.match.type),
            None,
        )
        if found is None:
            return None, f"no {self.match.type} condition"
        shown = f"{self.match.type}={found.get('status')}"
        if found.get("reason"):
            shown += f" ({found['reason']})"
        # A condition written before the object's latest change says nothing about it yet
        # (a Deployment is still Available=True from its previous rollout).
        generation = (obj.get("metadata") or {}).get("generation")
        observed = found.get("observedGeneration", status.get("observedGeneration"))
        if isinstance(generation, int) and isinstance(observed, int) and observed < generation:
            return None, f"{shown} from generation {observed}, the object is at {generation}"
        if found.get("status") != self.match.status:
            return None, _capped(shown)
        return {
            "type": self.match.type,
            "status": self.match.status,
            "reason": found.get("reason", ""),
            "message": found.get("message", ""),
        }, shown


@dataclass(frozen=True)
class _JsonPathCheck:
    path: str
    value: str
    query: Query

    @property
    def wanted(self) -> str:
        return f"{self.path} = {self.value!r}"

    def test(self, obj: dict[str, Any]) -> tuple[Outputs, str]:
        found = [as_text(v) for v in self.query.findall(obj)]
        if not found:
            return None, "no value there"
        shown = _capped(", ".join(repr(v) for v in found))
        # Several matches (a [*] or a filter) must all have the value: "every container ready".
        if any(v != self.value for v in found):
            return None, shown
        return {"value": self.value, "matches": len(found)}, shown


def _check_for(params: WaitForParams) -> _ConditionCheck | _JsonPathCheck:
    if params.condition is not None:
        return _ConditionCheck(params.condition)
    # The model ensures jsonPath (a valid one) and value come together without a condition.
    path, value = params.json_path or "", params.value or ""
    return _JsonPathCheck(path, value, compile_path(path))


def _capped(text: str) -> str:
    return text if len(text) <= SEEN_CAP else text[: SEEN_CAP - 1] + "…"
