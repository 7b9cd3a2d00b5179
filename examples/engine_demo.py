"""`make demo`: a small deployment pipeline run by the steps engine, pass after pass.

Each pass builds a fresh engine on the same SQLite file, as a restarted operator would: the
steps that succeeded are skipped, a step that waits is checked again, a flaky step is
retried with backoff, and a throttled step is left alone until its interval is up. Every
state transition is printed as it happens, and a table of the final states at the end.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from kubesteps import (
    DynamicStep,
    GroupedSteps,
    Outcome,
    OutcomeKind,
    ParallelSteps,
    RetryableError,
    RetryPolicy,
    SimpleStep,
    SQLiteStateKeeper,
    Step,
    StepContext,
    StepsEngine,
    StepState,
    ThrottlingSettings,
    WaitError,
    requeue_delay,
)

MAX_SLEEP = 0.3  # seconds: the demo does not really wait out the requeue delays
MAX_PASSES = 10

checks = {"database": 0, "pods": 0}


async def render_manifests() -> dict[str, str]:
    return {"image": "shop:1.4.2", "namespace": "shop"}


async def create_database() -> None:
    checks["database"] += 1
    if checks["database"] == 1:
        raise RetryableError("database operator answered 503", retry_after=0.2)


async def apply_deployment(ctx: StepContext) -> dict[str, str]:
    manifests = await ctx.outputs_of("render-manifests")
    return {"deployment": f"{manifests['namespace']}/web ({manifests['image']})"}


async def wait_for_pods() -> None:
    checks["pods"] += 1
    if checks["pods"] < 3:
        raise WaitError(f"{checks['pods']}/3 pods ready", delay=0.2)


def migrations() -> list[Step]:
    # Generated only when the step really runs, from what is pending right now.
    return [SimpleStep(name=f"migrate-{n:03d}", run=lambda: None) for n in (7, 8)]


def steps() -> list[Step]:
    return [
        SimpleStep(name="render-manifests", run=render_manifests),
        SimpleStep(name="create-database", run=create_database),
        DynamicStep(name="migrations", generate=migrations),
        GroupedSteps(
            name="rollout",
            steps=[
                SimpleStep(name="apply-deployment", run=apply_deployment),
                SimpleStep(name="wait-for-pods", run=wait_for_pods),
            ],
        ),
        ParallelSteps(
            name="smoke-tests",
            max_concurrency=2,
            steps=[
                SimpleStep(name=f"smoke-{page}", run=lambda: asyncio.sleep(0.01))
                for page in ("home", "cart", "checkout")
            ],
        ),
        SimpleStep(
            name="notify",
            run=lambda: None,
            throttling=ThrottlingSettings(interval=timedelta(hours=1)),
        ),
    ]


def show(old: StepState | None, new: StepState) -> None:
    before = old.status.value if old is not None else "-"
    detail = f"  {new.message}" if new.message else ""
    print(f"    {new.name:<18} {before:>9} -> {new.status.value:<9}{detail}")


def table(states: dict[str, StepState]) -> None:
    print(f"\n{'step':<18} {'status':<10} {'attempts':>8}  message")
    print("-" * 72)
    for name, state in states.items():
        print(f"{name:<18} {state.status.value:<10} {state.attempts:>8}  {state.message}")


async def one_pass(path: Path, label: str) -> Outcome:
    """One reconcile pass, by a fresh engine and keeper (as after a restart)."""
    print(label)
    keeper = SQLiteStateKeeper(path, scope="shop")
    engine = StepsEngine(
        steps(),
        keeper=keeper,
        on_transition=show,
        retry=RetryPolicy(limit=3, initial=timedelta(seconds=0.2), jitter=timedelta(0)),
        name="shop",
    )
    outcome = await engine.run()
    keeper.close()
    delay = requeue_delay(outcome)
    where = f" at {outcome.step}" if outcome.step else ""
    again = f", look again in {delay:g}s" if delay is not None else ""
    print(f"  => {outcome.kind.value}{where}{again}")
    return outcome


async def demo(path: Path) -> int:
    for number in range(1, MAX_PASSES + 1):
        outcome = await one_pass(path, f"pass {number}")
        if outcome.kind is OutcomeKind.DONE:
            break
        if outcome.kind is OutcomeKind.FAILED:
            return 1
        await asyncio.sleep(min(requeue_delay(outcome) or 0.0, MAX_SLEEP))
    else:
        print(f"not done after {MAX_PASSES} passes")
        return 1
    # A resync pass: everything is skipped by its state, and `notify` is throttled.
    await one_pass(path, "resync pass")
    keeper = SQLiteStateKeeper(path, scope="shop")
    table(await keeper.states())
    keeper.close()
    return 0


def main() -> int:
    # Every transition is printed below; the engine's own retry warnings would repeat them.
    logging.getLogger("kubesteps.engine").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(demo(Path(tmp) / "states.db"))


if __name__ == "__main__":
    sys.exit(main())
