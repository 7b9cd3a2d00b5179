"""The step structure of a Pipeline as a graph, and its Mermaid and Graphviz (DOT) text.

A sequence is a chain of edges; a parallel step fans out to its children and in again
after them; a group (and a parallel step) is a subgraph; a forEach is one node that names
its item expression; a switch is a diamond with one labelled edge per branch (``default``
for a branch without ``when``); the finally steps are a lane of their own, reached by a
dotted edge from wherever the steps end. ``needs`` (when a step declares it) draws the
step's edges from the steps it needs instead of from the step before it (dotted, and
labelled with the phase, for a need of a phase other than Succeeded); a uses step is one
node that names its template. Given a live
Pipeline (a status), nodes carry their phase and the renderers colour them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from kubesteps.views.view_model import PipelineView, StepNode, one_line, pipeline_view

Shape = Literal["step", "forEach", "switch", "terminal"]

# Fill and stroke per phase (the same in both formats); unknown phases stay uncoloured.
PHASE_COLOURS: dict[str, tuple[str, str]] = {
    "Succeeded": ("#d3f9d8", "#2b8a3e"),
    "Failed": ("#ffe3e3", "#c92a2a"),
    "Running": ("#d0ebff", "#1864ab"),
    "Waiting": ("#fff3bf", "#e67700"),
    "Retrying": ("#ffe8cc", "#d9480f"),
    "Throttled": ("#f3f0ff", "#5f3dc4"),
    "Skipped": ("#f1f3f5", "#868e96"),
    "Pending": ("#ffffff", "#adb5bd"),
}


@dataclass(frozen=True)
class GraphNode:
    id: str
    step: str
    label: str
    shape: Shape = "step"
    phase: str | None = None


@dataclass(frozen=True)
class GraphEdge:
    source: str
    target: str
    label: str = ""
    dotted: bool = False


@dataclass(frozen=True)
class Cluster:
    """A subgraph: a group, a parallel step, or the finally lane."""

    id: str
    label: str
    # Node ids and inner clusters, in the order of the spec.
    members: tuple[str | Cluster, ...] = ()


@dataclass(frozen=True)
class Graph:
    name: str
    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]
    # Node ids outside any cluster and the top-level clusters, in the order of the spec.
    layout: tuple[str | Cluster, ...]
    live: bool = False

    def node(self, node_id: str) -> GraphNode:
        return next(node for node in self.nodes if node.id == node_id)


@dataclass
class _Builder:
    live: bool
    phases: Mapping[str, StepNode]
    nodes: list[GraphNode] = field(default_factory=list)
    edges: list[GraphEdge] = field(default_factory=list)
    used: set[str] = field(default_factory=set)

    def node_id(self, name: str) -> str:
        base = "s_" + re.sub(r"[^A-Za-z0-9_]", "_", name)
        candidate, n = base, 2
        while candidate in self.used:
            candidate, n = f"{base}_{n}", n + 1
        self.used.add(candidate)
        return candidate

    def add(self, name: str, label: str, shape: Shape = "step") -> str:
        node_id = self.node_id(name)
        record = self.phases.get(name)
        phase = record.phase if (self.live and record is not None) else None
        self.nodes.append(GraphNode(node_id, name, label, shape, phase))
        return node_id

    def link(
        self,
        sources: Sequence[str],
        targets: Sequence[str],
        *,
        label: str = "",
        dotted: bool = False,
    ) -> None:
        for source in sources:
            for target in targets:
                self.edges.append(GraphEdge(source, target, label, dotted))


@dataclass
class _Part:
    """What a walked piece of the spec gives its surroundings."""

    entries: list[str]
    exits: list[str]
    members: list[str | Cluster] = field(default_factory=list)


def graph_of(obj: Mapping[str, Any]) -> Graph:
    """The graph of a Pipeline manifest or live object (with a status: ``live``, phases)."""
    view = pipeline_view(obj)
    live = isinstance(obj.get("status"), Mapping) and bool(
        obj["status"].get("steps") or obj["status"].get("run")
    )
    builder = _Builder(live=live, phases={node.name: node for node in view.walk()})
    spec = obj.get("spec") if isinstance(obj.get("spec"), Mapping) else {}
    assert isinstance(spec, Mapping)
    main = _sequence(builder, _steps(spec.get("steps")), view)
    layout = list(main.members)
    final = _steps(spec.get("finally"))
    if final:
        lane = _sequence(builder, final, view)
        layout.append(Cluster("finally_lane", "finally", tuple(lane.members)))
        builder.link(main.exits, lane.entries, label="finally", dotted=True)
    return Graph(view.name, tuple(builder.nodes), tuple(builder.edges), tuple(layout), live)


def _steps(value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        return []
    return [step for step in value if isinstance(step, Mapping) and step.get("name")]


def _needs(step: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The steps a step needs, with the phase each must end in (Succeeded by default)."""
    needs = step.get("needs")
    if isinstance(needs, str):
        needs = [needs]
    found = []
    for need in needs if isinstance(needs, Sequence) else []:
        if isinstance(need, str):
            found.append((need, "Succeeded"))
        elif isinstance(need, Mapping) and isinstance(need.get("step"), str):
            found.append((need["step"], str(need.get("phase") or "Succeeded")))
    return found


