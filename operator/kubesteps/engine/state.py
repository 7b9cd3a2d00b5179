"""Step state: what the keeper remembers about each step between runs."""

from __future__ import annotations

import enum
from collections.abc import Mapping
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
        # Every transition evolves a state, so this is on the engine's hot path:
        # dataclasses.replace re-resolves the fields on each call and costs about as much as
        # the rest of a no-op step. The class has no __post_init__ to skip.
        unknown = changes.keys() - _FIELDS
        if unknown:
            raise TypeError(f"StepState has no field(s) {', '.join(sorted(unknown))}")
        new = object.__new__(StepState)
        for name in _FIELDS:
            object.__setattr__(new, name, changes[name] if name in changes else getattr(self, name))
        return new

    @property
    def done(self) -> bool:
        return self.status in (StepStatus.SUCCEEDED, StepStatus.SKIPPED, StepStatus.THROTTLED)


_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(StepState))
