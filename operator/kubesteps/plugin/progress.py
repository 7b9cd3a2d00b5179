"""``kubesteps run`` on a terminal: the step trees of the Pipelines being run, redrawn in
place on every step transition (a progress display, not a log scroll)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from rich.console import Console, Group
from rich.live import Live

from kubesteps.engine import StepState
from kubesteps.kube.meta import meta_of
from kubesteps.plugin.render import tree
from kubesteps.views import pipeline_view


def _key(manifest: Mapping[str, Any]) -> tuple[str, str]:
    meta = meta_of(manifest)
    return meta.namespace or "default", meta.name


def record(state: StepState) -> dict[str, Any]:
    """A step's state as ``status.steps[]`` spells it."""
    entry: dict[str, Any] = {
        "name": state.name,
        "phase": state.status.value.capitalize(),
        "attempts": state.attempts,
        "message": state.message,
    }
    for field, value in (
        ("startedAt", state.started_at),
        ("finishedAt", state.finished_at),
        ("nextRunAt", state.next_run_at),
    ):
        if value is not None:
            entry[field] = value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if state.outputs:
        entry["outputs"] = dict(state.outputs)
    return entry


class LiveTrees:
    """The trees of ``manifests``, updated from the runner's step transitions."""

    def __init__(self, manifests: Sequence[Mapping[str, Any]], console: Console) -> None:
        self.manifests = {_key(m): m for m in manifests}
        self.steps: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
            key: {} for key in self.manifests
        }
        self.live = Live(console=console, auto_refresh=False, transient=False)

    def __enter__(self) -> LiveTrees:
        self.live.start()
        self.redraw()
        return self

    def __exit__(self, *exc: object) -> None:
        self.redraw()
        self.live.stop()

    def update(self, body: Mapping[str, Any], state: StepState) -> None:
        key = _key(body)
        self.steps.setdefault(key, {})[state.name] = record(state)
        self.redraw()

    def redraw(self) -> None:
        now = datetime.now(UTC)
        trees = []
        for key, manifest in self.manifests.items():
            obj = {
                **manifest,
                "metadata": {"namespace": key[0], "name": key[1]},
                "status": {"steps": list(self.steps.get(key, {}).values())},
            }
            trees.append(tree(pipeline_view(obj), now))
        self.live.update(Group(*trees), refresh=True)
