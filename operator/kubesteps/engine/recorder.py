"""Recording step states: the ``StepState`` each transition makes, and the keeper calls that
read and write them.

Every keeper failure becomes a ``KeeperError`` naming the step (the run stops rather than
lose a transition), and every state written is told to the transition listener.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from kubesteps.engine.context import StepContext
from kubesteps.engine.errors import KeeperError, PermanentError
from kubesteps.engine.keeper import NoWait, StateKeeper
from kubesteps.engine.signals import attempt_reason
from kubesteps.engine.state import StepState, StepStatus, make_state
from kubesteps.engine.steps import Step

log = logging.getLogger("kubesteps.engine")

TransitionListener = Callable[[StepState | None, StepState], None]

# The reason recorded for the cases a switch did not take.
NOT_TAKEN: Final = "NotTaken"


class StateRecorder:
    """One run's access to the keeper: reads and writes step states and last-run times.

    ``nowait``: the keeper's synchronous access for this run, if it has one (see
    ``keeper.nowait_access``); the engine's quick path calls it directly.
    """

    __slots__ = ("keeper", "nowait", "on_transition")

    def __init__(
        self,
        keeper: StateKeeper,
        on_transition: TransitionListener | None,
        nowait: NoWait | None,
    ) -> None:
        self.keeper = keeper
        self.on_transition = on_transition
        self.nowait = nowait

    async def get(self, step_name: str, key: str) -> StepState | None:
        try:
            return await self.keeper.get_step_state(key)
        except Exception as err:
            raise KeeperError(step_name, "read the state", err) from err

    def get_now(self, nowait: NoWait, step_name: str, key: str) -> StepState | None:
        """``get`` through the keeper's synchronous access."""
        try:
            return nowait[0](key)
        except Exception as err:
            raise KeeperError(step_name, "read the state", err) from err

    async def set(self, step_name: str, old: StepState | None, new: StepState) -> None:
        try:
            await self.keeper.set_step_state(new)
        except Exception as err:
            raise KeeperError(step_name, f"record state {new.status.value!r}", err) from err
        if self.on_transition is not None:
            self.tell(old, new)

    def set_now(
        self, nowait: NoWait, step_name: str, old: StepState | None, new: StepState
    ) -> None:
        """``set`` through the keeper's synchronous access."""
        try:
            nowait[1](new)
        except Exception as err:
            raise KeeperError(step_name, f"record state {new.status.value!r}", err) from err
        if self.on_transition is not None:
            self.tell(old, new)

    def tell(self, old: StepState | None, new: StepState) -> None:
        assert self.on_transition is not None
        try:
            self.on_transition(old, new)
        except Exception:
            log.exception("transition listener raised; ignored")

    async def skip(
        self,
        step_name: str,
        prev: StepState | None,
        key: str | None,
        reason: str,
        message: str,
        status: StepStatus = StepStatus.SKIPPED,
        next_run_at: datetime | None = None,
    ) -> None:
        """Record that the step did not run (skipped, throttled): unless it failed before,
        since a failure stays on record until the step runs again."""
        if key is None or (prev is not None and prev.status is StepStatus.FAILED):
            return
        base = prev if prev is not None else StepState(name=key)
        new = base.evolve(status=status, reason=reason, message=message, next_run_at=next_run_at)
        if new != prev:
            await self.set(step_name, prev, new)

    async def not_taken(self, step_name: str, key: str, taken: str) -> None:
        """Record a switch case that another case was taken instead of."""
        prev = await self.get(step_name, key)
        base = prev if prev is not None else StepState(name=key)
        new = base.evolve(
            status=StepStatus.SKIPPED,
            reason=NOT_TAKEN,
            message=f"another case was taken: {taken!r}",
            next_run_at=None,
        )
        if new != prev:
            await self.set(step_name, prev, new)

    async def restore(
        self, step_name: str, running: StepState, prev: StepState | None, key: str
    ) -> None:
        """Put back what was recorded before the step started (cancel, expected error)."""
        previous = prev if prev is not None else StepState(name=key)
        await asyncio.shield(self.set(step_name, running, previous))

    async def all_succeeded(self, keys: Iterable[str]) -> bool:
        for key in keys:
            state = await self.get(key, key)
            if state is None or state.status is not StepStatus.SUCCEEDED:
                return False
        return True

    async def last_run(self, step_name: str, key: str) -> datetime | None:
        """When the throttled step (partition ``key``) last ran, as the keeper knows it."""
        try:
            return await self.keeper.get_last_run(key)
        except Exception as err:
            raise KeeperError(step_name, "read the last run", err) from err

    async def record_last_run(self, step_name: str, key: str, when: datetime) -> None:
        try:
            await self.keeper.set_last_run(key, when)
        except Exception as err:
            raise KeeperError(step_name, "record the last run", err) from err


# -- the states of a step's transitions ---------------------------------------------------


def running_state(
    step: Step, key: str | None, ctx: StepContext, prev: StepState | None
) -> StepState:
    return make_state(
        key or step.name,
        StepStatus.RUNNING,
        "Running",
        "",
        ctx.attempt,
        ctx.started_at,
        None,
        None,
        prev.outputs if prev is not None else None,
        False,
        (),
        ctx.attempt_started_at,
    )


def succeeded_state(
    key: str,
    step: Step,
    ctx: StepContext,
    finished: datetime,
    next_run_at: datetime | None,
    outputs: Mapping[str, Any] | None,
    inserted: Sequence[Step],
) -> StepState:
    config = step.state
    return make_state(
        key,
        StepStatus.SUCCEEDED,
        (config.reason if config else "") or "Succeeded",
        (config.message if config else "") or "completed",
        ctx.attempt,
        ctx.started_at,
        finished,
        next_run_at,
        outputs,
        False,
        # State keys, not names: on a later pass the inserted steps are not registered
        # yet, so only their keys find them; stateless ones cannot be checked and so do
        # not hold the inserting step back.
        tuple(s.state_key for s in inserted if s.state_key is not None) if inserted else (),
        ctx.attempt_started_at,
    )


def waiting_state(running: StepState, message: str, until: datetime | None) -> StepState:
    """A wait is not an attempt: the count stays what it was before this one."""
    return running.evolve(
        status=StepStatus.WAITING,
        reason="Waiting",
        message=message,
        attempts=running.attempts - 1,
        next_run_at=until,
    )


def retrying_state(
    running: StepState, reason: str, message: str, until: datetime, *, counted: bool
) -> StepState:
    """``counted``: the attempt failed and counts; else a step inside it is retrying."""
    return running.evolve(
        status=StepStatus.RETRYING,
        reason=reason,
        message=message,
        next_run_at=until,
        attempts=running.attempts if counted else running.attempts - 1,
    )


def failed_state(base: StepState, cause: BaseException, message: str, now: datetime) -> StepState:
    """Failed for good; a ``PermanentError`` may name the reason and the outputs."""
    reason, outputs = attempt_reason(cause, "Failed"), base.outputs
    if isinstance(cause, PermanentError):
        reason = cause.reason or reason
        outputs = cause.outputs if cause.outputs is not None else outputs
    return base.evolve(
        status=StepStatus.FAILED,
        reason=reason,
        message=message,
        finished_at=now,
        next_run_at=None,
        outputs=outputs,
    )
