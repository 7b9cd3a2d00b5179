"""Predicates: whether a step should run. Sync or async, with zero arguments or the context.

Helpers read their inputs lazily, when the engine evaluates them, never when built.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from kubesteps.engine.context import StepContext
from kubesteps.engine.state import StepStatus

Predicate = Callable[[], bool | Awaitable[bool]] | Callable[[StepContext], bool | Awaitable[bool]]
Conditions = Sequence[Mapping[str, Any]] | Callable[[], Sequence[Mapping[str, Any]] | None]


def takes_context(fn: Callable[..., Any]) -> bool:
    """Whether a user callable wants the step context as its one positional argument.

    Plain functions and bound methods are read from their code object (cached by code:
    closures built afresh for every Pipeline share it, and nothing keeps them alive);
    anything else (partials, callable objects) goes through ``inspect.signature``.
    """
    method = inspect.ismethod(fn)
    function = fn.__func__ if method else fn  # type: ignore[attr-defined]
    if inspect.isfunction(function):
        defaults = len(function.__defaults__ or ())
        return _code_takes_argument(function.__code__, defaults, 1 if method else 0)
    return _takes_context(fn)


@functools.lru_cache(maxsize=4096)
def _code_takes_argument(code: types.CodeType, defaults: int, bound: int) -> bool:
    required = code.co_argcount - defaults - bound
    return required >= 1 or bool(code.co_flags & inspect.CO_VARARGS)


def _takes_context(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature: assume no argument
        return False
    positional = [
        p
        for p in params
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    return len(positional) >= 1 or any(p.kind == p.VAR_POSITIONAL for p in params)


async def evaluate(predicate: Predicate, ctx: StepContext) -> bool:
    result = predicate(ctx) if takes_context(predicate) else predicate()  # type: ignore[call-arg]
    if inspect.isawaitable(result):
        result = await result
    if not isinstance(result, bool):
        raise TypeError(f"predicate {describe(predicate)} returned {result!r}, not a bool")
    return result


def describe(predicate: Predicate) -> str:
    return getattr(predicate, "__qualname__", None) or repr(predicate)


def _named(name: str, fn: Callable[[StepContext], Awaitable[bool]]) -> Predicate:
    fn.__qualname__ = name
    return fn


def and_(*predicates: Predicate) -> Predicate:
    """True when all are true (left to right, stopping at the first false); empty is true."""

    async def check(ctx: StepContext) -> bool:
        for p in predicates:
            if not await evaluate(p, ctx):
                return False
        return True

    return _named(f"and_({', '.join(describe(p) for p in predicates)})", check)


def or_(*predicates: Predicate) -> Predicate:
    """True when any is true (left to right, stopping at the first true); empty is false."""

    async def check(ctx: StepContext) -> bool:
        for p in predicates:
            if await evaluate(p, ctx):
                return True
        return False

    return _named(f"or_({', '.join(describe(p) for p in predicates)})", check)


def not_(predicate: Predicate) -> Predicate:
    async def check(ctx: StepContext) -> bool:
        return not await evaluate(predicate, ctx)

    return _named(f"not_({describe(predicate)})", check)


def _read(conditions: Conditions) -> Iterable[Mapping[str, Any]]:
    current = conditions() if callable(conditions) else conditions
    return current or ()


def is_true_condition(condition_type: str, conditions: Conditions) -> Predicate:
    """True when ``conditions`` holds ``condition_type`` with status ``"True"``.

    ``conditions`` is read at evaluation time: pass the live list (e.g. the object's
    ``status.conditions``) or a callable returning it.
    """

    async def check(ctx: StepContext) -> bool:
        return any(
            c.get("type") == condition_type and c.get("status") == "True" for c in _read(conditions)
        )

    return _named(f"is_true_condition({condition_type!r})", check)


def is_not_true_condition(condition_type: str, conditions: Conditions) -> Predicate:
    """True when the condition is missing, ``False`` or ``Unknown``."""
    return not_(is_true_condition(condition_type, conditions))


def step_in(name: str, *statuses: StepStatus) -> Predicate:
    """True when step ``name``'s recorded state is one of ``statuses`` (read lazily)."""
    wanted = frozenset(statuses)

    async def check(ctx: StepContext) -> bool:
        state = await ctx.state_of(name)
        return (state.status if state is not None else StepStatus.PENDING) in wanted

    labels = ", ".join(s.value for s in statuses)
    return _named(f"step_in({name!r}, {labels})", check)


def step_succeeded(name: str) -> Predicate:
    return step_in(name, StepStatus.SUCCEEDED)


def step_failed(name: str) -> Predicate:
    return step_in(name, StepStatus.FAILED)


def always(value: bool) -> Predicate:
    """A constant (for configuration flags known when the steps are built)."""

    def check() -> bool:
        return value

    check.__qualname__ = f"always({value})"
    return check
