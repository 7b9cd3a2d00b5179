"""SQLiteStateKeeper throughput: state writes and reads per second, one after another (as
the engine issues them) and many at once (as a parallel group does), and a whole run."""

from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from kubesteps import SimpleStep, SQLiteStateKeeper, StepsEngine, StepState, StepStatus

OPS = 2_000
CONCURRENT = 50
RUN_STEPS = 500


def state(i: int) -> StepState:
    return StepState(
        name=f"step-{i % 200}",
        status=StepStatus.SUCCEEDED,
        reason="Succeeded",
        message="completed",
        attempts=1,
        started_at=datetime.now(UTC),
        finished_at=datetime.now(UTC),
        outputs={"index": i},
    )


async def sequential(keeper: SQLiteStateKeeper) -> tuple[float, float]:
    start = time.perf_counter()
    for i in range(OPS):
        await keeper.set_step_state(state(i))
    writes = OPS / (time.perf_counter() - start)
    start = time.perf_counter()
    for i in range(OPS):
        await keeper.get_step_state(f"step-{i % 200}")
    reads = OPS / (time.perf_counter() - start)
    return writes, reads


async def concurrent(keeper: SQLiteStateKeeper) -> float:
    start = time.perf_counter()
    for batch in range(0, OPS, CONCURRENT):
        await asyncio.gather(
            *(keeper.set_step_state(state(i)) for i in range(batch, batch + CONCURRENT))
        )
    return OPS / (time.perf_counter() - start)


async def whole_run(path: Path) -> float:
    async def noop() -> None:
        return None

    keeper = SQLiteStateKeeper(path, scope="run")
    engine = StepsEngine(
        [SimpleStep(name=f"s{i}", run=noop) for i in range(RUN_STEPS)], keeper=keeper
    )
    start = time.perf_counter()
    await engine.run()
    elapsed = time.perf_counter() - start
    keeper.close()
    return elapsed / RUN_STEPS


async def measure() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        keeper = SQLiteStateKeeper(path, scope="bench")
        writes, reads = await sequential(keeper)
        batched = await concurrent(keeper)
        keeper.close()
        per_step = await whole_run(path)
    print(
        f"SQLite keeper (WAL, synchronous=NORMAL, one worker-thread hop per call), "
        f"{OPS:,} operations:"
    )
    print(f"  writes, one at a time      {writes:10,.0f} /s")
    print(f"  reads, one at a time       {reads:10,.0f} /s")
    print(f"  writes, {CONCURRENT} at a time        {batched:10,.0f} /s")
    print(
        f"  engine run, {RUN_STEPS} no-op steps {per_step * 1e6:10,.0f} µs/step "
        "(one read and two writes each)"
    )


def main() -> None:
    asyncio.run(measure())
