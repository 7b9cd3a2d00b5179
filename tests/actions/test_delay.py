"""delay: waits by requeue for its duration, then succeeds."""

from __future__ import annotations

from kubesteps.engine import OutcomeKind, StepStatus

from .conftest import FakeClock, RunFactory


async def test_first_pass_waits_the_whole_duration(make_run: RunFactory) -> None:
    run = make_run("delay", {"duration": "30s"})
    outcome = await run.once()
    assert outcome.kind is OutcomeKind.WAIT
    assert outcome.delay == 30
    assert run.state.status is StepStatus.WAITING
    assert run.state.message.startswith("delaying for 30s")


async def test_an_early_pass_waits_only_for_what_is_left(
    make_run: RunFactory, clock: FakeClock
) -> None:
    run = make_run("delay", {"duration": "1m"})
    await run.once()
    clock.advance(45)
    outcome = await run.once()
    assert outcome.kind is OutcomeKind.WAIT
    assert outcome.delay == 15
    assert "15s left" in run.state.message


async def test_succeeds_once_the_duration_has_passed(
    make_run: RunFactory, clock: FakeClock
) -> None:
    run = make_run("delay", {"duration": "30s"})
    await run.once()
    clock.advance(10)
    await run.once()
    clock.advance(20)
    outcome = await run.once()
    assert outcome.kind is OutcomeKind.DONE
    assert run.state.status is StepStatus.SUCCEEDED
    # The delay decides at once, without suspending: no `running` record between the waits.
    assert run.statuses == ["waiting", "waiting", "succeeded"]


async def test_a_late_pass_succeeds_at_once(make_run: RunFactory, clock: FakeClock) -> None:
    run = make_run("delay", {"duration": "30s"})
    await run.once()
    clock.advance(3600)
    assert (await run.once()).kind is OutcomeKind.DONE


async def test_a_duration_that_is_not_positive_fails_the_step(make_run: RunFactory) -> None:
    run = make_run("delay", {"duration": "0s"})
    outcome = await run.once()
    assert outcome.kind is OutcomeKind.FAILED
    assert "with.duration" in run.state.message
    assert "greater than 0" in run.state.message
