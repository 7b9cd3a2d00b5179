"""Step state: what the keeper remembers about each step between runs."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
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

    def evolve(self, **changes: Any) -> StepState:
        return replace(self, **changes)

    @property
    def done(self) -> bool:
        return self.status in (StepStatus.SUCCEEDED, StepStatus.SKIPPED, StepStatus.THROTTLED)
