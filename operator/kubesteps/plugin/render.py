"""The terminal rendering of the views, with rich: tables, the step tree, colour.

Every function takes the time as ``now`` (ages and running durations depend on it) and
returns a rich renderable or text; colour is the Console's business (none when the output
is not a terminal or ``NO_COLOR`` is set).
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import IO

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from kubesteps.engine.elapsed import format_elapsed
from kubesteps.views.api import EventRow
from kubesteps.views.view_model import HistoryRow, PipelineView, StepNode, one_line

PIPE_WIDTH = 200
PHASE_STYLES = {
    "Succeeded": "green",
    "Failed": "bold red",
    "Running": "cyan",
    "Waiting": "yellow",
    "Retrying": "magenta",
    "Throttled": "blue",
    "Skipped": "dim",
    "Pending": "dim",
    "Suspended": "yellow",
    "Cancelled": "red",
}
PHASE_MARKS = {
    "Succeeded": "✓",
    "Failed": "✗",
    "Running": "▶",
    "Waiting": "…",
    "Retrying": "↻",
    "Throttled": "≈",
    "Skipped": "-",
    "Pending": "○",
}


def console(*, file: IO[str] | None = None, width: int | None = None) -> Console:
    """A Console for stdout: colour only on a terminal and without ``NO_COLOR``."""
    stream = file if file is not None else sys.stdout
    tty = bool(getattr(stream, "isatty", lambda: False)())
    no_color = bool(os.environ.get("NO_COLOR")) or not tty
    if width is None and not tty:
        # Into a file or a pipe, as kubectl does: lines as long as they are (up to a bound).
        columns = os.environ.get("COLUMNS", "")
        width = int(columns) if columns.isdigit() else PIPE_WIDTH
    return Console(
        file=stream,
        no_color=no_color,
        color_system=None if no_color else "auto",
        force_terminal=tty,
        width=width,
        highlight=False,
        emoji=False,
    )


def text_of(renderable: RenderableType, *, width: int = PIPE_WIDTH) -> str:
    """Plain text (no colour, no trailing spaces): for pipes, files and snapshot tests."""
    out = Console(
        width=width,
        no_color=True,
        color_system=None,
        highlight=False,
        emoji=False,
        file=io.StringIO(),
        force_terminal=False,
    )
    with out.capture() as captured:
        out.print(renderable)
    return "\n".join(line.rstrip() for line in captured.get().splitlines())


def phase_text(phase: str) -> Text:
    return Text(phase, style=PHASE_STYLES.get(phase, ""))


def age(then: datetime | None, now: datetime) -> str:
    if then is None:
        return "-"
    seconds = (now - then).total_seconds()
    return format_short(seconds)


def format_short(seconds: float | None) -> str:
    """``3s``, ``4m12s``, ``2h5m``, ``3d4h``: kubectl's way of showing ages."""
    if seconds is None:
        return "-"
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60}s" if seconds % 60 else f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{(seconds % 3600) // 60}m"
    return f"{seconds // 86400}d{(seconds % 86400) // 3600}h"


def _table(*columns: str) -> Table:
    table = Table(
        box=None, pad_edge=False, show_edge=False, header_style="bold", padding=(0, 2, 0, 0)
    )
    for column in columns:
        table.add_column(column, no_wrap=True, overflow="ellipsis")
    return table


# -- get --------------------------------------------------------------------------------


def pipelines_table(
    views: Sequence[PipelineView], now: datetime, *, namespaces: bool
) -> RenderableType:
    columns = ["NAME", "RUN", "PHASE", "STEP", "PROGRESS", "DURATION", "AGE"]
    if namespaces:
        columns.insert(0, "NAMESPACE")
    if any(view.next_schedule for view in views):
        columns.append("NEXT")
    table = _table(*columns)
    for view in views:
        done, total = view.progress
        phase = view.phase if view.up_to_date else f"{view.phase}*"
        row: list[str | Text] = [
            view.name,
            str(view.run.number) if view.run and not view.run.pending else "-",
            phase_text(phase),
            view.current_step or "-",
            f"{done}/{total}",
            format_short(view.duration(now)),
            age(view.created_at, now),
        ]
        if namespaces:
            row.insert(0, view.namespace)
        if "NEXT" in columns:
            row.append(age_until(view.next_schedule, now))
        table.add_row(*row)
    return table


