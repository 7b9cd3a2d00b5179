"""States that outlive the process: the SQLite keeper, one scope per pipeline."""

import asyncio
import tempfile
from pathlib import Path

from kubesteps import OutcomeKind, SimpleStep, SQLiteStateKeeper, StepsEngine, WaitError

ready = False


def wait_for_volume() -> None:
    if not ready:
        raise WaitError("volume not bound", delay=5)


def build_steps() -> list[SimpleStep]:
    return [
        SimpleStep(name="create-volume", run=lambda: {"volume": "pv-42"}),
        SimpleStep(name="wait-for-volume", run=wait_for_volume),
    ]


async def main(path: Path) -> None:
    global ready
    keeper = SQLiteStateKeeper(path, scope="pipelines/default/shop")
    outcome = await StepsEngine(build_steps(), keeper=keeper).run()
    assert outcome.kind is OutcomeKind.WAIT
    keeper.close()

    # Later, maybe in another process: a new engine picks up where the first stopped.
    ready = True
    keeper = SQLiteStateKeeper(path, scope="pipelines/default/shop")
    outcome = await StepsEngine(build_steps(), keeper=keeper).run()
    assert outcome.kind is OutcomeKind.DONE
    states = await keeper.states()
    assert states["create-volume"].outputs == {"volume": "pv-42"}
    print({name: state.status.value for name, state in states.items()})
    keeper.close()


with tempfile.TemporaryDirectory() as tmp:
    asyncio.run(main(Path(tmp) / "states.db"))
