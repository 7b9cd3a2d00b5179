"""Step state: what the keeper remembers about each step between runs."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any


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


@dataclass(frozen=True, slots=True)
class StepState:
    """One step's recorded state. Immutable: every transition is a new value."""

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
    inserted: tuple[str, ...] = field(default=())
    # When the current attempt began; an attempt that waits over several passes keeps it,
    # so the step's timeout bounds the whole attempt (``started_at`` is the first attempt's).
    attempt_started_at: datetime | None = None

    def evolve(self, **changes: Any) -> StepState:
        """A copy with ``changes`` applied (replaced at import by an unrolled version)."""
        raise NotImplementedError  # pragma: no cover

    @property
    def done(self) -> bool:
        return self.status in (StepStatus.SUCCEEDED, StepStatus.SKIPPED, StepStatus.THROTTLED)


_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(StepState))


def _generate() -> tuple[Callable[..., StepState], Callable[..., StepState]]:
    """An unrolled positional constructor and ``evolve`` for ``StepState``.

    Every transition makes a state, so both are on the engine's hot path. The dataclass's
    own ``__init__`` goes through ``object.__setattr__`` once per field (it is frozen), and a
    loop over the fields in ``evolve`` costs about as much as the rest of a no-op step; the
    slots' own descriptors, called from generated straight-line code, are about 3x cheaper.
    The class has no ``__post_init__`` to skip.
    """
    setters = {f"_set_{name}": getattr(StepState, name).__set__ for name in _FIELDS}
    body = "".join(f"    _set_{name}(state, {name})\n" for name in _FIELDS)
    make = (
        f"def make_state({', '.join(_FIELDS)}):\n"
        "    state = _new(_cls)\n" + body + "    return state\n"
    )
    evolve = (
        f"def evolve(self, *, {', '.join(f'{name}=_keep' for name in _FIELDS)}):\n"
        "    return make_state("
        + ", ".join(f"self.{name} if {name} is _keep else {name}" for name in _FIELDS)
        + ")\n"
    )
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": StepState, "_keep": _KEEP,
                                 **setters}
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
