"""The StateKeeper protocol: where the engine reads and records step states."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from kubesteps.engine.state import StepState


@runtime_checkable
class StateKeeper(Protocol):
    """Remembers step states and throttling times between runs.

    ``get_step_state`` returns ``None`` for a step it has never seen. Every method may raise;
    the engine then stops the run with a ``KeeperError`` rather than lose a transition.
    ``flush`` is called once at the end of every run (and may be a no-op for keepers that
    write through): batching keepers write everything the run recorded there.
    """

    async def get_step_state(self, name: str) -> StepState | None: ...

    async def set_step_state(self, state: StepState) -> None: ...

    async def get_last_run(self, key: str) -> datetime | None: ...

    async def set_last_run(self, key: str, when: datetime) -> None: ...

    async def flush(self) -> None: ...
