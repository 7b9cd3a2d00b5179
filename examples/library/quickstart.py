"""Quickstart: three steps, an engine, one run, and the outcome as a value."""

import asyncio

from kubesteps import MemoryStateKeeper, OutcomeKind, SimpleStep, StepContext, StepsEngine


async def fetch_config() -> dict[str, str]:
    return {"image": "shop:1.4.2"}  # a returned mapping becomes the step's outputs


async def deploy(ctx: StepContext) -> None:
    config = await ctx.outputs_of("fetch_config")
    print(f"deploying {config['image']} (attempt {ctx.attempt})")


def announce() -> None:  # sync functions, with or without ctx, work too
    print("deployed")


async def main() -> None:
    keeper = MemoryStateKeeper()
    engine = StepsEngine(
        [SimpleStep(run=fetch_config), SimpleStep(run=deploy), SimpleStep(run=announce)],
        keeper=keeper,
    )
    outcome = await engine.run()
    assert outcome.kind is OutcomeKind.DONE
    print([state.status.value for state in keeper.transitions][:2])  # ['running', 'succeeded']

    # A second pass skips every step that already succeeded.
    assert (await engine.run()).kind is OutcomeKind.DONE


asyncio.run(main())
