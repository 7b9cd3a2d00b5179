"""What the web view sends the page: JSON-ready dicts of the shared read model
(``kubesteps.views``), the same the CLI renders: the list row, the Pipeline (run header,
step tree, history, waiting approvals) and its graph (``graph_of``, as `kubesteps graph`
draws it; the page lays it out)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from kubesteps.views import EventRow, StepNode, graph_of, pipeline_view
from kubesteps.views.graph import Cluster
from kubesteps.views.view_model import PipelineView

Obj = dict[str, Any]


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def _labels(obj: Mapping[str, Any]) -> dict[str, str]:
    meta = obj.get("metadata")
    labels = meta.get("labels") if isinstance(meta, Mapping) else None
    return dict(labels) if isinstance(labels, Mapping) else {}


def _row(view: PipelineView, obj: Mapping[str, Any], now: datetime) -> Obj:
    done, total = view.progress
    run = view.run
    return {
        "namespace": view.namespace,
        "name": view.name,
        "labels": _labels(obj),
        "run": run.number if run is not None and not run.pending else None,
        "runId": run.id if run is not None and not run.pending else None,
        "phase": view.phase,
        "reason": (run.reason if run is not None else "")
        or (view.ready.reason if view.ready is not None else ""),
        "currentStep": view.current_step,
        "done": done,
        "total": total,
        "seconds": view.duration(now),
        "nextSchedule": view.next_schedule.strftime("%Y-%m-%dT%H:%M:%SZ")
        if view.next_schedule
        else None,
        "suspended": view.suspend,
    }


def summary(obj: Mapping[str, Any], now: datetime | None = None) -> Obj:
    """One row of the list page."""
    return _row(pipeline_view(obj), obj, _now(now))


def _node(node: StepNode, now: datetime) -> Obj:
    data = node.to_dict()
    data["seconds"] = node.duration(now)
    data["children"] = [_node(child, now) for child in node.children]
    return data


def _member(member: str | Cluster) -> Obj | str:
    if isinstance(member, str):
        return member
    return {"id": member.id, "label": member.label, "members": [_member(m) for m in member.members]}


def graph(obj: Mapping[str, Any]) -> Obj:
    """The graph of ``kubesteps graph`` (nodes with phases, edges, clusters) as JSON."""
    drawn = graph_of(obj)
    return {
        "nodes": [
            {"id": n.id, "step": n.step, "label": n.label, "shape": n.shape, "phase": n.phase}
            for n in drawn.nodes
        ],
        "edges": [
            {"source": e.source, "target": e.target, "label": e.label, "dotted": e.dotted}
            for e in drawn.edges
        ],
        "layout": [_member(m) for m in drawn.layout],
    }


def detail(obj: Mapping[str, Any], now: datetime | None = None) -> Obj:
    """The Pipeline page."""
    moment = _now(now)
    view = pipeline_view(obj)
    return {
        **_row(view, obj, moment),
        "resourceVersion": view.resource_version,
        "runDetail": view.run.to_status() if view.run is not None else {},
        "steps": [_node(node, moment) for node in view.steps],
        "finally": [_node(node, moment) for node in view.final_steps],
        "history": [{**row.to_dict(), "seconds": row.duration()} for row in view.history],
        "waitingApprovals": view.waiting_approvals,
        "graph": graph(obj),
    }


def event(row: EventRow) -> Obj:
    return row.to_dict()
