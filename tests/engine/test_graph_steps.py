"""Lists whose steps have needs run as a graph: order by needs, branches side by side,
phases a need may ask for, handled failures, and the definition checks."""

from __future__ import annotations

import asyncio

import pytest

from kubesteps import (
    DefinitionError,
    GroupedSteps,
    MemoryStateKeeper,
    Need,
    OutcomeKind,
    ParallelSteps,
    RetryPolicy,
    SimpleStep,
    StepStatus,
    WaitError,
)

from .conftest import EngineFactory


def recorder(log: list[str], name: str, **options: object) -> SimpleStep:
    async def run() -> None:
        log.append(f"start {name}")
        await asyncio.sleep(0.01)
        log.append(f"end {name}")

    return SimpleStep(name=name, run=run, **options)  # type: ignore[arg-type]


def failing(name: str, **options: object) -> SimpleStep:
    def run() -> None:
        raise RuntimeError(f"{name} broke")

    return SimpleStep(name=name, run=run, retry=RetryPolicy(limit=1), **options)  # type: ignore[arg-type]


async def test_a_step_starts_only_after_what_it_needs(make_engine: EngineFactory) -> None:
    log: list[str] = []
    # Listed in reverse: the needs, not the order, decide.
    steps = [recorder(log, "c", needs=["b"]), recorder(log, "b", needs=["a"]), recorder(log, "a")]
    outcome = await make_engine(steps).run()
    assert outcome.kind is OutcomeKind.DONE
    assert log == ["start a", "end a", "start b", "end b", "start c", "end c"]


async def test_independent_branches_run_side_by_side(make_engine: EngineFactory) -> None:
    log: list[str] = []
    steps = [recorder(log, "a"), recorder(log, "b"), recorder(log, "join", needs=["a", "b"])]
    await make_engine(steps).run()
    assert log[:2] == ["start a", "start b"]
    assert log[-2:] == ["start join", "end join"]


async def test_max_concurrency_bounds_the_branches(make_engine: EngineFactory) -> None:
    log: list[str] = []
    steps = [recorder(log, n) for n in "abc"] + [recorder(log, "d", needs=["a"])]
    await make_engine(steps, max_concurrency=1).run()
    assert log == [f"{what} {n}" for n in "abcd" for what in ("start", "end")]


async def test_a_group_with_needs_is_a_graph_under_its_own_limit(
    make_engine: EngineFactory,
) -> None:
    log: list[str] = []
    group = GroupedSteps(
        name="g",
        max_concurrency=2,
        steps=[recorder(log, "x"), recorder(log, "y"), recorder(log, "z", needs=["x", "y"])],
    )
    assert (await make_engine([group]).run()).kind is OutcomeKind.DONE
    assert log[:2] == ["start x", "start y"]
    assert log[-1] == "end z"


async def test_a_step_whose_need_failed_is_skipped_and_the_list_fails(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    log: list[str] = []
    steps = [failing("build"), recorder(log, "deploy", needs=["build"])]
    outcome = await make_engine(steps).run()
    assert outcome.kind is OutcomeKind.FAILED
    assert outcome.step == "build"
    # The failure stops the list: nothing more starts, so deploy is not even skipped.
    assert log == []
    assert await keeper.get_step_state("deploy") is None


async def test_a_failure_needed_as_failed_is_handled(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    log: list[str] = []
    steps = [
        failing("build"),
        recorder(log, "deploy", needs=["build"]),
        recorder(log, "report", needs=[Need("build", "Failed")]),
    ]
    outcome = await make_engine(steps).run()
    assert outcome.kind is OutcomeKind.DONE
    assert log == ["start report", "end report"]
    deploy = await keeper.get_step_state("deploy")
    assert deploy is not None
    assert deploy.status is StepStatus.SKIPPED
    assert deploy.reason == "NeedsNotMet"
    assert deploy.message == "needs 'build' to have succeeded; it failed"
    # The next pass sees the same: the failure stays handled.
    assert (await make_engine(steps).run()).kind is OutcomeKind.DONE


async def test_skips_cascade_and_finished_takes_any_end(
    make_engine: EngineFactory, keeper: MemoryStateKeeper
) -> None:
    log: list[str] = []
    steps = [
        recorder(log, "a"),
        recorder(log, "on-failure", needs=[Need("a", "Failed")]),
        recorder(log, "after-that", needs=["on-failure"]),
        recorder(log, "when-skipped", needs=[Need("on-failure", "Skipped")]),
        recorder(log, "always", needs=[Need("after-that", "Finished")]),
    ]
    assert (await make_engine(steps).run()).kind is OutcomeKind.DONE
    started = sorted(line for line in log if line.startswith("start"))
    assert started == ["start a", "start always", "start when-skipped"]
    for name in ("on-failure", "after-that"):
        state = await keeper.get_step_state(name)
        assert state is not None
        assert state.reason == "NeedsNotMet"


async def test_a_waiting_branch_holds_back_only_its_dependents(
    make_engine: EngineFactory,
) -> None:
    log: list[str] = []

    def approval() -> None:
        raise WaitError("waiting for approval", 30)

    steps = [
        SimpleStep(name="approve", run=approval),
        recorder(log, "release", needs=["approve"]),
        recorder(log, "lint"),
        recorder(log, "test", needs=["lint"]),
    ]
    outcome = await make_engine(steps).run()
    assert outcome.kind is OutcomeKind.WAIT
    assert outcome.step == "approve"
    assert outcome.delay == 30
    assert log == ["start lint", "end lint", "start test", "end test"]


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (
            [("a", ["b"]), ("b", ["c"]), ("c", ["a"])],
            "the needs of the engine's steps form a cycle: a -> b -> c -> a",
        ),
        ([("a", ["a"])], "the needs of the engine's steps form a cycle: a -> a"),
        ([("a", ["nope"])], "'nope' is no step of the engine's steps"),
        ([("a", []), ("b", ["a", "a"])], "names 'a' twice"),
    ],
)
def test_bad_needs_are_refused(
    make_engine: EngineFactory, steps: list[tuple[str, list[str]]], message: str
) -> None:
    built = [SimpleStep(name=name, run=lambda: None, needs=needs) for name, needs in steps]
    with pytest.raises(DefinitionError, match=message.replace("(", r"\(")):
        make_engine(built)


def test_needs_are_refused_where_steps_do_not_run_in_sequence() -> None:
    with pytest.raises(DefinitionError, match="only steps of a sequence may have needs"):
        ParallelSteps(
            name="p",
            steps=[
                SimpleStep(name="a", run=lambda: None),
                SimpleStep(name="b", run=lambda: None, needs=["a"]),
            ],
        )


def test_a_need_asks_for_a_known_phase() -> None:
    with pytest.raises(DefinitionError, match="must be one of Succeeded, Failed, Skipped"):
        Need("a", "Done")
