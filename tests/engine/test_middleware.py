"""Middleware: engine, group and step level, outermost first."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from kubesteps import (
    GroupedSteps,
    MemoryStateKeeper,
    Middleware,
    OutcomeKind,
    ParallelSteps,
    PermanentError,
    RetryPolicy,
    SimpleStep,
    StepContext,
    StepRunError,
    StepStatus,
    WaitError,
)

from .conftest import EngineFactory


def recording(label: str, log: list[str]) -> Middleware:
    async def middleware(ctx: StepContext, call: Callable[[], Awaitable[Any]]) -> Any:
        log.append(f"{label}>{ctx.name}")
        try:
            return await call()
        finally:
            log.append(f"{label}<{ctx.name}")

    return middleware


async def test_engine_group_and_step_middleware_nest_outermost_first(
    make_engine: EngineFactory,
) -> None:
    log: list[str] = []
    step = SimpleStep(
        name="s", run=lambda: log.append("run s"), middleware=[recording("step", log)]
    )
    inner = GroupedSteps(name="inner", steps=[step], middleware=[recording("inner", log)])
    outer = GroupedSteps(name="outer", steps=[inner], middleware=[recording("outer", log)])
    await make_engine([outer], middleware=[recording("engine", log)]).run()
    assert log == [
        "engine>outer",
        "outer>outer",
        "engine>inner",
        "outer>inner",
        "inner>inner",
        "engine>s",
        "outer>s",
        "inner>s",
        "step>s",
        "run s",
        "step<s",
        "inner<s",
        "outer<s",
        "engine<s",
        "inner<inner",
        "outer<inner",
        "engine<inner",
        "outer<outer",
        "engine<outer",
    ]


async def test_several_middleware_at_one_level_apply_in_list_order(
    make_engine: EngineFactory,
) -> None:
    log: list[str] = []
    await make_engine(
        [SimpleStep(name="s", run=list)],
        middleware=[recording("first", log), recording("second", log)],
    ).run()
    assert log == ["first>s", "second>s", "second<s", "first<s"]


async def test_a_parallel_groups_middleware_wraps_each_sub_step(
    make_engine: EngineFactory,
) -> None:
    log: list[str] = []
    group = ParallelSteps(
        name="p",
        steps=[SimpleStep(name="a", run=list), SimpleStep(name="b", run=list)],
        middleware=[recording("p", log)],
    )
    await make_engine([group]).run()
    assert sorted(entry for entry in log if entry.startswith("p>")) == ["p>a", "p>b", "p>p"]


async def test_a_middleware_may_transform_the_result(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    async def add_version(ctx: StepContext, call: Callable[[], Awaitable[Any]]) -> Any:
        outputs = await call()
        return {**outputs, "version": 2}

    await make_engine(
        [SimpleStep(name="s", run=lambda: {"url": "x"}, middleware=[add_version])]
    ).run()
    assert keeper.states["s"].outputs == {"url": "x", "version": 2}


async def test_a_middleware_may_swallow_an_error(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    async def swallow(ctx: StepContext, call: Callable[[], Awaitable[Any]]) -> Any:
        try:
            return await call()
        except LookupError:
            return None

    def run() -> None:
        raise KeyError("gone")

    outcome = await make_engine([SimpleStep(name="s", run=run, middleware=[swallow])]).run()
    assert outcome.kind is OutcomeKind.DONE
    assert keeper.states["s"].status is StepStatus.SUCCEEDED


async def test_an_error_raised_by_a_middleware_counts_as_the_steps_error(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    ran: list[str] = []

    async def deny(ctx: StepContext, call: Callable[[], Awaitable[Any]]) -> Any:
        raise PermissionError("not allowed")

    step = SimpleStep(
        name="s", run=lambda: ran.append("s"), middleware=[deny], retry=RetryPolicy(limit=1)
    )
    outcome = await make_engine([step]).run()
    assert (outcome.kind, outcome.step, outcome.message) == (OutcomeKind.FAILED, "s", "not allowed")
    assert ran == []
    assert keeper.states["s"].status is StepStatus.FAILED


async def test_middleware_does_not_wrap_skipped_steps(make_engine: EngineFactory) -> None:
    log: list[str] = []
    engine = make_engine([SimpleStep(name="s", run=list)], middleware=[recording("e", log)])
    await engine.run()
    await engine.run()
    assert log == ["e>s", "e<s"]


def failing(name: str) -> SimpleStep:
    def run() -> None:
        raise PermanentError("nope")

    return SimpleStep(name=name, run=run)


async def test_a_groups_middleware_sees_a_failed_step_raised_and_may_swallow_it(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    seen: list[StepRunError] = []

    async def swallow(ctx: StepContext, call: Callable[[], Awaitable[Any]]) -> Any:
        try:
            return await call()
        except StepRunError as err:
            if ctx.name == "g":
                seen.append(err)
                return None
            raise

    group = GroupedSteps(name="g", steps=[failing("a")], middleware=[swallow])
    outcome = await make_engine([group, SimpleStep(name="z", run=list)]).run()
    assert outcome.kind is OutcomeKind.DONE
    assert [err.step for err in seen] == ["a"]
    assert keeper.states["a"].status is StepStatus.FAILED
    assert keeper.states["g"].status is StepStatus.SUCCEEDED


async def test_a_parallel_groups_middleware_sees_its_steps_problems_as_one_exception_group(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    seen: list[BaseExceptionGroup[BaseException]] = []

    async def watch(ctx: StepContext, call: Callable[[], Awaitable[Any]]) -> Any:
        try:
            return await call()
        except BaseExceptionGroup as group:
            seen.append(group)
            raise

    def waiting() -> None:
        raise WaitError("job", 5)

    group = ParallelSteps(
        name="p", steps=[failing("a"), SimpleStep(name="b", run=waiting)], middleware=[watch]
    )
    outcome = await make_engine([group]).run()
    assert [str(member) for member in seen[0].exceptions] == [
        "step 'a' failed: nope",
        "step 'b': job",
    ]
    assert (outcome.kind, outcome.step) == (OutcomeKind.FAILED, "a")
    assert keeper.states["p"].message == "parallel group 'p': step 'a' failed: nope; step 'b': job"
