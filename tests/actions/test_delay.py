"""delay: waits by requeue for its duration, then succeeds."""

from __future__ import annotations

import pytest

from kubesteps.engine import OutcomeKind, StepStatus
from kubesteps.plan.validate import validate

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


async def test_until_waits_for_what_is_left_then_succeeds(
    make_run: RunFactory, clock: FakeClock
) -> None:
    run = make_run("delay", {"until": "2025-01-01T12:10:00Z"})  # the clock starts at 12:00
    outcome = await run.once()
    assert outcome.kind is OutcomeKind.WAIT
    assert outcome.delay == 600
    assert run.state.message.startswith("waiting until 2025-01-01T12:10:00Z: 10m left")
    clock.advance(600)
    assert (await run.once()).kind is OutcomeKind.DONE


async def test_until_in_the_past_succeeds_at_once(make_run: RunFactory) -> None:
    run = make_run("delay", {"until": "2025-01-01T13:00:00+02:00"})  # 11:00 UTC
    assert (await run.once()).kind is OutcomeKind.DONE


async def test_an_until_that_is_no_time_fails_the_step_naming_the_field(
    make_run: RunFactory,
) -> None:
    run = make_run("delay", {"until": "tomorrow"})
    outcome = await run.once()
    assert outcome.kind is OutcomeKind.FAILED
    assert "with.until: must be an RFC 3339 time" in run.state.message
    assert "'tomorrow'" in run.state.message


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        (
            {},
            "with: give either duration (e.g. 30s) or until (an RFC 3339 time, or a ${ } "
            "template giving one), not neither",
        ),
        (
            {"duration": "1m", "until": "2025-01-01T12:00:00Z"},
            "with: give either duration (e.g. 30s) or until (an RFC 3339 time, or a ${ } "
            "template giving one), not both",
        ),
        (
            {"until": "2025-01-01 12:00"},
            "with.until: must be an RFC 3339 time with a time zone "
            "such as 2026-12-03T15:00:00Z, or a ${ } template giving one; got '2025-01-01 12:00'",
        ),
    ],
)
def test_validate_refuses_a_delay_without_exactly_one_good_end(
    given: dict[str, str], problem: str
) -> None:
    problems = validate(
        {
            "apiVersion": "kubesteps.dev/v1alpha1",
            "kind": "Pipeline",
            "metadata": {"name": "p"},
            "spec": {"steps": [{"name": "pause", "action": "delay", "with": given}]},
        }
    )
    assert isinstance(problems, list)
    assert [str(p) for p in problems] == [f"spec.steps[0].{problem} [step 'pause']"]
