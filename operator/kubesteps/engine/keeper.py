"""The StateKeeper protocol: where the engine reads and records step states."""

from __future__ import annotations

from collections.abc import Callable
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


# A keeper's synchronous access to its states: (get, set), as ``get_step_state`` and
# ``set_step_state`` but without a coroutine each.
NoWait = tuple[Callable[[str], StepState | None], Callable[[StepState], None]]


def nowait_access(keeper: object) -> NoWait | None:
    """The keeper's synchronous fast path, if it offers one (``nowait()``).

    A keeper whose states live in memory may define ``nowait()`` returning its ``(get,
    set)`` pair, which must do exactly what ``get_step_state``/``set_step_state`` do; the
    engine then calls those instead, saving two coroutines per step. It returns ``None``
    when the async methods were overridden (a subclass that adds behaviour to them), so
    the override is always honoured.
    """
    nowait = getattr(keeper, "nowait", None)
    if nowait is None:
        return None
    access: NoWait | None = nowait()
    return access
