"""MemoryStateKeeper: states and throttling times in a dict, with a bounded history."""

from __future__ import annotations

from datetime import UTC, datetime

from kubesteps import MemoryStateKeeper, StateKeeper, StepState, StepStatus


def test_it_satisfies_the_keeper_protocol() -> None:
    assert isinstance(MemoryStateKeeper(), StateKeeper)


async def test_an_unknown_step_has_no_state() -> None:
    assert await MemoryStateKeeper().get_step_state("nobody") is None


async def test_states_are_kept_by_name_and_replaced_by_newer_ones() -> None:
    keeper = MemoryStateKeeper()
    await keeper.set_step_state(StepState(name="a", status=StepStatus.RUNNING))
    await keeper.set_step_state(StepState(name="b", status=StepStatus.FAILED))
    await keeper.set_step_state(StepState(name="a", status=StepStatus.SUCCEEDED))
    a, b = await keeper.get_step_state("a"), await keeper.get_step_state("b")
    assert (a and a.status, b and b.status) == (StepStatus.SUCCEEDED, StepStatus.FAILED)


async def test_transitions_list_every_write_in_order() -> None:
    keeper = MemoryStateKeeper()
    for status in (StepStatus.RUNNING, StepStatus.SUCCEEDED):
        await keeper.set_step_state(StepState(name="a", status=status))
    assert [t.status for t in keeper.transitions] == [StepStatus.RUNNING, StepStatus.SUCCEEDED]


async def test_the_history_is_bounded() -> None:
    keeper = MemoryStateKeeper(history=10)
    for i in range(25):
        await keeper.set_step_state(StepState(name=f"s{i}"))
    assert len(keeper.transitions) <= 10
    assert keeper.transitions[-1].name == "s24"


async def test_a_history_of_zero_keeps_no_transitions_but_still_keeps_states() -> None:
    keeper = MemoryStateKeeper(history=0)
    await keeper.set_step_state(StepState(name="a"))
    assert keeper.transitions == []
    assert await keeper.get_step_state("a") == StepState(name="a")


async def test_last_runs_are_kept_by_key() -> None:
    keeper = MemoryStateKeeper()
    when = datetime(2025, 1, 1, tzinfo=UTC)
    assert await keeper.get_last_run("k") is None
    await keeper.set_last_run("k", when)
    assert await keeper.get_last_run("k") == when
