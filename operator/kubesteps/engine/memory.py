"""MemoryStateKeeper: states in a dict, for tests, examples and short-lived runs."""

from __future__ import annotations

from datetime import datetime

from kubesteps.engine.keeper import NoWait
from kubesteps.engine.state import StepState


class MemoryStateKeeper:
    """Keeps step states and throttling times in process memory.

    ``transitions`` lists every state written, in order (bounded by ``history``), which
    makes it handy for tests and for printing what a run did.
    """

    def __init__(self, *, history: int = 10_000) -> None:
        self.states: dict[str, StepState] = {}
        self.last_runs: dict[str, datetime] = {}
        self.transitions: list[StepState] = []
        self._history = history

    async def get_step_state(self, name: str) -> StepState | None:
        return self.states.get(name)

    async def set_step_state(self, state: StepState) -> None:
        self._set_now(state)

    def nowait(self) -> NoWait | None:
        """The synchronous fast path (see ``kubesteps.engine.keeper.nowait_access``)."""
        cls = type(self)
        if (
            cls.get_step_state is not MemoryStateKeeper.get_step_state
            or cls.set_step_state is not MemoryStateKeeper.set_step_state
        ):
            return None
        return self.states.get, self._set_now

    def _set_now(self, state: StepState) -> None:
        self.states[state.name] = state
        if self._history:
            if len(self.transitions) >= self._history:
                del self.transitions[: self._history // 2]
            self.transitions.append(state)

    async def get_last_run(self, key: str) -> datetime | None:
        return self.last_runs.get(key)

    async def set_last_run(self, key: str, when: datetime) -> None:
        self.last_runs[key] = when

    async def flush(self) -> None:
        return None
