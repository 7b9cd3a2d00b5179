"""A graph of steps: needs instead of list order, branches side by side, a handled failure."""

import asyncio

from kubesteps import Need, OutcomeKind, PermanentError, SimpleStep, StepsEngine

done: list[str] = []


async def build() -> None:
    await asyncio.sleep(0.01)
    done.append("build")


async def test() -> None:
    await asyncio.sleep(0.01)
    done.append("test")


def ship() -> None:
    raise PermanentError("the registry refused the image")


def alert() -> None:
    done.append("alert")


async def main() -> None:
    engine = StepsEngine(
        [
            SimpleStep(name="build", run=build),
            SimpleStep(name="test", run=test),
            SimpleStep(name="ship", run=ship, needs=["build", "test"]),
            SimpleStep(name="alert", run=alert, needs=[Need("ship", "Failed")]),
        ],
        max_concurrency=4,
    )
    outcome = await engine.run()
    # ship failed, and alert (which needs ship to have failed) handled it: the run is done.
    assert outcome.kind is OutcomeKind.DONE, outcome
    assert sorted(done[:2]) == ["build", "test"]
    assert done[2:] == ["alert"]
    state = await engine.keeper.get_step_state("ship")
    assert state is not None
    print(f"built and tested side by side, ship {state.status.value}, alert ran: {done}")


if __name__ == "__main__":
    asyncio.run(main())
