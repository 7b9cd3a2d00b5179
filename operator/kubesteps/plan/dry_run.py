"""What a pass would do with a Pipeline now, without doing any of it: the dry run.

For the spec and the status the Pipeline has (``status.run``, ``status.steps``,
``status.lastRuns``), each step gets a verdict as the engine would reach it: ``done``
(succeeded in this run, so skipped by its state), ``run``, ``skip`` (naming the ``when``
that decided it), ``wait`` or ``retry`` (until when), ``throttled`` (until when),
``failed``, or ``undecided`` when a ``when`` or a forEach's items read what only running
earlier steps will tell (their outputs). Nothing is written, no action runs and no API is
called: ``plan_run`` is a pure function of the manifest, its status and the time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kubesteps.pipeline import model as m
from kubesteps.pipeline.cel_compile import FOREACH_INDEX, CelError
from kubesteps.pipeline.cel_evaluate import evaluate_list, evaluate_predicate, to_cel
from kubesteps.pipeline.cel_templates import has_template
from kubesteps.pipeline.durations import format_duration
from kubesteps.pipeline.runs import CANCELLED, FAILED, SUCCEEDED
from kubesteps.plan.build import item_label, params_of
from kubesteps.plan.validate import SpecError, prepare

RUN, SKIP, DONE, WAIT, RETRY, THROTTLED, FAILED_, UNDECIDED, LATER = (
    "run",
    "skip",
    "done",
    "wait",
    "retry",
    "throttled",
    "failed",
    "undecided",
    "later",
)


@dataclass(frozen=True)
class StepPlan:
    """One step's verdict; ``depth`` is its nesting level (0 at the top)."""

    name: str
    verdict: str
    detail: str = ""
    until: datetime | None = None
    depth: int = 0

    def to_dict(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"name": self.name, "verdict": self.verdict, "depth": self.depth}
        if self.detail:
            shown["detail"] = self.detail
        if self.until is not None:
            shown["until"] = _stamp(self.until)
        return shown


@dataclass(frozen=True)
class RunPlan:
    """What would happen to one Pipeline: a headline about its run, then every step."""

    namespace: str
    name: str
    headline: str
    steps: tuple[StepPlan, ...] = ()
    finally_steps: tuple[StepPlan, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "pipeline": f"{self.namespace}/{self.name}",
            "headline": self.headline,
            "notes": list(self.notes),
            "steps": [s.to_dict() for s in self.steps],
            "finally": [s.to_dict() for s in self.finally_steps],
        }

    def render(self) -> str:
        lines = [f"PIPELINE {self.namespace}/{self.name}: {self.headline}"]
        lines += [f"  {note}" for note in self.notes]
        lines.append(f"  {'STEP':<30} {'PLAN':<10} WHY")
        for title, steps in (("", self.steps), ("finally:", self.finally_steps)):
            if steps and title:
                lines.append(f"  {title}")
            for step in steps:
                label = "  " * step.depth + step.name
                why = step.detail
                if step.until is not None:
                    why = f"until {_stamp(step.until)}" + (f": {why}" if why else "")
                lines.append(f"  {label:<30} {step.verdict:<10} {why}".rstrip())
        return "\n".join(lines)


