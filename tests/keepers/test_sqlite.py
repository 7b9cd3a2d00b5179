"""SQLiteStateKeeper: states in a WAL-mode SQLite file that outlives the process."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from subprocess import PIPE

import pytest

from kubesteps import (
    OutcomeKind,
    SimpleStep,
    SQLiteStateKeeper,
    StateKeeper,
    StepsEngine,
    StepState,
    StepStatus,
    WaitError,
)

WHEN = datetime(2025, 3, 4, 5, 6, 7, 890, tzinfo=UTC)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "states.db"


@pytest.fixture
def keeper(path: Path) -> Iterator[SQLiteStateKeeper]:
    opened = SQLiteStateKeeper(path, scope="pipeline-a")
    yield opened
    opened.close()


def test_it_satisfies_the_keeper_protocol(keeper: SQLiteStateKeeper) -> None:
    assert isinstance(keeper, StateKeeper)


def test_the_database_is_in_wal_mode(keeper: SQLiteStateKeeper, path: Path) -> None:
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_an_unknown_step_has_no_state(keeper: SQLiteStateKeeper) -> None:
    assert await keeper.get_step_state("nobody") is None


async def test_every_field_of_a_state_round_trips(keeper: SQLiteStateKeeper) -> None:
    state = StepState(
        name="a",
        status=StepStatus.RETRYING,
        reason="Retrying",
        message="attempt 2/5 failed: boom ✗",
        attempts=2,
        started_at=WHEN,
        finished_at=WHEN + timedelta(seconds=1),
        next_run_at=WHEN + timedelta(minutes=1),
        outputs={"url": "http://x", "n": 3, "nested": {"ok": True}},
        disabled=True,
        inserted=("x", "y"),
    )
    await keeper.set_step_state(state)
    assert await keeper.get_step_state("a") == state


async def test_a_newer_state_replaces_the_older_one(keeper: SQLiteStateKeeper) -> None:
    await keeper.set_step_state(StepState(name="a", status=StepStatus.RUNNING))
    await keeper.set_step_state(StepState(name="a", status=StepStatus.SUCCEEDED))
    assert await keeper.states() == {"a": StepState(name="a", status=StepStatus.SUCCEEDED)}


async def test_last_runs_round_trip_with_their_time_zone(keeper: SQLiteStateKeeper) -> None:
    assert await keeper.get_last_run("k") is None
    await keeper.set_last_run("k", WHEN)
    await keeper.set_last_run("k", WHEN + timedelta(hours=1))
    assert await keeper.get_last_run("k") == WHEN + timedelta(hours=1)


async def test_scopes_sharing_a_file_do_not_see_each_other(
    keeper: SQLiteStateKeeper, path: Path
) -> None:
    other = SQLiteStateKeeper(path, scope="pipeline-b")
    await keeper.set_step_state(StepState(name="a", status=StepStatus.SUCCEEDED))
    await keeper.set_last_run("k", WHEN)
    assert await other.get_step_state("a") is None
    assert await other.get_last_run("k") is None
    other.close()


async def test_clear_forgets_only_its_own_scope(keeper: SQLiteStateKeeper, path: Path) -> None:
    other = SQLiteStateKeeper(path, scope="pipeline-b")
    for each in (keeper, other):
        await each.set_step_state(StepState(name="a"))
        await each.set_last_run("k", WHEN)
    await keeper.clear()
    assert (await keeper.states(), await keeper.get_last_run("k")) == ({}, None)
    assert list(await other.states()) == ["a"]
    other.close()


@pytest.mark.slow
async def test_states_survive_a_process_restart(path: Path) -> None:
    # One pass in another process; a step that waits keeps its place for the next pass.
    script = textwrap.dedent(
        f"""
        import asyncio
        from kubesteps import SQLiteStateKeeper, SimpleStep, StepsEngine, WaitError

        def wait():
            raise WaitError("pods", 5)

        async def main():
            keeper = SQLiteStateKeeper({str(path)!r}, scope="obj")
            engine = StepsEngine(
                [SimpleStep(name="a", run=lambda: {{"id": 7}}), SimpleStep(name="b", run=wait)],
                keeper=keeper,
            )
            print((await engine.run()).kind)

        asyncio.run(main())
        """
    )
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stdout=PIPE, stderr=PIPE
    )
    out, err = await asyncio.wait_for(child.communicate(), timeout=60)
    assert child.returncode == 0, err.decode()
    assert out.decode().strip() == "wait"

    ran: list[str] = []
    keeper = SQLiteStateKeeper(path, scope="obj")
    engine = StepsEngine(
        [
            SimpleStep(name="a", run=lambda: ran.append("a")),
            SimpleStep(name="b", run=lambda: ran.append("b")),
        ],
        keeper=keeper,
    )
    before = await keeper.states()
    outcome = await engine.run()
    keeper.close()
    assert before["a"].outputs == {"id": 7}
    assert before["b"].status is StepStatus.WAITING
    assert (outcome.kind, ran) == (OutcomeKind.DONE, ["b"])


async def test_two_engines_with_different_scopes_run_concurrently_on_one_file(
    path: Path,
) -> None:
    async def tick() -> None:
        await asyncio.sleep(0)

    def engine_for(scope: str) -> tuple[StepsEngine, SQLiteStateKeeper]:
        keeper = SQLiteStateKeeper(path, scope=scope)
        steps = [SimpleStep(name=f"s{i}", run=tick) for i in range(20)]
        return StepsEngine(steps, keeper=keeper), keeper

    (first, k1), (second, k2) = engine_for("one"), engine_for("two")
    outcomes = await asyncio.gather(first.run(), second.run())
    assert [o.kind for o in outcomes] == [OutcomeKind.DONE, OutcomeKind.DONE]
    for keeper in (k1, k2):
        states = await keeper.states()
        assert len(states) == 20
        assert {s.status for s in states.values()} == {StepStatus.SUCCEEDED}
        keeper.close()


async def test_a_waiting_step_is_read_back_as_waiting_by_a_new_keeper(path: Path) -> None:
    def wait() -> None:
        raise WaitError("pods", 5)

    first = SQLiteStateKeeper(path)
    await StepsEngine([SimpleStep(name="a", run=wait)], keeper=first).run()
    first.close()
    second = SQLiteStateKeeper(path)
    state = await second.get_step_state("a")
    second.close()
    assert state is not None
    assert (state.status, state.reason) == (StepStatus.WAITING, "Waiting")