def _sequence(builder: _Builder, steps: list[Mapping[str, Any]], view: PipelineView) -> _Part:
    """Steps in order: each one's entries follow the previous one's exits. A list in which
    a step has ``needs`` is a graph: a step follows the steps it needs (the edge labelled
    with the phase asked for, when not Succeeded), and one without needs starts the list."""
    result = _Part(entries=[], exits=[])
    parts: dict[str, _Part] = {}
    for step in steps:
        part = _step(builder, step, view)
        parts[str(step["name"])] = part
        result.members += part.members
    if not any(_needs(step) for step in steps):
        previous: list[str] | None = None
        for part in parts.values():
            if previous is None:
                result.entries += part.entries
            else:
                builder.link(previous, part.entries)
            previous = part.exits
        result.exits = previous or []
        return result
    needed: set[str] = set()
    for step in steps:
        part = parts[str(step["name"])]
        needs = [(name, phase) for name, phase in _needs(step) if name in parts]
        for name, phase in needs:
            label = "" if phase == "Succeeded" else phase.lower()
            builder.link(parts[name].exits, part.entries, label=label, dotted=phase != "Succeeded")
            needed.add(name)
        if not needs:
            result.entries += part.entries
    result.exits = [e for name, part in parts.items() if name not in needed for e in part.exits]
    return result


def _step(builder: _Builder, step: Mapping[str, Any], view: PipelineView) -> _Part:
    name = str(step["name"])
    for kind in ("group", "parallel"):
        body = step.get(kind)
        if isinstance(body, Mapping):
            children = _steps(body.get("steps"))
            if kind == "group":
                inner = _sequence(builder, children, view)
                label = f"{name} (group)"
            else:
                inner = _Part(entries=[], exits=[])
                for child in children:
                    part = _step(builder, child, view)
                    inner.entries += part.entries
                    inner.exits += part.exits
                    inner.members += part.members
                limit = body.get("maxConcurrency")
                label = f"{name} (parallel" + (f", at most {limit} at a time)" if limit else ")")
            if not inner.entries:  # nothing inside: the step itself stands for it
                node = builder.add(name, label)
                return _Part([node], [node], members=[node])
            cluster = Cluster(builder.node_id(name + "-cluster"), label, tuple(inner.members))
            return _Part(inner.entries, inner.exits, members=[cluster])
    for_each = step.get("forEach")
    if isinstance(for_each, Mapping):
        label = f"{name}<br/>forEach: {one_line(str(for_each.get('items') or ''), 60)}"
        found = view.find(name)
        if builder.live and found is not None and found.children:
            counts: dict[str, int] = {}
            for sub in found.children:
                counts[sub.phase] = counts.get(sub.phase, 0) + 1
            label += "<br/>" + ", ".join(f"{n} {phase}" for phase, n in sorted(counts.items()))
        node = builder.add(name, label, "forEach")
        return _Part([node], [node], members=[node])
    switch = step.get("switch")
    if isinstance(switch, Mapping):
        decision = builder.add(name, name, "switch")
        part = _Part([decision], [], members=[decision])
        for branch in _steps(switch.get("steps")):
            when = branch.get("when")
            conditions = [when] if isinstance(when, str) else list(when or [])
            label = " && ".join(str(c) for c in conditions) or "default"
            inner = _step(builder, branch, view)
            builder.link([decision], inner.entries, label=one_line(label, 60))
            part.exits += inner.exits
            part.members += inner.members
        if not part.exits:
            part.exits = [decision]
        return part
    action = step.get("action")
    uses = step.get("uses")
    label = f"{name}<br/>{action}" if action else name
    if isinstance(uses, Mapping):
        label = f"{name}<br/>uses: {one_line(str(uses.get('template') or ''), 60)}"
    node = builder.add(name, label)
    return _Part([node], [node], members=[node])