def age_until(then: datetime | None, now: datetime) -> str:
    if then is None:
        return "-"
    return "in " + format_short((then - now).total_seconds())


# -- the tree ---------------------------------------------------------------------------


def header(view: PipelineView, now: datetime) -> Text:
    """``release  run release-3  Running  (trigger SpecChanged, 2m3s, 3/5 done)``."""
    text = Text()
    text.append(f"{view.namespace}/{view.name}", style="bold")
    run = view.run
    if run is None or run.pending:
        text.append("  no run yet")
        if view.next_schedule:
            text.append(f" (next {age_until(view.next_schedule, now)})")
        return text
    text.append(f"  run {run.id}  ")
    text.append_text(phase_text(run.phase))
    if run.reason and run.reason != run.phase:
        text.append(f" ({run.reason})")
    done, total = view.progress
    details = [
        f"trigger {run.trigger}",
        f"started {age(run.started_at, now)} ago",
        f"took {format_short(view.duration(now))}"
        if run.finished
        else f"running {format_short(view.duration(now))}",
        f"{done}/{total} done",
    ]
    if run.retries:
        details.append(f"{run.retries} retr{'y' if run.retries == 1 else 'ies'}")
    text.append("  " + ", ".join(details))
    if run.message:
        text.append(f"\n  {one_line(run.message, 160)}")
    return text


def _mark(node: StepNode) -> Text:
    return Text(PHASE_MARKS.get(node.phase, "?"), style=PHASE_STYLES.get(node.phase, ""))


def _label(node: StepNode) -> str:
    if node.kind == "forEach":
        return f"{node.name} (forEach {one_line(node.items or '', 40)})"
    if node.kind in ("group", "parallel", "switch"):
        return f"{node.name} ({node.kind})"
    if node.item is not None:
        return f"{node.name} [{node.item}]"
    return node.name


def _detail(node: StepNode, now: datetime) -> str:
    parts = []
    if node.when:
        parts.append("when " + " && ".join(node.when))
    if node.from_run:
        parts.append(f"kept from run {node.from_run}")
    message = node.message
    # A group's message repeats its children's while they work: they show it.
    container = node.kind in ("group", "parallel", "forEach", "switch")
    if message and message != "completed" and (not container or node.phase == "Failed"):
        parts.append(one_line(message, 90))
    if (
        node.next_run_at
        and node.next_run_at > now
        and node.phase in ("Waiting", "Retrying", "Throttled")
    ):
        parts.append(f"next {age_until(node.next_run_at, now)}")
    outputs = node.outputs_line(60)
    if outputs:
        parts.append(f"→ {outputs}")
    return "; ".join(parts)


def step_tree(view: PipelineView, now: datetime) -> Table:
    """The step tree as a table: the first column draws the tree, the others align."""
    table = _table("STEP", "PHASE", "ATTEMPTS", "STARTED", "DURATION", "DETAIL")
    table.columns[-1].no_wrap = False
    table.columns[-1].overflow = "fold"

    def add(nodes: Sequence[StepNode], prefix: str) -> None:
        for index, node in enumerate(nodes):
            last = index == len(nodes) - 1
            branch = prefix + ("└─ " if last else "├─ ")
            label = Text(branch)
            label.append_text(_mark(node))
            label.append(" " + _label(node))
            table.add_row(
                label,
                phase_text(node.phase),
                str(node.attempts) if node.attempts else "-",
                age(node.started_at, now) + (" ago" if node.started_at else ""),
                format_short(node.duration(now)) if node.started_at else "-",
                _detail(node, now),
            )
            add(node.children, prefix + ("   " if last else "│  "))

    add(view.steps, "")
    if view.final_steps:
        table.add_row(Text("finally", style="bold"), "", "", "", "", "")
        add(view.final_steps, "")
    return table


def tree(view: PipelineView, now: datetime) -> RenderableType:
    return Group(header(view, now), step_tree(view, now))


