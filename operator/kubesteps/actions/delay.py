"""``delay``: succeed once a duration has passed, or a time has come, without holding a
worker meanwhile."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel

from kubesteps.actions.base import ActionContext, Outputs
from kubesteps.engine import StepStatus, WaitError
from kubesteps.pipeline.durations import format_duration
from kubesteps.pipeline.params import DelayParams


class DelayAction:
    """A duration counts from the start of the step's attempt, which a wait does not end: a
    later pass succeeds once the duration has passed since then, or waits for what is left
    (a pass can come early: another step's change, an operator restart, the step's own
    timeout, which then fails the attempt). ``until`` is a point in time (rendered afresh
    every pass, so a template may compute it): a pass at or after it succeeds, one before
    it waits for what is left."""

    name: str = "delay"
    params: type[BaseModel] = DelayParams

    async def run(self, ctx: ActionContext, params: DelayParams) -> Outputs:
        if params.until is not None:
            left = params.until - ctx.clock()
            if left <= timedelta(0):
                return None
            raise WaitError(f"waiting until {_moment(params.until)}: {_rounded(left)} left", left)
        assert params.duration is not None  # the model asks for one of the two
        previous = ctx.step.previous
        waiting = previous is not None and previous.status is StepStatus.WAITING
        if not waiting:
            raise WaitError(f"delaying for {format_duration(params.duration)}", params.duration)
        left = ctx.step.attempt_started_at + params.duration - ctx.clock()
        if left <= timedelta(0):
            return None
        raise WaitError(
            f"delaying for {format_duration(params.duration)}: {_rounded(left)} left", left
        )


def _rounded(value: timedelta) -> str:
    """Whole seconds (at least 1s): enough precision for a status message."""
    return format_duration(timedelta(seconds=max(1, round(value.total_seconds()))))


def _moment(value: datetime) -> str:
    """A time as RFC 3339 in UTC, to the second: ``2026-12-03T15:00:00Z``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
