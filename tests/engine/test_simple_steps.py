"""SimpleStep: the run function's shapes, outputs and hooks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from kubesteps import (
    DefinitionError,
    MemoryStateKeeper,
    OutcomeKind,
    RetryPolicy,
    SimpleStep,
    StepContext,
    StepsEngine,
    StepStatus,
)

from .conftest import EngineFactory


async def test_sync_function_without_context_runs() -> None:
    calls: list[str] = []

    outcome = await StepsEngine([SimpleStep(name="a", run=lambda: calls.append("a"))]).run()
    assert outcome.kind is OutcomeKind.DONE
    assert calls == ["a"]


async def test_async_function_with_context_gets_its_own_step_context(
    make_engine: EngineFactory,
) -> None:
    seen: list[tuple[str, int]] = []

    async def step(ctx: StepContext) -> None:
        seen.append((ctx.name, ctx.attempt))

    await make_engine([SimpleStep(name="mine", run=step)]).run()
    assert seen == [("mine", 1)]


async def test_sync_function_with_context_and_async_function_without_both_run(
    make_engine: EngineFactory,
) -> None:
    seen: list[str] = []

    def with_ctx(ctx: StepContext) -> None:
        seen.append(ctx.name)

    async def without() -> None:
        seen.append("without")

    await make_engine([SimpleStep(name="w", run=with_ctx), SimpleStep(run=without)]).run()
    assert seen == ["w", "without"]


async def test_name_defaults_to_the_function_name(make_engine: EngineFactory) -> None:
    def install_crds() -> None:
        return None

    step = SimpleStep(run=install_crds)
    assert step.name == "install_crds"


async def test_returned_mapping_becomes_the_step_outputs_in_the_keeper(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    await make_engine([SimpleStep(name="a", run=lambda: {"url": "http://x"})]).run()
    assert keeper.states["a"].outputs == {"url": "http://x"}


async def test_a_non_mapping_return_value_records_no_outputs(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    await make_engine([SimpleStep(name="a", run=lambda: 42)]).run()
    assert keeper.states["a"].outputs is None


async def test_outputs_of_reads_another_steps_outputs(make_engine: EngineFactory) -> None:
    seen: dict[str, Any] = {}

    async def second(ctx: StepContext) -> None:
        seen.update(await ctx.outputs_of("first"))
        seen["missing"] = await ctx.outputs_of("nobody")

    await make_engine(
        [SimpleStep(name="first", run=lambda: {"n": 1}), SimpleStep(name="second", run=second)]
    ).run()
    assert seen == {"n": 1, "missing": {}}


async def test_a_callable_object_runs_as_a_step(make_engine: EngineFactory) -> None:
    # A dataclass instance is unhashable (eq without frozen): the engine must still call it.
    @dataclass
    class Deploy:
        replicas: int

        async def __call__(self, ctx: StepContext) -> dict[str, int]:
            return {"replicas": self.replicas}

    keeper = MemoryStateKeeper()
    outcome = await make_engine(
        [SimpleStep(name="deploy", run=Deploy(3))], keeper=keeper, retry=RetryPolicy(limit=1)
    ).run()
    assert outcome.kind is OutcomeKind.DONE
    assert keeper.states["deploy"].outputs == {"replicas": 3}


async def test_on_success_hook_is_called_with_context_and_name(
    make_engine: EngineFactory,
) -> None:
    calls: list[tuple[str, str]] = []

    async def hook(ctx: StepContext, name: str) -> None:
        calls.append((ctx.name, name))

    await make_engine([SimpleStep(name="a", run=lambda: None, on_success=hook)]).run()
    assert calls == [("a", "a")]


async def test_a_hook_that_raises_is_ignored(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    def hook(ctx: StepContext, name: str) -> None:
        raise RuntimeError("hook broke")

    outcome = await make_engine(
        [SimpleStep(name="a", run=lambda: None, on_success=hook), SimpleStep(name="b", run=list)]
    ).run()
    assert outcome.kind is OutcomeKind.DONE
    assert keeper.states["b"].status is StepStatus.SUCCEEDED


async def test_a_failing_on_fail_hook_does_not_change_the_outcome(
    make_engine: EngineFactory,
) -> None:
    def hook(ctx: StepContext, name: str, err: BaseException) -> None:
        raise RuntimeError("hook broke")

    def boom() -> None:
        raise ValueError("bad")

    outcome = await make_engine(
        [SimpleStep(name="a", run=boom, on_fail=hook, retry=RetryPolicy(limit=1))]
    ).run()
    assert (outcome.kind, outcome.step, outcome.message) == (OutcomeKind.FAILED, "a", "bad")


def test_a_step_without_a_name_or_named_function_is_rejected() -> None:
    class Anonymous:
        def __call__(self) -> None:
            return None

    with pytest.raises(DefinitionError, match="name: a simple step needs a name"):
        SimpleStep(run=Anonymous())


def test_a_non_callable_run_is_rejected_naming_the_field() -> None:
    with pytest.raises(DefinitionError, match="run: must be callable"):
        SimpleStep(name="a", run="not a function")  # type: ignore[arg-type]
