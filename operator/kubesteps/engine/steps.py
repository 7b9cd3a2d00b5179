"""The kinds of step: simple, parallel, grouped, switch and dynamic.

Any list of steps (the engine's, or a group's) runs in order, unless one of its steps has
``needs``: then the list is a graph, and each step starts as soon as what it needs has ended
the way it asks (see ``Need``), side by side with the others, up to a concurrency limit.

A step is a plain description: it runs nothing by itself and holds no run-time state, so a
step tree can be built once and run by many engines. Definitions are checked when a step is
built; a mistake raises ``DefinitionError`` (a ``ValueError``) naming the step and field.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar, Union

from kubesteps.engine.context import StepContext
from kubesteps.engine.errors import DefinitionError
from kubesteps.engine.predicates import Predicate
from kubesteps.engine.retry import RetryPolicy
from kubesteps.engine.state import State
from kubesteps.engine.throttling import ThrottlingSettings

# The phases a need may ask for: ``Finished`` is any of the other three.
NEED_PHASES = ("Succeeded", "Failed", "Skipped", "Finished")


@dataclass(frozen=True, slots=True)
class Need:
    """A step of the same list that must have ended first, in ``phase``: Succeeded (the
    default), Failed, Skipped, or Finished (any of those). A step whose need ended another
    way is skipped (reason ``NeedsNotMet``); a failure that another step of the list needs
    as ``Failed`` is handled there and does not fail the list."""

    step: str
    phase: str = "Succeeded"

    def __post_init__(self) -> None:
        if self.phase not in NEED_PHASES:
            raise DefinitionError(
                self.step, "phase", f"must be one of {', '.join(NEED_PHASES)}, got {self.phase!r}"
            )

    def met_by(self, phase: str) -> bool:
        return phase == self.phase or (self.phase == "Finished" and phase in NEED_PHASES)


StepFunc = Callable[[StepContext], Awaitable[Any] | Any] | Callable[[], Awaitable[Any] | Any]
FailHook = Callable[[StepContext, str, BaseException], Awaitable[None] | None]
SuccessHook = Callable[[StepContext, str], Awaitable[None] | None]
# A middleware wraps a step's execution: it gets the context and a zero-argument coroutine
# function that runs the step (and any inner middleware), and returns what that returns.
Middleware = Callable[[StepContext, Callable[[], Awaitable[Any]]], Awaitable[Any]]
Generated = Union["Step", Sequence["Step"]]
Generator = (
    Callable[[StepContext], Awaitable[Generated] | Generated]
    | Callable[[], Awaitable[Generated] | Generated]
)


@dataclass(kw_only=True, eq=False)
class Step:
    """Options every kind of step has.

    - ``state``: how the step's state is kept (default: under its own name); ``None`` keeps
      no state, so the step runs on every pass.
    - ``predicates``: all must be true for the step to run; otherwise it is skipped, or the
      whole run is aborted with ``abort_on_predicates_false``.
    - ``continue_on_error``: a failure for good is recorded and the run carries on.
    - ``finish_on_success``: success ends the enclosing group (or the run, at top level).
    - ``on_fail`` / ``on_success``: hooks; their errors are logged, never fatal.
    - ``throttling``, ``retry`` (default: the engine's), ``timeout``, ``tags``,
      ``middleware`` (wraps this step and, for groups, every step inside).
    - ``needs``: steps of the same list (names or ``Need``) that must end first; the list
      then runs as a graph (see the module's docstring).
    """

    kind: ClassVar[str] = "step"

    name: str = ""
    state: State | None = field(default_factory=State)
    skip_state_check: bool = False
    predicates: Sequence[Predicate] = ()
    abort_on_predicates_false: bool = False
    continue_on_error: bool = False
    finish_on_success: bool = False
    on_fail: FailHook | None = None
    on_success: SuccessHook | None = None
    throttling: ThrottlingSettings | None = None
    retry: RetryPolicy | None = None
    timeout: timedelta | None = None
    tags: Iterable[str] = frozenset()
    middleware: Sequence[Middleware] = ()
    needs: Sequence[Need | str] = ()

    def __post_init__(self) -> None:
        self.tags = frozenset(self.tags)
        self.needs = tuple(n if isinstance(n, Need) else Need(n) for n in self.needs)
        self.predicates = tuple(self.predicates)
        self.middleware = tuple(self.middleware)
        if not isinstance(self.name, str) or not self.name.strip():
            raise DefinitionError(self.name or None, "name", f"a {self.kind} step needs a name")
        if self.timeout is not None and self.timeout <= timedelta(0):
            raise DefinitionError(self.name, "timeout", f"must be > 0, got {self.timeout}")
        if self.abort_on_predicates_false and not self.predicates:
            raise DefinitionError(
                self.name, "abort_on_predicates_false", "is set but the step has no predicates"
            )
        if self.skip_state_check and self.state is None:
            raise DefinitionError(
                self.name, "skip_state_check", "is set but the step keeps no state"
            )
        for label, hook in (("on_fail", self.on_fail), ("on_success", self.on_success)):
            if hook is not None and not callable(hook):
                raise DefinitionError(self.name, label, "must be callable")

    @property
    def state_key(self) -> str | None:
        """The name the keeper knows this step's state by, or None if it keeps none."""
        if self.state is None:
            return None
        return self.state.name or self.name

    @property
    def children(self) -> Sequence[Step]:
        """Steps known before running (a dynamic step's are known only when it runs)."""
        return ()

    def walk(self) -> Iterator[Step]:
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass(kw_only=True, eq=False)
class SimpleStep(Step):
    """Runs one function: ``async def fn(ctx) -> outputs`` (sync, or without ``ctx``, works too).

    A returned mapping becomes the step's outputs, kept by the keeper.
    """

    kind: ClassVar[str] = "simple"
    run: StepFunc

    def __post_init__(self) -> None:
        if not callable(self.run):
            raise DefinitionError(self.name or None, "run", "must be callable")
        if not self.name:
            self.name = getattr(self.run, "__name__", "")
        super().__post_init__()


@dataclass(kw_only=True, eq=False)
class GroupedSteps(Step):
    """A sequence of steps run by a nested engine; one step to its parent."""

    kind: ClassVar[str] = "group"
    steps: Sequence[Step]
    # How many of its steps run at once when they form a graph (None: all that can).
    max_concurrency: int | None = None
    # Whether its steps form a graph (one has ``needs``), decided once, here.
    graph: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        self.steps = tuple(self.steps)
        super().__post_init__()
        if not self.steps:
            raise DefinitionError(self.name, "steps", "a group needs at least one step")
        if self.max_concurrency is not None and self.max_concurrency < 1:
            raise DefinitionError(
                self.name, "max_concurrency", f"must be >= 1, got {self.max_concurrency}"
            )
        check_graph(self.steps, f"group {self.name!r}")
        self.graph = is_graph(self.steps)

    @property
    def children(self) -> Sequence[Step]:
        return self.steps


@dataclass(kw_only=True, eq=False)
class ParallelSteps(Step):
    """Runs its steps concurrently, each with full step semantics.

    At most ``max_concurrency`` at once (default: all). By default every step runs to its
    end and failures are collected; ``fail_fast`` cancels the others at the first failure
    (a cancelled step's state is put back as it was).
    """

    kind: ClassVar[str] = "parallel"
    steps: Sequence[Step]
    max_concurrency: int | None = None
    fail_fast: bool = False

    def __post_init__(self) -> None:
        self.steps = tuple(self.steps)
        super().__post_init__()
        if not self.steps:
            raise DefinitionError(self.name, "steps", "a parallel group needs at least one step")
        if self.max_concurrency is not None and self.max_concurrency < 1:
            raise DefinitionError(
                self.name, "max_concurrency", f"must be >= 1, got {self.max_concurrency}"
            )
        for sub in self.steps:
            if sub.finish_on_success:
                raise DefinitionError(
                    sub.name,
                    "finish_on_success",
                    f"cannot be set on a step of parallel group {self.name!r} "
                    "(there is no 'rest of the group' to skip)",
                )
            _no_needs(sub, f"parallel group {self.name!r}")

    @property
    def children(self) -> Sequence[Step]:
        return self.steps


@dataclass(kw_only=True, eq=False)
class DynamicStep(Step):
    """Generates its steps when, and only when, it runs: after the state check, predicates
    and throttling, afresh on every run. ``generate`` may return one step or a sequence,
    of any kind (a ``ParallelSteps`` makes a fan-out over a list)."""

    kind: ClassVar[str] = "dynamic"
    generate: Generator

    def __post_init__(self) -> None:
        if not callable(self.generate):
            raise DefinitionError(self.name or None, "generate", "must be callable")
        if not self.name:
            self.name = getattr(self.generate, "__name__", "")
        super().__post_init__()


@dataclass(kw_only=True, eq=False)
class Case:
    """One branch of a ``SwitchSteps``: its step, taken when all of ``when`` hold (no
    predicates: always, the default)."""

    step: Step
    when: Sequence[Predicate] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.step, Step):
            raise DefinitionError(None, "step", f"a case needs a Step, got {self.step!r}")
        self.when = tuple(self.when)
        _no_needs(self.step, "a switch")


@dataclass(kw_only=True, eq=False)
class SwitchSteps(Step):
    """Runs one of its cases: the first whose ``when`` all hold; the others are recorded
    skipped (reason ``NotTaken``). No case taken: the switch itself is skipped. Once a case
    has started it stays the one taken for later runs (a waiting case is not swapped for
    another whose predicates became true meanwhile)."""

    kind: ClassVar[str] = "switch"
    cases: Sequence[Case]

    def __post_init__(self) -> None:
        self.cases = tuple(self.cases)
        super().__post_init__()
        if not self.cases:
            raise DefinitionError(self.name, "cases", "a switch needs at least one case")
        for case in self.cases[:-1]:
            if not case.when:
                raise DefinitionError(
                    case.step.name,
                    "when",
                    f"only the last case of switch {self.name!r} may go without predicates "
                    "(it is the default: the cases after it could never be taken)",
                )

    @property
    def children(self) -> Sequence[Step]:
        return tuple(case.step for case in self.cases)


def is_graph(steps: Sequence[Step]) -> bool:
    """Whether a list of steps runs as a graph: one of them has ``needs``."""
    return any(step.needs for step in steps)


def check_graph(steps: Sequence[Step], where: str) -> None:
    """Needs name steps of the same list, at most once each, and form no cycle."""
    names = {step.name for step in steps}
    for step in steps:
        seen: set[str] = set()
        for need in step.needs:
            assert isinstance(need, Need)
            if need.step not in names:
                raise DefinitionError(step.name, "needs", f"{need.step!r} is no step of {where}")
            if need.step in seen:
                raise DefinitionError(step.name, "needs", f"names {need.step!r} twice")
            seen.add(need.step)
        if step.finish_on_success and is_graph(steps):
            raise DefinitionError(
                step.name,
                "finish_on_success",
                f"cannot be set in {where}, whose steps form a graph "
                "(there is no 'rest of the list' to skip)",
            )
    cycle = find_cycle(
        {step.name: [n.step for n in step.needs if isinstance(n, Need)] for step in steps}
    )
    if cycle:
        raise DefinitionError(
            cycle[0], "needs", f"the needs of {where} form a cycle: {' -> '.join(cycle)}"
        )


def find_cycle(needs: dict[str, list[str]]) -> list[str]:
    """A cycle in ``needs`` (name -> the names it needs) as ``[a, b, ..., a]``, or []."""
    done: set[str] = set()
    for start in needs:
        if start in done:
            continue
        path: list[str] = []
        on_path: dict[str, int] = {}
        stack: list[tuple[str, int]] = [(start, 0)]
        while stack:
            node, index = stack.pop()
            if index == 0:
                on_path[node] = len(path)
                path.append(node)
            targets = needs.get(node, [])
            if index < len(targets):
                stack.append((node, index + 1))
                target = targets[index]
                if target in on_path:
                    return [*path[on_path[target] :], target]
                if target not in done and target in needs:
                    stack.append((target, 0))
                continue
            done.add(node)
            on_path.pop(node)
            path.pop()
    return []


def _no_needs(step: Step, where: str) -> None:
    if step.needs:
        raise DefinitionError(
            step.name, "needs", f"only steps of a sequence may have needs, not those of {where}"
        )
