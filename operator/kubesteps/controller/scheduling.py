"""A Pipeline's schedule as one pass sees it: which tick is due, and ``status.schedule``.

A tick acted on (run, skipped because a run was at work, or missed past
``startingDeadline``) is recorded as ``lastScheduleTime`` in the same status patch that
starts its run, so an operator that dies right after a tick fired does not fire it again.
Runs that fail in a row are counted; past ``suspendAfterFailures`` scheduling suspends
itself until ``spec.schedule`` changes or a run succeeds.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kubesteps.keepers.summary import Summary
from kubesteps.kube.conditions import stamp
from kubesteps.pipeline import runs
from kubesteps.pipeline.durations import format_duration
from kubesteps.pipeline.model import ScheduleSpec
from kubesteps.pipeline.schedule import Schedule, due


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _digest(spec: ScheduleSpec) -> str:
    text = json.dumps(spec.model_dump(mode="json", by_alias=True), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Timer:
    """The schedule of one pass: the tick due now (if any) and the status it leaves."""

    spec: ScheduleSpec
    state: dict[str, Any]
    tick: datetime | None = None
    missed: datetime | None = None
    next: datetime | None = None
    _events: list[tuple[str, str, bool]] = field(default_factory=list)

    @property
    def replace(self) -> bool:
        return self.spec.concurrency_policy == "Replace"

    @classmethod
    def of(cls, spec: ScheduleSpec | None, stored: Any, now: datetime) -> Timer | None:
        if spec is None:
            return None
        state = dict(stored) if isinstance(stored, dict) else {}
        since = _time(state.get("since")) or now
        state["since"] = stamp(since)
        digest = _digest(spec)
        if state.get("suspended") and state.get("suspendedFor") != digest:
            # The schedule was changed: it resumes, and failures count afresh.
            state.pop("suspended", None)
            state.pop("suspendedFor", None)
            state["consecutiveFailures"] = 0
        timer = cls(spec, state)
        if spec.suspend or state.get("suspended"):
            state.pop("nextScheduleTime", None)
            return timer
        found = due(
            Schedule(spec.cron, spec.time_zone),
            now=now,
            last=_time(state.get("lastScheduleTime")),
            since=since,
            starting_deadline=spec.starting_deadline,
        )
        timer.tick, timer.missed, timer.next = found.tick, found.missed, found.next
        if found.tick is not None or found.missed is not None:
            state["lastScheduleTime"] = stamp(found.tick or found.missed)  # type: ignore[arg-type]
        state["nextScheduleTime"] = stamp(found.next)
        if found.missed is not None and spec.starting_deadline is not None:
            timer._events.append(
                (
                    "ScheduleMissed",
                    f"the tick at {stamp(found.missed)} was missed by more than startingDeadline "
                    f"{format_duration(spec.starting_deadline)}: no run for it",
                    True,
                )
            )
        return timer

    def settle(
        self,
        summary: Summary,
        stored: runs.Run | None,
        decision: runs.RunDecision,
        run: runs.Run,
    ) -> Summary:
        """Count how the run ended (when it ended in this pass) and say in ``Ready`` that
        scheduling suspended itself, when it did."""
        if decision.skipped_tick is not None:
            self._events.append(
                (
                    "ScheduleSkipped",
                    f"the tick at {stamp(decision.skipped_tick)} was skipped: run {run.id} is "
                    "still at work (concurrencyPolicy Forbid)",
                    False,
                )
            )
        before = stored.phase if stored is not None and stored.number == run.number else None
        if run.finished and (run.phase != before or decision.reset_failed):
            failures = int(self.state.get("consecutiveFailures") or 0)
            if run.phase == runs.FAILED:
                failures += 1
            elif run.phase == runs.SUCCEEDED:
                failures = 0
                if run.finished_at is not None:
                    self.state["lastSuccessfulTime"] = stamp(run.finished_at)
                self.state.pop("suspended", None)
                self.state.pop("suspendedFor", None)
            self.state["consecutiveFailures"] = failures
            limit = self.spec.suspend_after_failures
            if limit is not None and failures >= limit and not self.state.get("suspended"):
                self.state["suspended"] = True
                self.state["suspendedFor"] = _digest(self.spec)
                self.state.pop("nextScheduleTime", None)
                self.next = None
                self._events.append(
                    (
                        "ScheduleSuspended",
                        f"{run.id}: scheduling suspended itself after {failures} failed runs in a "
                        "row (suspendAfterFailures); change spec.schedule, or rerun and succeed, "
                        "to resume it",
                        True,
                    )
                )
        if self.state.get("suspended") and (run.finished or run.pending):
            return Summary(
                ready="False",
                reason="ScheduleSuspended",
                message=f"scheduling is suspended after {self.state.get('consecutiveFailures')}"
                " failed runs in a row; change spec.schedule, or rerun and succeed, to resume it",
                reconciling=False,
                stalled=True,
            )
        if run.pending and self.next is not None:
            return Summary(
                ready="False",
                reason="Scheduled",
                message=f"no run yet: the first starts at {stamp(self.next)}",
                reconciling=False,
                stalled=False,
            )
        return summary

    def status(self) -> dict[str, Any]:
        """``status.schedule`` as this pass leaves it."""
        self.state.setdefault("consecutiveFailures", 0)
        return dict(self.state)

    def events(self, run: runs.Run) -> list[tuple[str, str, bool]]:
        """(reason, message, warning) of what the schedule did in this pass."""
        return list(self._events)