def history_table(view: PipelineView, now: datetime) -> Table:
    table = _table(
        "RUN",
        "TRIGGER",
        "PHASE",
        "REASON",
        "STARTED",
        "DURATION",
        "RETRIES",
        "FAILED STEP",
        "MESSAGE",
    )
    table.columns[-1].no_wrap = False
    rows: list[HistoryRow] = []
    run = view.run
    if run is not None and not run.pending:
        rows.append(
            HistoryRow(
                number=run.number,
                id=run.id,
                trigger=run.trigger,
                phase=run.phase,
                reason=run.reason,
                started_at=run.started_at,
                finished_at=run.finished_at,
                retries=run.retries,
                failed_step=run.failed_step,
                message=run.message,
            )
        )
    rows += view.history
    for row in rows:
        duration = row.duration()
        if duration is None and row is rows[0] and run is not None and not run.finished:
            duration = view.duration(now)
        table.add_row(
            row.id,
            row.trigger,
            phase_text(row.phase),
            row.reason or "-",
            age(row.started_at, now) + " ago" if row.started_at else "-",
            format_short(duration),
            str(row.retries or "-"),
            row.failed_step or "-",
            one_line(row.message, 80) or "-",
        )
    return table


def events_table(events: Sequence[EventRow], now: datetime) -> Table:
    table = _table("AGE", "TYPE", "REASON", "MESSAGE")
    table.columns[-1].no_wrap = False
    for event in events:
        table.add_row(
            age(event.time, now),
            event.type,
            event.reason,
            one_line(event.message, 200) + (f" (x{event.count})" if event.count > 1 else ""),
        )
    return table


def describe(view: PipelineView, events: Sequence[EventRow], now: datetime) -> RenderableType:
    fields = _table("", "")
    fields.show_header = False
    fields.columns[0].min_width = 14
    fields.columns[1].no_wrap = False
    fields.columns[1].overflow = "fold"
    run = view.run
    fields.add_row("Name:", view.name)
    fields.add_row("Namespace:", view.namespace)
    if run is None or run.pending:
        fields.add_row("Run:", "none yet")
    else:
        fields.add_row("Run:", f"{run.id} (number {run.number}, trigger {run.trigger})")
        fields.add_row("Phase:", phase_text(run.phase))
        if run.reason:
            fields.add_row("Reason:", run.reason)
        fields.add_row("Started:", f"{_stamp(run.started_at)} ({age(run.started_at, now)} ago)")
        if run.finished_at:
            fields.add_row("Finished:", _stamp(run.finished_at))
        fields.add_row("Duration:", format_elapsed(view.duration(now) or 0))
        if run.retries:
            fields.add_row("Retries:", str(run.retries))
        if run.suspended_at:
            fields.add_row("Suspended:", f"since {_stamp(run.suspended_at)}")
        if run.failed_step:
            fields.add_row("Failed step:", run.failed_step)
    if view.suspend:
        fields.add_row("Suspend:", "true (spec.suspend)")
    if view.ready is not None:
        fields.add_row(
            "Ready:",
            f"{view.ready.status} ({view.ready.reason}) "
            f"{one_line(view.ready.message, 160)}".rstrip(),
        )
    if view.next_schedule:
        fields.add_row(
            "Next schedule:", f"{_stamp(view.next_schedule)} ({age_until(view.next_schedule, now)})"
        )
    if not view.up_to_date:
        fields.add_row("Note:", f"the operator has not seen generation {view.generation} yet")
    done, total = view.progress
    fields.add_row("Progress:", f"{done}/{total} steps done")
    parts: list[RenderableType] = [
        fields,
        Text(""),
        Text("Steps:", style="bold"),
        step_tree(view, now),
    ]
    if view.history:
        parts += [Text(""), Text("History:", style="bold"), history_table(view, now)]
    parts += [Text(""), Text("Events:", style="bold")]
    parts.append(events_table(events, now) if events else Text("  <none>"))
    return Group(*parts)


def _stamp(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else "-"


def transition_line(old: StepNode | None, new: StepNode) -> str:
    """One line per step transition (watch without a terminal, ``kubesteps run``)."""
    text = f"{new.name:<24} {new.phase:<10}"
    if new.attempts > 1:
        text += f" attempt {new.attempts}"
    if new.message and new.message != "completed":
        text += f" {one_line(new.message, 120)}"
    return text
