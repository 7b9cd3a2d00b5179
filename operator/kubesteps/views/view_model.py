"""The read model: a Pipeline object as a typed step tree, run header and history.

Pure: it reads the object as the API server returns it (spec and status, camelCase) and
never calls anything. The step tree follows the spec (groups, parallel and forEach
children, switch branches, finally steps) and lays each step's record from
``status.steps`` on it; records the spec does not name (steps inserted at run time) follow
the step that inserted them. Readers must accept phases and triggers they do not know.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from kubesteps.pipeline.runs import FINISHED, SUSPENDED, Run, handled_tokens

API_VERSION = "kubesteps.dev/v1alpha1"
KIND = "Pipeline"
PLURAL = "pipelines"

StepKind = Literal["action", "group", "parallel", "forEach", "switch", "item", "inserted"]
# Step phases that are over for the run (a Failed step may be retried, but is over now).
DONE_PHASES = frozenset({"Succeeded", "Skipped"})
SETTLED_PHASES = frozenset({"Succeeded", "Skipped", "Failed"})
PENDING = "Pending"


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 time of the API (``2026-03-01T12:00:00Z``), or None."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def one_line(text: str, width: int = 100) -> str:
    """``text`` on one line, cut to ``width`` characters (``…`` marks a cut)."""
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


@dataclass(frozen=True, kw_only=True)
class StepNode:
    """One step of the tree, with what its record says (``Pending``: no record yet)."""

    name: str
    kind: StepKind
    action: str | None = None
    phase: str = PENDING
    reason: str = ""
    attempts: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    next_run_at: datetime | None = None
    message: str = ""
    outputs: Mapping[str, Any] | None = None
    # A forEach sub-step: the item it runs for (shortened, as recorded).
    item: str | None = None
    # A switch branch: its when expressions (empty: the default branch, or no predicate).
    when: tuple[str, ...] = ()
    # forEach: the CEL expression of its items; parallel/forEach: their concurrency.
    items: str | None = None
    max_concurrency: int | None = None
    from_run: int | None = None
    disabled: bool = False
    # A job step's kept tail of its Pod's log, when the operator records one.
    log_tail: str | None = None
    final: bool = False
    children: tuple[StepNode, ...] = ()

    @property
    def recorded(self) -> bool:
        return self.phase != PENDING or self.attempts > 0

    def duration(self, now: datetime) -> float | None:
        """Seconds from the start to the finish (or to ``now`` while it runs)."""
        if self.started_at is None:
            return None
        end = self.finished_at or (now if self.phase not in SETTLED_PHASES else None)
        return None if end is None else max(0.0, (end - self.started_at).total_seconds())

    def outputs_line(self, width: int = 80) -> str:
        """The outputs as one line of JSON, cut to ``width``."""
        if not self.outputs:
            return ""
        text = json.dumps(self.outputs, separators=(", ", ": "), sort_keys=True, default=str)
        return one_line(text, width)

    def walk(self) -> Iterator[StepNode]:
        yield self
        for child in self.children:
            yield from child.walk()

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "phase": self.phase,
            "attempts": self.attempts,
        }
        optional: dict[str, Any] = {
            "action": self.action,
            "reason": self.reason or None,
            "startedAt": _stamp(self.started_at),
            "finishedAt": _stamp(self.finished_at),
            "nextRunAt": _stamp(self.next_run_at),
            "message": self.message or None,
            "outputs": dict(self.outputs) if self.outputs else None,
            "item": self.item,
            "when": list(self.when) or None,
            "items": self.items,
            "maxConcurrency": self.max_concurrency,
            "fromRun": self.from_run,
            "disabled": self.disabled or None,
            "logTail": self.log_tail,
            "finally": self.final or None,
            "children": [child.to_dict() for child in self.children] or None,
        }
        data.update({key: value for key, value in optional.items() if value is not None})
        return data


@dataclass(frozen=True, kw_only=True)
class HistoryRow:
    """An earlier run, from ``status.history``."""

    number: int
    id: str
    trigger: str
    phase: str
    reason: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    retries: int = 0
    failed_step: str = ""
    message: str = ""

    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return max(0.0, (self.finished_at - self.started_at).total_seconds())

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "number": self.number,
            "id": self.id,
            "trigger": self.trigger,
            "phase": self.phase,
        }
        optional = {
            "reason": self.reason or None,
            "startedAt": _stamp(self.started_at),
            "finishedAt": _stamp(self.finished_at),
            "retries": self.retries or None,
            "failedStep": self.failed_step or None,
            "message": self.message or None,
        }
        data.update({key: value for key, value in optional.items() if value is not None})
        return data


@dataclass(frozen=True, kw_only=True)
class Condition:
    type: str
    status: str
    reason: str = ""
    message: str = ""


@dataclass(frozen=True, kw_only=True)
class PipelineView:
    """Everything the views show of one Pipeline."""

    name: str
    namespace: str
    uid: str = ""
    generation: int = 0
    observed_generation: int = 0
    created_at: datetime | None = None
    suspend: bool = False
    run: Run | None = None
    ready: Condition | None = None
    current_step: str = ""
    steps: tuple[StepNode, ...] = ()
    final_steps: tuple[StepNode, ...] = ()
    history: tuple[HistoryRow, ...] = ()
    next_schedule: datetime | None = None
    resource_version: str = ""
    # The spec could not be read as steps (e.g. not a mapping): the tree is empty.
    invalid: bool = False
    # status.handledTokens: verb -> the tokens the operator acted on (or ignored).
    handled_tokens: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def walk(self) -> Iterator[StepNode]:
        for node in (*self.steps, *self.final_steps):
            yield from node.walk()

    def find(self, step: str) -> StepNode | None:
        return next((node for node in self.walk() if node.name == step), None)

    @property
    def step_names(self) -> list[str]:
        return [node.name for node in self.walk()]

    @property
    def progress(self) -> tuple[int, int]:
        """(done, total) over the steps that do work: actions and forEach sub-steps (a
        forEach with no sub-step yet counts one), succeeded or skipped counting done."""
        leaves = [node for node in self.walk() if _is_work(node)]
        return sum(1 for node in leaves if node.phase in DONE_PHASES), len(leaves)

    @property
    def phase(self) -> str:
        """The run's phase, ``Pending`` when there is none (a schedule's first tick)."""
        return self.run.phase if self.run is not None else PENDING

    @property
    def up_to_date(self) -> bool:
        """The status describes the spec as it is (the operator saw the last edit)."""
        return self.observed_generation >= self.generation

    @property
    def settled(self) -> bool:
        """Nothing changes by waiting: the run finished or is suspended, for this spec."""
        if self.run is None or not self.up_to_date:
            return False
        return self.run.phase in FINISHED or self.run.phase == SUSPENDED

    @property
    def waiting_approvals(self) -> list[str]:
        return [
            node.name
            for node in self.walk()
            if node.action == "approval" and node.phase == "Waiting"
        ]

    def duration(self, now: datetime) -> float | None:
        if self.run is None or self.run.pending:
            return None
        end = self.run.finished_at or now
        return max(0.0, (end - self.run.started_at).total_seconds())

    def to_dict(self, now: datetime) -> dict[str, Any]:
        done, total = self.progress
        return {
            "name": self.name,
            "namespace": self.namespace,
            "run": self.run.to_status() if self.run is not None else None,
            "phase": self.phase,
            "ready": None
            if self.ready is None
            else {
                "status": self.ready.status,
                "reason": self.ready.reason,
                "message": self.ready.message,
            },
            "currentStep": self.current_step or None,
            "progress": {"done": done, "total": total},
            "durationSeconds": self.duration(now),
            "nextSchedule": _stamp(self.next_schedule),
            "suspend": self.suspend,
            "steps": [node.to_dict() for node in self.steps],
            "finally": [node.to_dict() for node in self.final_steps],
            "history": [row.to_dict() for row in self.history],
        }


def pipeline_view(obj: Mapping[str, Any]) -> PipelineView:
    """The read model of a Pipeline object (as the API returns it)."""
    meta = _mapping(obj.get("metadata"))
    spec = _mapping(obj.get("spec"))
    status = _mapping(obj.get("status"))
    name = str(meta.get("name") or "")
    records: dict[str, Mapping[str, Any]] = {}
    for record in status.get("steps") or []:
        if isinstance(record, Mapping) and record.get("name"):
            records[str(record["name"])] = record
    placed: set[str] = set()
    steps = _children(spec.get("steps"), records, placed)
    final_steps = _children(spec.get("finally"), records, placed)
    final_steps = tuple(_mark_final(node) for node in final_steps)
    leftovers = tuple(
        _node({"name": rec_name}, records, placed, kind="inserted")
        for rec_name in records
        if rec_name not in placed
    )
    ready = next(
        (
            c
            for c in status.get("conditions") or []
            if isinstance(c, Mapping) and c.get("type") == "Ready"
        ),
        None,
    )
    run = Run.from_status(name, status.get("run"))
    history = tuple(
        _history_row(entry)
        for entry in status.get("history") or []
        if isinstance(entry, Mapping) and entry.get("number")
    )
    return PipelineView(
        name=name,
        namespace=str(meta.get("namespace") or ""),
        uid=str(meta.get("uid") or ""),
        generation=int(meta.get("generation") or 0),
        observed_generation=int(status.get("observedGeneration") or 0),
        created_at=parse_time(meta.get("creationTimestamp")),
        suspend=bool(spec.get("suspend")),
        run=run,
        ready=None
        if ready is None
        else Condition(
            type="Ready",
            status=str(ready.get("status") or "Unknown"),
            reason=str(ready.get("reason") or ""),
            message=str(ready.get("message") or ""),
        ),
        current_step=str(status.get("currentStep") or ""),
        steps=steps + leftovers,
        final_steps=final_steps,
        history=history,
        next_schedule=parse_time(_mapping(status.get("schedule")).get("nextScheduleTime")),
        resource_version=str(meta.get("resourceVersion") or ""),
        invalid=not isinstance(spec.get("steps"), list),
        handled_tokens={verb: tuple(tokens) for verb, tokens in handled_tokens(status).items()},
    )


def _is_work(node: StepNode) -> bool:
    if node.kind in ("action", "item", "inserted"):
        return True
    return node.kind == "forEach" and not node.children


def _mark_final(node: StepNode) -> StepNode:
    return _evolve(node, final=True, children=tuple(_mark_final(c) for c in node.children))


def _evolve(node: StepNode, **changes: Any) -> StepNode:
    return replace(node, **changes)


def _children(
    steps: Any, records: Mapping[str, Mapping[str, Any]], placed: set[str]
) -> tuple[StepNode, ...]:
    if not isinstance(steps, Sequence) or isinstance(steps, str):
        return ()
    nodes: list[StepNode] = []
    for step in steps:
        if not isinstance(step, Mapping) or not step.get("name"):
            continue
        node = _step(step, records, placed)
        nodes.append(node)
        # Steps this one inserted at run time follow it.
        record = records.get(node.name) or {}
        for inserted in record.get("inserted") or []:
            if str(inserted) in records and str(inserted) not in placed:
                nodes.append(_node({"name": str(inserted)}, records, placed, kind="inserted"))
    return tuple(nodes)


def _step(
    step: Mapping[str, Any], records: Mapping[str, Mapping[str, Any]], placed: set[str]
) -> StepNode:
    name = str(step["name"])
    for kind in ("parallel", "group", "switch"):
        body = step.get(kind)
        if isinstance(body, Mapping):
            children = _children(body.get("steps"), records, placed)
            if kind == "switch":
                children = tuple(
                    _evolve(child, when=_when(branch))
                    for child, branch in zip(children, _named(body.get("steps")), strict=False)
                )
            concurrency = body.get("maxConcurrency") if kind == "parallel" else None
            return _node(
                step,
                records,
                placed,
                kind=kind,
                children=children,
                max_concurrency=int(concurrency) if concurrency else None,
            )
    for_each = step.get("forEach")
    if isinstance(for_each, Mapping):
        template = _mapping(for_each.get("step"))
        subs = []
        index = 0
        while f"{name}-{index}" in records:
            subs.append(
                _node(
                    {"name": f"{name}-{index}", "action": template.get("action")},
                    records,
                    placed,
                    kind="item",
                )
            )
            index += 1
        concurrency = for_each.get("maxConcurrency")
        return _node(
            step,
            records,
            placed,
            kind="forEach",
            children=tuple(subs),
            items=str(for_each.get("items") or ""),
            max_concurrency=int(concurrency) if concurrency else None,
        )
    return _node(step, records, placed, kind="action")


def _named(steps: Any) -> list[Mapping[str, Any]]:
    if not isinstance(steps, Sequence) or isinstance(steps, str):
        return []
    return [s for s in steps if isinstance(s, Mapping) and s.get("name")]


def _when(step: Mapping[str, Any]) -> tuple[str, ...]:
    when = step.get("when")
    if isinstance(when, str):
        return (when,)
    if isinstance(when, Sequence):
        return tuple(str(w) for w in when)
    return ()


def _node(
    step: Mapping[str, Any],
    records: Mapping[str, Mapping[str, Any]],
    placed: set[str],
    *,
    kind: StepKind,
    children: tuple[StepNode, ...] = (),
    items: str | None = None,
    max_concurrency: int | None = None,
) -> StepNode:
    name = str(step["name"])
    placed.add(name)
    record = records.get(name) or {}
    action = step.get("action")
    outputs = record.get("outputs")
    log_tail = record.get("logTail")
    return StepNode(
        name=name,
        kind=kind,
        action=str(action) if action else None,
        phase=str(record.get("phase") or PENDING),
        reason=str(record.get("reason") or ""),
        attempts=int(record.get("attempts") or 0),
        started_at=parse_time(record.get("startedAt")),
        finished_at=parse_time(record.get("finishedAt")),
        next_run_at=parse_time(record.get("nextRunAt")),
        message=str(record.get("message") or ""),
        outputs=outputs if isinstance(outputs, Mapping) else None,
        item=str(record["item"]) if record.get("item") is not None else None,
        when=_when(step),
        items=items,
        max_concurrency=max_concurrency,
        from_run=int(record["fromRun"]) if record.get("fromRun") else None,
        disabled=bool(record.get("disabled")),
        log_tail=str(log_tail) if isinstance(log_tail, str) and log_tail else None,
        children=children,
    )


def _history_row(entry: Mapping[str, Any]) -> HistoryRow:
    return HistoryRow(
        number=int(entry["number"]),
        id=str(entry.get("id") or ""),
        trigger=str(entry.get("trigger") or ""),
        phase=str(entry.get("phase") or ""),
        reason=str(entry.get("reason") or ""),
        started_at=parse_time(entry.get("startedAt")),
        finished_at=parse_time(entry.get("finishedAt")),
        retries=int(entry.get("retries") or 0),
        failed_step=str(entry.get("failedStep") or ""),
        message=str(entry.get("message") or ""),
    )


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _stamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


__all__ = [
    "API_VERSION",
    "KIND",
    "PLURAL",
    "Condition",
    "HistoryRow",
    "PipelineView",
    "StepKind",
    "StepNode",
    "one_line",
    "parse_time",
    "pipeline_view",
]
