"""Run context: what every step of one run shares, and what a running step can do."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar, overload

from kubesteps.engine.keeper import StateKeeper
from kubesteps.engine.state import StepState, StepStatus

if TYPE_CHECKING:
    from kubesteps.engine.steps import Step

T = TypeVar("T")
_MISSING: Any = object()


@dataclass(slots=True)
class _Entry:
    value: Any
    expires_at: datetime | None
    tags: frozenset[str]


class RunContext:
    """A typed key-value store shared by all steps of one run.

    Values live as long as the run (or their ``ttl``, measured on the engine's clock);
    anything that must outlive the run belongs in a step's outputs, which the keeper keeps.
    """

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._entries: dict[str, _Entry] = {}

    def put(
        self, key: str, value: Any, *, ttl: timedelta | None = None, tags: Iterable[str] = ()
    ) -> None:
        expires = self._clock() + ttl if ttl is not None else None
        self._entries[key] = _Entry(value, expires, frozenset(tags))

    @overload
    def get(self, key: str) -> Any: ...
    @overload
    def get(self, key: str, default: T) -> Any | T: ...
    @overload
    def get(self, key: str, default: T, *, type: type[T]) -> T: ...
    @overload
    def get(self, key: str, *, type: type[T]) -> T | None: ...

    def get(self, key: str, default: Any = None, *, type: type[Any] | None = None) -> Any:
        """The value under ``key``, or ``default`` if it is missing or expired.

        With ``type``, a present value of another type raises ``TypeError`` naming the key,
        rather than surfacing later as an obscure failure in the step that used it.
        """
        entry = self._live(key)
        if entry is None:
            return default
        if type is not None and not isinstance(entry.value, type):
            raise TypeError(
                f"run context key {key!r} holds {entry.value.__class__.__name__}, "
                f"expected {type.__name__}"
            )
        return entry.value

    def __contains__(self, key: str) -> bool:
        return self._live(key) is not None

    def delete(self, key: str) -> bool:
        return self._entries.pop(key, None) is not None

    def tagged(self, tag: str) -> dict[str, Any]:
        """All live values carrying ``tag``."""
        return {
            key: entry.value
            for key in list(self._entries)
            if (entry := self._live(key)) is not None and tag in entry.tags
        }

    def delete_tagged(self, tag: str) -> int:
        keys = [key for key, entry in self._entries.items() if tag in entry.tags]
        for key in keys:
            del self._entries[key]
        return len(keys)

    def _live(self, key: str) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is not None and entry.expires_at is not None and self._clock() >= entry.expires_at:
            del self._entries[key]
            return None
        return entry


class RunControl:
    """The engine-side handle a step uses for run-time changes. Implemented by the engine."""

    keeper: StateKeeper
    clock: Callable[[], datetime]

    def names_with_tag(self, tag: str) -> list[str]:
        raise NotImplementedError

    def state_name_of(self, name: str) -> str:
        raise NotImplementedError


class StepContext:
    """What a running step sees: its own name and previous state, the run's shared values,
    other steps' states and outputs, and the run-time changes it may make."""

    __slots__ = (
        "_control",
        "_inserted",
        "attempt",
        "attempt_started_at",
        "name",
        "previous",
        "run",
        "started_at",
        "step",
    )

    def __init__(
        self,
        *,
        step: Step,
        previous: StepState | None,
        run: RunContext,
        control: RunControl,
        attempt: int,
        started_at: datetime,
        attempt_started_at: datetime | None = None,
    ) -> None:
        self.step = step
        self.name = step.name
        self.previous = previous
        # Decided by the engine: the attempt of this run, and when the current streak of
        # attempts and waits began (a step that waits over several passes keeps it).
        self.attempt = attempt
        self.started_at = started_at
        # When this attempt began: now, or earlier when the attempt waits over passes.
        self.attempt_started_at = attempt_started_at or started_at
        self.run = run
        self._control = control
        self._inserted: list[Step] = []

    @classmethod
    def _fresh(cls, step: Step, run: RunContext, control: RunControl, now: datetime) -> StepContext:
        """The context of a step's first attempt, started ``now`` (the engine's quick path:
        no keyword arguments to sort out)."""
        ctx = object.__new__(cls)
        ctx.step = step
        ctx.name = step.name
        ctx.previous = None
        ctx.attempt = 1
        ctx.started_at = now
        ctx.attempt_started_at = now
        ctx.run = run
        ctx._control = control
        ctx._inserted = []
        return ctx

    @property
    def tags(self) -> frozenset[str]:
        return frozenset(self.step.tags)

    async def state_of(self, name: str) -> StepState | None:
        return await self._control.keeper.get_step_state(self._control.state_name_of(name))

    async def outputs_of(self, name: str) -> Mapping[str, Any]:
        state = await self.state_of(name)
        return dict(state.outputs) if state is not None and state.outputs else {}

    def find_by_tag(self, tag: str) -> list[str]:
        """Names of the steps carrying ``tag`` (generated steps count once generated)."""
        return self._control.names_with_tag(tag)

    async def disable(self, *names: str, tag: str | None = None) -> list[str]:
        """Disable steps by name or tag; recorded in the keeper, so later passes skip them too."""
        return await self._set_disabled(self._targets(names, tag), disabled=True)

    async def enable(self, *names: str, tag: str | None = None) -> list[str]:
        """Undo ``disable``: the steps run again when reached."""
        return await self._set_disabled(self._targets(names, tag), disabled=False)

    def insert_after(self, *steps: Step) -> None:
        """Run ``steps`` right after this step, in the same group.

        The step records which steps it inserted; while any of them has not succeeded, a
        later pass runs this step again so that it can insert them again (so it should be
        idempotent, as every reconcile step should).
        """
        self._inserted.extend(steps)

    def _targets(self, names: Sequence[str], tag: str | None) -> list[str]:
        targets = list(names)
        if tag is not None:
            targets.extend(n for n in self.find_by_tag(tag) if n not in targets)
        return [n for n in targets if n != self.name]

    async def _set_disabled(self, names: list[str], *, disabled: bool) -> list[str]:
        keeper = self._control.keeper
        now = self._control.clock()
        changed = []
        for name in names:
            key = self._control.state_name_of(name)
            current = await keeper.get_step_state(key) or StepState(name=key)
            if current.disabled == disabled:
                continue
            if disabled:
                new = current.evolve(
                    disabled=True,
                    status=StepStatus.SKIPPED,
                    reason="Disabled",
                    message=f"disabled by step {self.name!r}",
                    finished_at=now,
                )
            else:
                new = current.evolve(
                    disabled=False,
                    status=StepStatus.PENDING,
                    reason="Enabled",
                    message=f"enabled by step {self.name!r}",
                )
            await keeper.set_step_state(new)
            changed.append(name)
        return changed
