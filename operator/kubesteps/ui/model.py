"""What the web view shows of a Pipeline: plain JSON-ready dicts built from the object.

``summary`` is one row of the list page; ``detail`` is the Pipeline page: the run header,
the step tree (from the spec, each step joined with its record in ``status.steps``), the
history and the conditions. The browser draws the graph from the tree.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]
KINDS = ("parallel", "group", "forEach", "switch")
# A step whose work is over, for the progress count.
DONE = frozenset({"Succeeded", "Skipped", "NotTaken"})


def _parse_time(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def seconds_between(start: object, end: object, now: datetime | None = None) -> float | None:
    """Seconds from ``start`` to ``end`` (RFC 3339 texts; no end: ``now``)."""
    began = _parse_time(start)
    if began is None:
        return None
    ended = _parse_time(end) or now or datetime.now(UTC)
    return max(0.0, (ended - began).total_seconds())


def _status(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    status = obj.get("status")
    return status if isinstance(status, Mapping) else {}


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    for condition in _status(obj).get("conditions") or []:
        if isinstance(condition, Mapping) and condition.get("type") == kind:
            return condition
    return {}


def _records(obj: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The current run's step records by name (records of other runs are stale)."""
    status = _status(obj)
    number = (status.get("run") or {}).get("number")
    found: dict[str, Mapping[str, Any]] = {}
    for record in status.get("steps") or []:
        if not isinstance(record, Mapping) or not isinstance(record.get("name"), str):
            continue
        if number is not None and record.get("run") not in (None, number):
            continue
        found[record["name"]] = record
    return found


def _kind(step: Mapping[str, Any]) -> str:
    for kind in KINDS:
        if kind in step:
            return kind
    return "action"


def _node(step: Mapping[str, Any], name: str, records: Mapping[str, Mapping[str, Any]],
          suffix: str, now: datetime) -> Obj:
    kind = _kind(step)
    record = records.get(name) or {}
    node: Obj = {
        "name": name,
        "kind": kind,
        "phase": record.get("phase") or "Pending",
        "attempts": record.get("attempts") or 0,
        "startedAt": record.get("startedAt"),
        "finishedAt": record.get("finishedAt"),
        "nextRunAt": record.get("nextRunAt"),
        "seconds": seconds_between(record.get("startedAt"), record.get("finishedAt"), now),
        "message": record.get("message") or "",
        "outputs": record.get("outputs") or {},
        "children": [],
    }
    if record.get("item") is not None:
        node["item"] = record["item"]
    if record.get("fromRun") is not None:
        node["fromRun"] = record["fromRun"]
    if kind == "action":
        node["action"] = step.get("action")
        if step.get("action") == "approval":
            node["approval"] = True
    elif kind == "forEach":
        body = step.get("forEach") or {}
        node["items"] = body.get("items")
        template = body.get("step") or {}
        # The generated sub-steps are <name>-<index>; their records say which exist.
        pattern = re.compile(re.escape(name) + r"-([0-9]+)$")
        indexes = sorted(int(m.group(1)) for key in records if (m := pattern.match(key)))
        for index in indexes:
            child_suffix = f"{suffix}-{index}"
            node["children"].append(
                _node(template, f"{name}-{index}", records, child_suffix, now))
        if template:
            node["template"] = _kind(template)
    else:
        body = step.get(kind) or {}
        for child in body.get("steps") or []:
            if isinstance(child, Mapping):
                node["children"].append(_named(child, records, suffix, now))
    return node


def _named(step: Mapping[str, Any], records: Mapping[str, Mapping[str, Any]], suffix: str,
           now: datetime) -> Obj:
    # Steps inside a forEach template are named per item: check-0, check-1, ...
    return _node(step, f"{step.get('name')}{suffix}", records, suffix, now)


def tree(obj: Mapping[str, Any], now: datetime | None = None) -> tuple[list[Obj], list[Obj]]:
    """The step tree and the finally steps, each step with its record's phase and times."""
    moment = now or datetime.now(UTC)
    spec, records = _spec(obj), _records(obj)
    steps = [_named(s, records, "", moment) for s in spec.get("steps") or []
             if isinstance(s, Mapping)]
    final = [_named(s, records, "", moment) for s in spec.get("finally") or []
             if isinstance(s, Mapping)]
    return steps, final


def _leaves(nodes: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    found: list[Mapping[str, Any]] = []
    for node in nodes:
        if node["children"]:
            found.extend(_leaves(node["children"]))
        elif node["kind"] == "action":
            found.append(node)
    return found


def summary(obj: Mapping[str, Any], now: datetime | None = None) -> Obj:
    """One row of the list page."""
    meta, status = _metadata(obj), _status(obj)
    run = status.get("run") if isinstance(status.get("run"), Mapping) else {}
    assert isinstance(run, Mapping)
    steps, final = tree(obj, now)
    leaves = _leaves(steps + final)
    ready = _condition(obj, "Ready")
    schedule = status.get("schedule") if isinstance(status.get("schedule"), Mapping) else {}
    assert isinstance(schedule, Mapping)
    return {
        "namespace": meta.get("namespace") or "",
        "name": meta.get("name") or "",
        "labels": dict(meta.get("labels") or {}),
        "run": run.get("number"),
        "runId": run.get("id"),
        "phase": run.get("phase") or ("Pending" if _spec(obj).get("schedule") else ""),
        "reason": run.get("reason") or ready.get("reason") or "",
        "ready": ready.get("status") or "Unknown",
        "currentStep": status.get("currentStep") or "",
        "done": sum(1 for leaf in leaves if leaf["phase"] in DONE),
        "total": len(leaves),
        "seconds": seconds_between(run.get("startedAt"), run.get("finishedAt"), now),
        "nextSchedule": schedule.get("nextScheduleTime"),
        "suspended": bool(_spec(obj).get("suspend")),
        "created": meta.get("creationTimestamp"),
    }


def detail(obj: Mapping[str, Any], now: datetime | None = None) -> Obj:
    """The Pipeline page: the summary, the run, the step tree, history and conditions."""
    status = _status(obj)
    steps, final = tree(obj, now)
    run = dict(status.get("run") or {})
    return {
        **summary(obj, now),
        "resourceVersion": _metadata(obj).get("resourceVersion"),
        "runDetail": run,
        "steps": steps,
        "finally": final,
        "history": [
            {**entry, "seconds": seconds_between(entry.get("startedAt"), entry.get("finishedAt"),
                                                 now)}
            for entry in status.get("history") or [] if isinstance(entry, Mapping)
        ],
        "conditions": [dict(c) for c in status.get("conditions") or []
                       if isinstance(c, Mapping)],
        "waitingApprovals": [leaf["name"] for leaf in _leaves(steps + final)
                             if leaf.get("approval") and leaf["phase"] == "Waiting"],
    }


def event_row(event: Mapping[str, Any]) -> Obj:
    """One Event, as the Events table shows it."""
    series = event.get("series") if isinstance(event.get("series"), Mapping) else {}
    assert isinstance(series, Mapping)
    return {
        "type": event.get("type") or "",
        "reason": event.get("reason") or "",
        "message": event.get("message") or event.get("note") or "",
        "count": event.get("count") or series.get("count") or 1,
        "time": (event.get("lastTimestamp") or event.get("eventTime")
                 or event.get("firstTimestamp")
                 or (_metadata(event).get("creationTimestamp"))),
    }
