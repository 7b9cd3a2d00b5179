"""``logs NAME [STEP]``: a job step's Pod log, or a timeline of messages and Events.

A ``job`` step's log is its newest Pod's (of the current run), read through the API
(``pods/<pod>/log``, ``follow=true`` with ``-f``). When the Pod is gone (the Job was
deleted, or cleaned up after ``ttlSecondsAfterFinished``), the log tail the step's record
kept (``logTail``), if the operator keeps one. Any other step, or no step named: what its
record says (start, finish, message) and the Events that name it, in time order; with
``-f`` it goes on until the run settles.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import click
import yaml

from kubesteps.kube.client import KubeClient
from kubesteps.pipeline.suggest import did_you_mean
from kubesteps.views import (
    PipelineView,
    StepNotFound,
    ViewError,
    get_pipeline,
    pipeline_events,
    pipeline_view,
    pod_log,
    step_pods,
    watch_pipeline,
)
from kubesteps.views.view_model import StepNode, one_line


@dataclass(frozen=True, order=True)
class Entry:
    time: datetime
    rank: int  # at the same second: a start before what followed it
    source: str
    text: str

    def line(self) -> str:
        return f"{self.time.strftime('%Y-%m-%dT%H:%M:%SZ')}  {self.source:<22} {self.text}\n"

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": self.time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "source": self.source,
            "text": self.text,
        }


def _format(entry: Entry, output: str) -> str:
    if output == "json":
        return json.dumps(entry.to_dict()) + "\n"
    if output == "yaml":
        return yaml.safe_dump([entry.to_dict()], sort_keys=False)
    return entry.line()


async def step_log(
    client: KubeClient, namespace: str, name: str, step: str | None, *, follow: bool, output: str
) -> AsyncIterator[str]:
    view = pipeline_view(await get_pipeline(client, namespace, name))
    node = None
    if step is not None:
        node = view.find(step)
        if node is None:
            raise StepNotFound(name, step, did_you_mean(step, view.step_names))
    if node is not None and node.action == "job":
        async for line in _job_log(client, view, node, follow=follow, output=output):
            yield line
        return
    async for line in _timeline(client, view, step, follow=follow, output=output):
        yield line


async def _job_log(
    client: KubeClient, view: PipelineView, node: StepNode, *, follow: bool, output: str
) -> AsyncIterator[str]:
    pods = await step_pods(client, view, node.name)
    if pods:
        pod = str(pods[0]["metadata"]["name"])
        async for line in pod_log(client, view.namespace, pod, follow=follow):
            if output == "table":
                yield line
            else:
                record = {"pod": pod, "text": line.rstrip("\n")}
                yield (
                    json.dumps(record) + "\n"
                    if output == "json"
                    else yaml.safe_dump([record], sort_keys=False)
                )
        return
    if node.log_tail:
        click.echo(f"step {node.name!r}: its Pod is gone; the log tail its record kept:", err=True)
        yield node.log_tail if node.log_tail.endswith("\n") else node.log_tail + "\n"
        return
    state = f"{node.phase}" + (f": {one_line(node.message, 120)}" if node.message else "")
    raise ViewError(
        f"step {node.name!r} of pipeline {view.name!r} has no Pod in run "
        f"{view.run.id if view.run else '-'} (step {state}), and its record "
        "keeps no log tail"
    )


def _records(view: PipelineView, step: str | None) -> list[Entry]:
    entries = []
    for node in view.walk():
        if step is not None and node.name != step and not node.name.startswith(f"{step}-"):
            continue
        if node.started_at is not None:
            entries.append(Entry(node.started_at, 0, node.name, "started"))
        if node.finished_at is not None:
            text = node.phase + (f": {one_line(node.message, 200)}" if node.message else "")
            entries.append(Entry(node.finished_at, 2, node.name, text))
        elif node.message and node.started_at is not None:
            entries.append(
                Entry(node.started_at, 1, node.name, f"{node.phase}: {one_line(node.message, 200)}")
            )
    return entries


def _names(message: str, step: str | None) -> bool:
    return step is None or f"'{step}'" in message or f"'{step}-" in message


async def _timeline(
    client: KubeClient, view: PipelineView, step: str | None, *, follow: bool, output: str
) -> AsyncIterator[str]:
    shown: set[Entry] = set()

    async def fresh(current: PipelineView) -> list[Entry]:
        events = await pipeline_events(client, current.namespace, current.name)
        entries = _records(current, step) + [
            Entry(event.time, 1, f"event/{event.reason}", one_line(event.message, 200))
            for event in events
            if event.time is not None and _names(event.message, step)
        ]
        new = sorted(set(entries) - shown)
        shown.update(new)
        return new

    for entry in await fresh(view):
        yield _format(entry, output)
    if not follow or view.settled:
        return
    async for obj in watch_pipeline(client, view.namespace, view.name):
        current = pipeline_view(obj)
        for entry in await fresh(current):
            yield _format(entry, output)
        if current.settled:
            return
