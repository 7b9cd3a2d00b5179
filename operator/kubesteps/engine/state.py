"""Step state: what the keeper remembers about each step between runs."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple


class StepStatus(enum.StrEnum):
    """The phase of a step, as recorded by the keeper."""

    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    THROTTLED = "throttled"


@dataclass(frozen=True, slots=True)
class State:
    """How a step's state is kept: under which name, and the reason/message on success.

    An empty ``name`` means the step's own name (as in the Go library).
    """

    name: str = ""
    reason: str = ""
    message: str = ""


class StepState(NamedTuple):
    """One step's recorded state. Immutable: every transition is a new value.

    A named tuple rather than a frozen dataclass: every transition makes one, and a tuple
    is built in one step where a frozen dataclass sets each of its fields in turn (that
    was a third of a quick step's cost in the engine).
    """

    name: str
    status: StepStatus = StepStatus.PENDING
    reason: str = ""
    message: str = ""
    attempts: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    next_run_at: datetime | None = None
    outputs: Mapping[str, Any] | None = None
    disabled: bool = False
    inserted: tuple[str, ...] = ()
    # When the current attempt began; an attempt that waits over several passes keeps it,
    # so the step's timeout bounds the whole attempt (``started_at`` is the first attempt's).
    attempt_started_at: datetime | None = None

    def evolve(self, **changes: Any) -> StepState:
        """A copy with ``changes`` applied (replaced at import by an unrolled version)."""
        raise NotImplementedError  # pragma: no cover

    @property
    def done(self) -> bool:
        return self.status in (StepStatus.SUCCEEDED, StepStatus.SKIPPED, StepStatus.THROTTLED)


_FIELDS: tuple[str, ...] = StepState._fields


def _generate() -> tuple[Callable[..., StepState], Callable[..., StepState]]:
    """An unrolled positional constructor and ``evolve`` for ``StepState`` (both on the
    engine's hot path: a loop over the fields costs about as much as a quick step)."""
    names = ", ".join(_FIELDS)
    make = f"def make_state({names}):\n    return _new(_cls, ({names}))\n"
    evolve = (
        f"def evolve(self, *, {', '.join(f'{name}=_keep' for name in _FIELDS)}):\n"
        "    return _new(_cls, ("
        + ", ".join(f"self[{i}] if {name} is _keep else {name}" for i, name in enumerate(_FIELDS))
        + "))\n"
    )
    namespace: dict[str, Any] = {"_new": tuple.__new__, "_cls": StepState, "_keep": _KEEP}
    exec(make + evolve, namespace)
    return namespace["make_state"], namespace["evolve"]


_KEEP: Any = object()
make_state, _evolve = _generate()
make_state.__doc__ = (
    "StepState from every field, positionally, in declaration order (the engine's fast path)."
)
_evolve.__doc__ = "A copy with the given fields changed (unknown names raise TypeError)."
_evolve.__qualname__ = "StepState.evolve"
StepState.evolve = _evolve  # type: ignore[method-assign]
