"""Steering the engine with exceptions: wait, retry, carry on, or fail for good."""

import asyncio
from datetime import timedelta

from kubesteps import (
    ExpectedError,
    MemoryStateKeeper,
    OutcomeKind,
    PermanentError,
    RetryableError,
    RetryPolicy,
    SimpleStep,
    StepsEngine,
    WaitError,
    requeue_delay,
)

pods_ready = 0


def wait_for_pods() -> None:
    if pods_ready < 3:
        # Not a failure: recorded as waiting, no attempt counted, on_fail not called.
        raise WaitError(f"{pods_ready}/3 pods ready", delay=timedelta(seconds=10))


def call_api() -> None:
    # Retried with the step's RetryPolicy; retry_after overrides the backoff once.
    raise RetryableError("429 Too Many Requests", retry_after=30)


def reject_bad_input() -> None:
    raise PermanentError("spec.replicas must be >= 0")  # no retry can fix this


def refuse_with_details() -> None:
    # The step's recorded reason becomes "Rejected" and its outputs are kept.
    raise PermanentError("rejected by bob", reason="Rejected", outputs={"rejectedBy": "bob"})


def nothing_to_do() -> None:
    raise ExpectedError("already up to date")  # carry on; the step's state is unchanged


async def main() -> None:
    outcome = await StepsEngine([SimpleStep(run=wait_for_pods)]).run()
    assert (outcome.kind, outcome.delay, outcome.step) == (OutcomeKind.WAIT, 10.0, "wait_for_pods")
    assert requeue_delay(outcome) == 10.0

    outcome = await StepsEngine([SimpleStep(run=call_api)]).run()
    assert (outcome.kind, outcome.delay) == (OutcomeKind.RETRY, 30.0)

    outcome = await StepsEngine([SimpleStep(run=reject_bad_input)]).run()
    assert outcome.kind is OutcomeKind.FAILED
    assert requeue_delay(outcome) is None  # failed for good: wait for a change

    keeper = MemoryStateKeeper()
    outcome = await StepsEngine([SimpleStep(run=refuse_with_details)], keeper=keeper).run()
    state = keeper.states["refuse_with_details"]
    assert (outcome.kind, state.reason, state.outputs) == (
        OutcomeKind.FAILED,
        "Rejected",
        {"rejectedBy": "bob"},
    )

    # An unexpected exception is retried too; after `limit` attempts it fails for good.
    def crash() -> None:
        raise KeyError("status")

    engine = StepsEngine([SimpleStep(name="crash", run=crash, retry=RetryPolicy(limit=1))])
    outcome = await engine.run()
    assert (outcome.kind, outcome.step) == (OutcomeKind.FAILED, "crash")

    # A wrapper raised `from` a signal is still read as that signal.
    def wrapped() -> None:
        try:
            nothing_to_do()
        except ExpectedError as err:
            raise RuntimeError("while syncing") from err

    assert (await StepsEngine([SimpleStep(run=wrapped)]).run()).kind is OutcomeKind.DONE
    print("all outcomes as expected")


asyncio.run(main())
