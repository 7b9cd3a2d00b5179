"""Recording step states: keeper failures name the step, a failure stays on record, the
listener hears every write and cannot break the run."""

from __future__ import annotations

import pytest

from kubesteps import KeeperError, MemoryStateKeeper, PermanentError, StepState, StepStatus
from kubesteps.engine.recorder import StateRecorder, failed_state

from .conftest import START


class BrokenKeeper(MemoryStateKeeper):
    async def set_step_state(self, state: StepState) -> None:
        raise OSError("disk full")


async def test_a_keeper_that_cannot_write_stops_with_a_keeper_error_naming_the_step() -> None:
    recorder = StateRecorder(BrokenKeeper(), None, None)
    with pytest.raises(KeeperError, match="record state 'running' for step 'a': disk full"):
        await recorder.set("a", None, StepState(name="a", status=StepStatus.RUNNING))


async def test_a_skip_leaves_a_recorded_failure_in_place() -> None:
    keeper = MemoryStateKeeper()
    failed = StepState(name="a", status=StepStatus.FAILED, message="nope")
    recorder = StateRecorder(keeper, None, keeper.nowait())
    await recorder.skip("a", failed, "a", "PredicateFalse", "predicate is false")
    assert keeper.states == {}


async def test_the_listener_hears_every_write_and_its_errors_are_ignored() -> None:
    heard: list[tuple[StepState | None, StepState]] = []

    def listener(old: StepState | None, new: StepState) -> None:
        heard.append((old, new))
        raise RuntimeError("listener bug")

    keeper = MemoryStateKeeper()
    nowait = keeper.nowait()
    assert nowait is not None
    recorder = StateRecorder(keeper, listener, nowait)
    running = StepState(name="a", status=StepStatus.RUNNING)
    done = running.evolve(status=StepStatus.SUCCEEDED)
    await recorder.set("a", None, running)
    recorder.set_now(nowait, "a", running, done)
    assert heard == [(None, running), (running, done)]
    assert keeper.states["a"] == done


def test_a_permanent_error_gives_the_failed_state_its_reason_and_outputs() -> None:
    base = StepState(name="a", status=StepStatus.RUNNING, outputs={"seen": 1})
    error = PermanentError("rejected by bob", reason="Rejected", outputs={"by": "bob"})
    failed = failed_state(base, error, "rejected by bob", START)
    assert (failed.status, failed.reason, failed.outputs, failed.finished_at) == (
        StepStatus.FAILED,
        "Rejected",
        {"by": "bob"},
        START,
    )
    assert failed_state(base, RuntimeError("x"), "x", START).outputs == {"seen": 1}
