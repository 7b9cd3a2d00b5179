"""How one step ended, as a value: what a sequence, a graph or a group reads from its steps
(the run's ``Outcome`` is made of the top-level one)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Final


class ResultKind(enum.Enum):
    """How a step ended, for the sequence that ran it."""

    OK = "ok"  # succeeded, skipped, throttled, or failed with continue_on_error
    FINISH = "finish"  # succeeded with finish_on_success
    WAIT = "wait"
    RETRY = "retry"
    FAILED = "failed"
    ABORTED = "aborted"


@dataclass(slots=True, kw_only=True)
class StepResult:
    """One step's ending: its kind, the step it names (a child, for a group), why, when to
    look again, the error behind it, and when the earliest throttled step in it is due.

    Not frozen: a sequence sets ``due`` on the result it passes up. The shared ``DONE`` and
    ``FINISHED`` are never changed.
    """

    kind: ResultKind
    step: str = ""
    message: str = ""
    delay: float | None = None
    error: BaseException | None = None
    due: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupResult:
    """What a group-like step's body returns: when its earliest throttled step is due, and
    the results of its steps that did not end well (waiting, retrying, failed, aborted).

    A sequence has at most one such step (it stops there); a parallel group may have many.
    """

    due: datetime | None = None
    problems: tuple[StepResult, ...] = ()


DONE: Final = StepResult(kind=ResultKind.OK)
FINISHED: Final = StepResult(kind=ResultKind.FINISH)
NOT_DUE: Final = GroupResult()  # what most groups return: shared, it never changes


def earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def group_result(result: StepResult) -> GroupResult:
    """A group's view of the result of the sequence inside it."""
    if result.kind is ResultKind.OK or result.kind is ResultKind.FINISH:
        return GroupResult(due=result.due) if result.due is not None else NOT_DUE
    return GroupResult(problems=(result,))
