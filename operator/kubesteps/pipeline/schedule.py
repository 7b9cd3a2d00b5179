"""Cron schedules: when a Pipeline's next scheduled run is due, and whether one is due now.

Expressions are parsed and walked by ``cronsim`` (the evaluator healthchecks.io maintains,
with cron's own rules for daylight-saving changes: a time that does not exist that day runs
at the first time after the jump, a time that exists twice runs once). The macros
``@yearly``, ``@annually``, ``@monthly``, ``@weekly``, ``@daily``, ``@midnight`` and
``@hourly`` stand for their usual expressions. Times are computed in the schedule's time
zone and kept in UTC.

A tick is due when the newest scheduled time at or before now is later than the last one
acted on. Missed ticks (the operator was down) give at most one catch-up run, and none at
all when the newest missed tick is older than ``startingDeadline``, like a CronJob.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import cronsim

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


class ScheduleError(ValueError):
    """A cron expression or a time zone that cannot be used; the message says why."""


def expression(cron: str) -> str:
    """The five-field expression of ``cron`` (a macro becomes its expression)."""
    text = " ".join(cron.split())
    return MACROS.get(text.lower(), text)


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (``UTC``, ``Europe/Berlin``...)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ScheduleError(
            f"{name!r} is not an IANA time zone name (such as UTC, Europe/Berlin or "
            "America/New_York)"
        ) from error


def check(cron: str, time_zone: str = "UTC") -> str | None:
    """What is wrong with a schedule (None: it is fine), for validation messages."""
    try:
        zone(time_zone)
    except ScheduleError as error:
        return f"timeZone: {error}"
    text = expression(cron)
    if text.startswith("@"):
        return (
            f"cron: {cron!r} is not a known macro; use one of "
            f"{', '.join(sorted(MACROS))} or five fields"
        )
    if len(text.split()) != 5:
        return (
            f"cron: {cron!r} has {len(text.split())} fields; write five (minute hour "
            "day-of-month month day-of-week), e.g. '*/15 * * * *', or a macro such as "
            "@hourly"
        )
    try:
        cronsim.CronSim(text, datetime(2000, 1, 1, tzinfo=UTC))
    except cronsim.CronSimError as error:
        return f"cron: {cron!r} is not a valid cron expression: {error}"
    return None


def describe(cron: str) -> str:
    """The schedule in words (``At 03:00 on Monday``), for messages and views."""
    try:
        return str(cronsim.CronSim(expression(cron), datetime(2000, 1, 1, tzinfo=UTC)).explain())
    except (cronsim.CronSimError, ValueError):
        return cron


@dataclass(frozen=True)
class Schedule:
    cron: str
    time_zone: str = "UTC"

    def __post_init__(self) -> None:
        problem = check(self.cron, self.time_zone)
        if problem is not None:
            raise ScheduleError(problem)

    def next_after(self, when: datetime) -> datetime:
        """The first scheduled time strictly after ``when`` (UTC)."""
        local = when.astimezone(zone(self.time_zone))
        tick: datetime = next(cronsim.CronSim(expression(self.cron), local))
        return tick.astimezone(UTC)

    def latest_at(self, when: datetime) -> datetime | None:
        """The newest scheduled time at or before ``when`` (UTC), if any."""
        # Scheduled times fall on whole minutes: start the backward walk just past `when`.
        local = (when + timedelta(seconds=1)).astimezone(zone(self.time_zone))
        try:
            tick: datetime = next(cronsim.CronSim(expression(self.cron), local, reverse=True))
        except StopIteration:
            return None
        return tick.astimezone(UTC)


@dataclass(frozen=True)
class Due:
    """What the schedule asks for now."""

    tick: datetime | None  # a tick to start a run for
    missed: datetime | None  # a tick too late to catch up on (past startingDeadline)
    next: datetime  # the next scheduled time after now


def due(
    schedule: Schedule,
    *,
    now: datetime,
    last: datetime | None,
    since: datetime,
    starting_deadline: timedelta | None = None,
) -> Due:
    """Whether a tick is due at ``now``: the newest scheduled time after ``last`` (the last
    tick acted on; ``since`` when none was, e.g. the Pipeline's creation) and at or before
    ``now``. Older missed ticks fold into it: one catch-up run at most."""
    following = schedule.next_after(now)
    latest = schedule.latest_at(now)
    floor = last or since
    if latest is None or latest <= floor:
        return Due(None, None, following)
    if starting_deadline is not None and now - latest > starting_deadline:
        return Due(None, latest, following)
    return Due(latest, None, following)
