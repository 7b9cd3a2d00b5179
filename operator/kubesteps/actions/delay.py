"""``delay``: succeed once a duration has passed, without holding a worker meanwhile."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel

from kubesteps.actions.base import ActionContext, Outputs
from kubesteps.actions.params import DelayParams
from kubesteps.engine import StepStatus, WaitError
from kubesteps.pipeline.durations import format_duration


class DelayAction:
    """The delay counts from the start of the step's attempt, which a wait does not end: a
    later pass succeeds once the duration has passed since then, or waits for what is left
    (a pass can come early: another step's change, an operator restart, the step's own
    timeout, which then fails the attempt)."""

    name: str = "delay"
    params: type[BaseModel] = DelayParams

    async def run(self, ctx: ActionContext, params: DelayParams) -> Outputs:
        previous = ctx.step.previous
        waiting = previous is not None and previous.status is StepStatus.WAITING
        if not waiting:
            raise WaitError(f"delaying for {format_duration(params.duration)}",
                            params.duration)
        left = ctx.step.attempt_started_at + params.duration - ctx.clock()
        if left <= timedelta(0):
            return None
        raise WaitError(f"delaying for {format_duration(params.duration)}: "
                        f"{_rounded(left)} left", left)


def _rounded(value: timedelta) -> str:
    """Whole seconds (at least 1s): enough precision for a status message."""
    return format_duration(timedelta(seconds=max(1, round(value.total_seconds()))))
