"""RunContext: the values shared by all steps of one run."""

from __future__ import annotations

from datetime import timedelta

import pytest

from kubesteps import RunContext, SimpleStep, StepContext

from .conftest import EngineFactory, FakeClock


@pytest.fixture
def run(clock: FakeClock) -> RunContext:
    return RunContext(clock)


def test_get_returns_the_value_or_the_default(run: RunContext) -> None:
    run.put("replicas", 3)
    assert run.get("replicas") == 3
    assert run.get("missing") is None
    assert run.get("missing", "fallback") == "fallback"


def test_get_with_a_type_checks_it_and_names_the_key(run: RunContext) -> None:
    run.put("replicas", "three")
    assert run.get("replicas", type=str) == "three"
    with pytest.raises(TypeError, match="'replicas' holds str, expected int"):
        run.get("replicas", type=int)


def test_get_with_a_type_returns_the_default_for_a_missing_key(run: RunContext) -> None:
    assert run.get("missing", 5, type=int) == 5


def test_a_value_expires_after_its_ttl_on_the_engine_clock(
    run: RunContext, clock: FakeClock
) -> None:
    run.put("token", "abc", ttl=timedelta(seconds=30))
    clock.advance(29)
    assert run.get("token") == "abc"
    clock.advance(1)
    assert run.get("token") is None
    assert "token" not in run


def test_delete_removes_a_value_and_says_whether_it_was_there(run: RunContext) -> None:
    run.put("a", 1)
    assert run.delete("a") is True
    assert run.delete("a") is False
    assert "a" not in run


def test_tagged_returns_live_values_with_the_tag(run: RunContext, clock: FakeClock) -> None:
    run.put("a", 1, tags={"db"})
    run.put("b", 2, tags={"db", "cache"})
    run.put("c", 3, tags={"cache"})
    run.put("d", 4, tags={"db"}, ttl=timedelta(seconds=1))
    clock.advance(1)
    assert run.tagged("db") == {"a": 1, "b": 2}


def test_delete_tagged_removes_every_value_with_the_tag(run: RunContext) -> None:
    run.put("a", 1, tags={"db"})
    run.put("b", 2, tags={"db"})
    run.put("c", 3)
    assert run.delete_tagged("db") == 2
    assert ("a" in run, "b" in run, "c" in run) == (False, False, True)


async def test_all_steps_of_one_run_share_the_context(make_engine: EngineFactory) -> None:
    seen: list[object] = []

    def first(ctx: StepContext) -> None:
        ctx.run.put("token", "t-1")

    def second(ctx: StepContext) -> None:
        seen.append(ctx.run.get("token"))

    await make_engine([SimpleStep(name="a", run=first), SimpleStep(name="b", run=second)]).run()
    assert seen == ["t-1"]


async def test_each_run_starts_with_a_fresh_context_unless_one_is_passed(
    make_engine: EngineFactory, clock: FakeClock
) -> None:
    seen: list[object] = []

    def step(ctx: StepContext) -> None:
        seen.append(ctx.run.get("count", 0))
        ctx.run.put("count", ctx.run.get("count", 0) + 1)

    engine = make_engine([SimpleStep(name="a", run=step, state=None)])
    await engine.run()
    await engine.run()
    shared = RunContext(clock)
    shared.put("count", 10)
    await engine.run(shared)
    assert seen == [0, 0, 10]
    assert shared.get("count") == 11