def plan_run(
    manifest: Mapping[str, Any],
    *,
    status: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> RunPlan | list[SpecError]:
    """The plan for ``manifest`` given ``status`` (default: the manifest's own ``status``),
    at ``now``; or what is wrong with the spec, as ``kubesteps validate`` says it."""
    prepared = prepare(dict(manifest))
    if isinstance(prepared, list):
        return prepared
    pipeline, built = prepared.pipeline, prepared.plan
    now = now or datetime.now(UTC)
    status = dict(status if status is not None else manifest.get("status") or {})
    meta = manifest.get("metadata") or {}
    stored = status.get("run") if isinstance(status.get("run"), Mapping) else None
    records = {
        r["name"]: r for r in status.get("steps") or [] if isinstance(r, Mapping) and "name" in r
    }
    fresh = stored is None or stored.get("specHash") != built.spec_hash
    if stored is None or fresh:
        # A new run: only what steps with rerunOnSpecChange: false succeeded at is kept.
        records = {
            name: r
            for name, r in records.items()
            if name in built.keep_on_spec_change and r.get("phase") == "Succeeded"
        }
    else:
        number = stored.get("number")
        records = {name: r for name, r in records.items() if r.get("run") in (None, number)}
    headline, notes = _headline(pipeline, stored, fresh)
    walker = _Walker(
        manifest={**manifest, "status": status},
        records=records,
        last_runs=dict(status.get("lastRuns") or {}),
        now=now,
    )
    steps = walker.walk(pipeline.spec.steps, 0, None)
    finals = tuple(
        _recorded(step.name, records.get(step.name), 0)
        or StepPlan(
            step.name, LATER, "a finally step: runs once the steps end, whatever the outcome"
        )
        for step in pipeline.spec.finally_
    )
    return RunPlan(
        str(meta.get("namespace") or "default"),
        str(meta.get("name") or ""),
        headline,
        tuple(steps),
        finals,
        tuple(notes),
    )


def _headline(
    pipeline: m.Pipeline, stored: Mapping[str, Any] | None, fresh: bool
) -> tuple[str, list[str]]:
    spec = pipeline.spec
    notes: list[str] = []
    if spec.mutex:
        notes.append(
            f"takes mutex {', '.join(spec.mutex)} before its first step "
            "(it waits while another run holds one)"
        )
    if spec.suspend:
        notes.append("spec.suspend is true: no step starts until it is cleared")
    if stored is None:
        if spec.schedule is not None:
            return "no run yet: the first starts at the next tick of spec.schedule", notes
        return "no run yet: run 1 would start", notes
    number, phase = stored.get("number"), stored.get("phase")
    if fresh:
        return f"the work changed since run {number}: run {int(number or 0) + 1} would start", notes
    if phase in (FAILED, CANCELLED):
        notes.append(
            "nothing runs until a retry (kubesteps.dev/retry), a rerun or a change "
            "of the work; the verdicts say what a retry would do"
        )
    elif phase == SUCCEEDED:
        notes.append("a resync pass re-checks it: succeeded steps are skipped by their state")
    return f"run {number} ({phase})", notes


def _recorded(name: str, record: Mapping[str, Any] | None, depth: int) -> StepPlan | None:
    """The verdict a step's record decides on its own (None: its predicates decide)."""
    if record is None:
        return None
    phase, message = record.get("phase"), str(record.get("message") or "")
    until = _time(record.get("nextRunAt"))
    if phase == "Succeeded":
        kept = record.get("fromRun")
        return StepPlan(
            name, DONE, f"kept from run {kept}" if kept else "succeeded in this run", depth=depth
        )
    if phase == "Failed":
        return StepPlan(name, FAILED_, message, depth=depth)
    if phase in ("Waiting", "Running"):
        return StepPlan(name, WAIT, message, until, depth)
    if phase == "Retrying":
        return StepPlan(name, RETRY, message, until, depth)
    return None


@dataclass
class _Walker:
    manifest: Mapping[str, Any]
    records: Mapping[str, Mapping[str, Any]]
    last_runs: Mapping[str, Any]
    now: datetime

    def __post_init__(self) -> None:
        steps = {
            name: {
                "phase": str(r.get("phase") or "Pending"),
                "outputs": dict(r.get("outputs") or {}),
                "attempts": int(r.get("attempts") or 0),
                "message": str(r.get("message") or ""),
            }
            for name, r in self.records.items()
        }
        self.variables = {
            "self": to_cel(dict(self.manifest)),
            "steps": to_cel(steps),
            "params": to_cel(params_of(self.manifest)),
        }

    def walk(
        self,
        steps: Sequence[m.StepBase],
        depth: int,
        item: Mapping[str, Any] | None,
        names: Sequence[str] | None = None,
    ) -> list[StepPlan]:
        planned: list[StepPlan] = []
        for index, step in enumerate(steps):
            name = names[index] if names is not None else getattr(step, "name", "")
            planned.extend(self.step(step, name, depth, item))
        return planned

    def step(
        self, step: m.StepBase, name: str, depth: int, item: Mapping[str, Any] | None
    ) -> list[StepPlan]:
        verdict = (
            _recorded(name, self.records.get(name), depth)
            or self._when(step, name, depth, item)
            or self._throttle(step, name, depth)
            or StepPlan(name, RUN, _what(step), depth=depth)
        )
        if verdict.verdict not in (RUN, WAIT, RETRY):
            return [verdict]
        return [verdict, *self._children(step, name, depth + 1, item)]

    def _when(
        self, step: m.StepBase, name: str, depth: int, item: Mapping[str, Any] | None
    ) -> StepPlan | None:
        found = self._first_false(step, item)
        if found is None:
            return None
        index, expression, error = found
        if error is not None:
            return StepPlan(
                name,
                UNDECIDED,
                f"when[{index}] `{expression}` is decided when "
                f"the step is reached (now: {error.message})",
                depth=depth,
            )
        then = "the run aborts" if step.abort_on_false else "skipped"
        return StepPlan(name, SKIP, f"when[{index}] `{expression}` is false: {then}", depth=depth)

    def _first_false(
        self, step: m.StepBase, item: Mapping[str, Any] | None
    ) -> tuple[int, str, CelError | None] | None:
        """The first ``when`` that does not hold, or cannot be told yet (None: all hold)."""
        for index, expression in enumerate(step.when):
            try:
                if not evaluate_predicate(expression, self._vars(item)):
                    return index, expression, None
            except CelError as error:
                return index, expression, error
        return None

    def _throttle(self, step: m.StepBase, name: str, depth: int) -> StepPlan | None:
        throttle = step.throttle
        if throttle is None:
            return None
        key = (
            throttle.partition_key
            if throttle.partition_key and not has_template(throttle.partition_key)
            else name
        )
        last = _time(self.last_runs.get(key))
        if last is None or last + throttle.interval <= self.now:
            return None
        return StepPlan(
            name,
            THROTTLED,
            f"ran at {_stamp(last)}; at most once per {_duration(throttle.interval)}",
            last + throttle.interval,
            depth,
        )

    def _children(
        self, step: m.StepBase, name: str, depth: int, item: Mapping[str, Any] | None
    ) -> list[StepPlan]:
        suffix = name[len(getattr(step, "name", name)) :] if isinstance(step, m.Step) else ""
        if step.parallel is not None or step.group is not None:
            children = step.children
            return self.walk(
                children,
                depth,
                item,
                [f"{c.name}{suffix}" for c in children if isinstance(c, m.Step)],
            )
        if step.switch is not None:
            return self._switch(step.switch, depth, item, suffix)
        if step.for_each is not None:
            return self._for_each(step.for_each, name, depth, item)
        return []

    def _switch(
        self, switch: m.SwitchSpec, depth: int, item: Mapping[str, Any] | None, suffix: str
    ) -> list[StepPlan]:
        planned: list[StepPlan] = []
        taken = ""
        for branch in switch.steps:
            name = branch.name + suffix
            if taken:
                planned.append(
                    StepPlan(name, SKIP, f"not taken: branch {taken!r} is taken", depth=depth)
                )
                continue
            found = self._first_false(branch, item)
            if found is None:
                taken = name
                planned.extend(self.step(branch.model_copy(update={"when": []}), name, depth, item))
            elif found[2] is not None:  # which branch is taken is not known yet
                return [
                    *planned,
                    self._when(branch, name, depth, item) or StepPlan(name, UNDECIDED, depth=depth),
                ]
            else:
                planned.append(
                    StepPlan(
                        name,
                        SKIP,
                        f"not taken: its when[{found[0]}] `{found[1]}` is false",
                        depth=depth,
                    )
                )
        return planned

    def _for_each(
        self, spec: m.ForEachSpec, name: str, depth: int, item: Mapping[str, Any] | None
    ) -> list[StepPlan]:
        try:
            items = evaluate_list(spec.items, self._vars(item))
        except CelError as error:
            return [
                StepPlan(
                    f"{name}-*",
                    UNDECIDED,
                    f"forEach items `{spec.items}` are known "
                    f"when the step is reached (now: {error.message})",
                    depth=depth,
                )
            ]
        planned: list[StepPlan] = []
        for index, value in enumerate(items):
            sub = self.step(
                spec.step,
                f"{name}-{index}",
                depth,
                {**(item or {}), spec.as_: value, FOREACH_INDEX: index},
            )
            first = sub[0]
            sub[0] = StepPlan(
                first.name,
                first.verdict,
                f"item {item_label(value)}" + (f"; {first.detail}" if first.detail else ""),
                first.until,
                first.depth,
            )
            planned.extend(sub)
        return planned

    def _vars(self, item: Mapping[str, Any] | None) -> dict[str, Any]:
        return {**self.variables, **(item or {})}


def _what(step: m.StepBase) -> str:
    if step.action is not None:
        return f"action {step.action}"
    return step.kind


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _duration(value: timedelta) -> str:
    return format_duration(value)
