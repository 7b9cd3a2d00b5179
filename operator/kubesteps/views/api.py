"""Reading Pipelines, their Events and their Jobs' Pod logs through the API.

Async functions over a ``KubeClient``; API refusals come back as the typed errors of
``kubesteps.views.view_errors`` (never as a bare ``ApiError``), so a caller can show one line.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp

from kubesteps.kube.client import ApiError, KubeClient
from kubesteps.kube.meta import meta_of
from kubesteps.pipeline.suggest import did_you_mean
from kubesteps.views.view_errors import PipelineNotFound, Unreachable, ViewError, api_failure
from kubesteps.views.view_model import API_VERSION, KIND, PLURAL, PipelineView, parse_time

Obj = dict[str, Any]
# The labels the job action puts on a Job and its Pods (kubesteps.actions.job).
LABEL_PIPELINE = "kubesteps.dev/pipeline"
LABEL_STEP = "kubesteps.dev/step"
LABEL_RUN = "kubesteps.dev/run"


@contextlib.contextmanager
def refusals(verb: str, resource: str, namespace: str, doing: str) -> Iterator[None]:
    """Turn the API's refusals (and an unreachable server) into typed errors."""
    try:
        yield
    except ApiError as error:
        raise api_failure(
            error, verb=verb, resource=resource, namespace=namespace, doing=doing
        ) from error
    except (aiohttp.ClientError, TimeoutError, OSError) as error:
        raise Unreachable("the server", str(error) or type(error).__name__) from error


def _server(client: KubeClient) -> str:
    return client.credentials.server


async def get_pipeline(client: KubeClient, namespace: str, name: str) -> Obj:
    """The Pipeline object, or ``PipelineNotFound`` (with the closest name, if any)."""
    try:
        with refusals("get", PLURAL, namespace, f"getting pipeline {namespace}/{name}"):
            obj = await client.get(API_VERSION, KIND, name, namespace)
    except Unreachable as error:
        raise Unreachable(_server(client), str(error).rpartition(": ")[2]) from error
    if obj is None:
        hint = ""
        with contextlib.suppress(ViewError):
            hint = did_you_mean(
                name, [p["metadata"]["name"] for p in await list_pipelines(client, namespace)]
            )
        raise PipelineNotFound(namespace, name, hint)
    return obj


async def list_pipelines(client: KubeClient, namespace: str | None) -> list[Obj]:
    """The Pipelines of a namespace (None: of all namespaces), by namespace and name."""
    try:
        with refusals("list", PLURAL, namespace or "", "listing pipelines"):
            items = await client.list(API_VERSION, KIND, namespace or None)
    except Unreachable as error:
        raise Unreachable(_server(client), str(error).rpartition(": ")[2]) from error
    return sorted(items, key=lambda p: (p["metadata"].get("namespace", ""), p["metadata"]["name"]))


async def watch_pipeline(client: KubeClient, namespace: str, name: str) -> AsyncIterator[Obj]:
    """The Pipeline now, then each version of it as it changes (a watch, not polling; a
    watch the server ends is opened again from the last version seen)."""
    obj = await get_pipeline(client, namespace, name)
    yield obj
    version = obj["metadata"].get("resourceVersion")
    while True:
        with refusals("watch", PLURAL, namespace, f"watching pipeline {namespace}/{name}"):
            try:
                async for kind, event in client.watch(
                    API_VERSION,
                    KIND,
                    namespace,
                    field_selector=f"metadata.name={name}",
                    resource_version=version,
                    server_timeout=300,
                ):
                    version = meta_of(event).resource_version or version
                    if kind == "DELETED":
                        raise PipelineNotFound(namespace, name, " (it was deleted)")
                    if kind in ("ADDED", "MODIFIED"):
                        yield event
            except ApiError as error:
                if error.status != 410:
                    raise
                obj = await get_pipeline(client, namespace, name)  # too old: start again
                version = obj["metadata"].get("resourceVersion")
                yield obj


@dataclass(frozen=True, kw_only=True)
class EventRow:
    """A Kubernetes Event about a Pipeline."""

    time: datetime | None
    type: str
    reason: str
    message: str
    count: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": self.time.strftime("%Y-%m-%dT%H:%M:%SZ") if self.time else None,
            "type": self.type,
            "reason": self.reason,
            "message": self.message,
            "count": self.count,
        }


def event_row(event: Mapping[str, Any]) -> EventRow:
    when = (
        event.get("lastTimestamp")
        or event.get("eventTime")
        or event.get("firstTimestamp")
        or meta_of(event).creation_timestamp
        or None
    )
    return EventRow(
        time=parse_time(when),
        type=str(event.get("type") or "Normal"),
        reason=str(event.get("reason") or ""),
        message=str(event.get("message") or ""),
        count=int(event.get("count") or 1),
    )


async def pipeline_events(client: KubeClient, namespace: str, name: str) -> list[EventRow]:
    """The Events about a Pipeline, oldest first. Listing Events may be refused to whoever
    may read Pipelines: then there are none to show (not an error)."""
    selector = f"involvedObject.kind={KIND},involvedObject.name={name}"
    try:
        document = await client.request(
            "GET", f"/api/v1/namespaces/{namespace}/events", params={"fieldSelector": selector}
        )
    except ApiError:
        return []
    rows = [event_row(item) for item in document.get("items") or []]
    return sorted(rows, key=lambda row: (row.time is None, row.time or datetime.min))


# -- logs of a job step -------------------------------------------------------------------


def _label_value(text: str) -> str:
    from kubesteps.actions.job import label_value

    return label_value(text)


async def step_pods(client: KubeClient, view: PipelineView, step: str) -> list[Obj]:
    """The Pods of a job step in the current run, newest first."""
    selector = f"{LABEL_PIPELINE}={_label_value(view.name)},{LABEL_STEP}={_label_value(step)}"
    if view.run is not None and not view.run.pending:
        selector += f",{LABEL_RUN}={view.run.number}"
    with refusals("list", "pods", view.namespace, f"listing the Pods of step {step!r}"):
        pods = await client.list("v1", "Pod", view.namespace, label_selector=selector)
    return sorted(
        pods, key=lambda p: str(p["metadata"].get("creationTimestamp") or ""), reverse=True
    )


async def pod_log(
    client: KubeClient, namespace: str, pod: str, *, follow: bool = False
) -> AsyncIterator[str]:
    """A Pod's log (of the job action's container), line by line; ``follow``: as it grows."""
    params = {"container": "step"}
    if follow:
        params["follow"] = "true"
    path = f"/api/v1/namespaces/{namespace}/pods/{pod}/log"
    with refusals("get", "pods/log", namespace, f"reading the log of Pod {pod}"):
        async for line in client.stream(path, params):
            yield line