# -- Mermaid -----------------------------------------------------------------------------


def mermaid(graph: Graph) -> str:
    """A Mermaid flowchart (GitHub renders it in a ```mermaid block)."""
    lines = ["flowchart TD"]
    by_id = {node.id: node for node in graph.nodes}

    def node_line(node: GraphNode, indent: str) -> str:
        text = _mermaid_text(node.label)
        if node.shape == "forEach":
            return f'{indent}{node.id}[["{text}"]]'
        if node.shape == "switch":
            return f'{indent}{node.id}{{"{text}"}}'
        return f'{indent}{node.id}["{text}"]'

    def member_lines(members: tuple[str | Cluster, ...], indent: str) -> None:
        for member in members:
            if isinstance(member, str):
                lines.append(node_line(by_id[member], indent))
                continue
            lines.append(f'{indent}subgraph {member.id}["{_mermaid_text(member.label)}"]')
            member_lines(member.members, indent + "  ")
            lines.append(f"{indent}end")

    member_lines(graph.layout, "  ")
    for edge in graph.edges:
        arrow = "-.->" if edge.dotted else "-->"
        label = f'|"{_mermaid_text(edge.label)}"|' if edge.label else ""
        lines.append(f"  {edge.source} {arrow}{label} {edge.target}")
    if graph.live:
        phases = sorted({node.phase for node in graph.nodes if node.phase in PHASE_COLOURS})
        for phase in phases:
            fill, stroke = PHASE_COLOURS[phase]
            lines.append(f"  classDef {phase.lower()} fill:{fill},stroke:{stroke}")
        for phase in phases:
            members = ",".join(node.id for node in graph.nodes if node.phase == phase)
            lines.append(f"  class {members} {phase.lower()}")
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;")


# -- DOT ---------------------------------------------------------------------------------


def dot(graph: Graph) -> str:
    """A Graphviz digraph (``dot -Tsvg``)."""
    lines = [
        f"digraph {_dot_id(graph.name or 'pipeline')} {{",
        "  rankdir=TB;",
        '  node [shape=box, style="rounded,filled", fillcolor="#ffffff", fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    by_id = {node.id: node for node in graph.nodes}

    def node_line(node: GraphNode, indent: str) -> str:
        attributes = [f"label={_dot_id(node.label.replace('<br/>', chr(10)))}"]
        if node.shape == "forEach":
            attributes.append("shape=box, peripheries=2")
        elif node.shape == "switch":
            attributes.append("shape=diamond, style=filled")
        if node.phase in PHASE_COLOURS:
            fill, stroke = PHASE_COLOURS[node.phase]
            attributes.append(f'fillcolor="{fill}", color="{stroke}"')
        return f"{indent}{node.id} [{', '.join(attributes)}];"

    def member_lines(members: tuple[str | Cluster, ...], indent: str) -> None:
        for member in members:
            if isinstance(member, str):
                lines.append(node_line(by_id[member], indent))
                continue
            lines.append(f"{indent}subgraph cluster_{member.id} {{")
            lines.append(f"{indent}  label={_dot_id(member.label)}; style=dashed;")
            member_lines(member.members, indent + "  ")
            lines.append(f"{indent}}}")

    member_lines(graph.layout, "  ")
    for edge in graph.edges:
        attributes = []
        if edge.label:
            attributes.append(f"label={_dot_id(edge.label)}")
        if edge.dotted:
            attributes.append("style=dotted")
        suffix = f" [{', '.join(attributes)}]" if attributes else ""
        lines.append(f"  {edge.source} -> {edge.target}{suffix};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_id(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'
