"""approval: waits for the kubesteps.dev/approve.<step> annotation on the Pipeline."""

from __future__ import annotations

from kubesteps.engine import OutcomeKind, StepStatus
from kubesteps.pipeline.params import approval_annotation

from .conftest import RunFactory, pipeline_object, run_of


async def test_waits_while_the_annotation_is_absent_and_says_how_to_approve(
    make_run: RunFactory,
) -> None:
    run = make_run("approval", {"message": "deploy to prod?"}, step="gate")
    outcome = await run.once()
    assert outcome.kind is OutcomeKind.WAIT
    assert outcome.delay == 30
    assert run.state.status is StepStatus.WAITING
    assert "deploy to prod?" in run.state.message
    assert "kubesteps.dev/approve.gate" in run.state.message


async def test_an_approval_by_name_succeeds_and_names_the_approver(make_run: RunFactory) -> None:
    run = make_run("approval", {}, step="gate")
    await run.once()
    run.pipeline = pipeline_object(annotations={approval_annotation("gate"): "alice"})
    assert (await run.once()).kind is OutcomeKind.DONE
    assert run.state.outputs == {
        "approvedBy": "alice",
        "approvedAt": "2025-01-01T12:00:00Z",
        "value": "alice",
        "run": "demo-1",
    }


async def test_a_plain_true_approves_without_a_name(make_run: RunFactory) -> None:
    run = make_run(
        "approval",
        {},
        step="gate",
        pipeline=pipeline_object(annotations={approval_annotation("gate"): "true"}),
    )
    assert (await run.once()).kind is OutcomeKind.DONE
    assert run.state.outputs is not None
    assert (run.state.outputs["approvedBy"], run.state.outputs["value"]) == ("", "true")


async def test_an_empty_value_does_not_approve(make_run: RunFactory) -> None:
    run = make_run(
        "approval",
        {},
        step="gate",
        pipeline=pipeline_object(annotations={approval_annotation("gate"): ""}),
    )
    assert (await run.once()).kind is OutcomeKind.WAIT


async def test_the_annotation_of_another_step_does_not_approve(make_run: RunFactory) -> None:
    run = make_run(
        "approval",
        {},
        step="gate",
        pipeline=pipeline_object(annotations={approval_annotation("other"): "alice"}),
    )
    assert (await run.once()).kind is OutcomeKind.WAIT


async def test_a_rejection_fails_the_step_for_good(make_run: RunFactory) -> None:
    run = make_run(
        "approval",
        {},
        step="gate",
        pipeline=pipeline_object(annotations={approval_annotation("gate"): "Rejected"}),
    )
    outcome = await run.once()
    assert outcome.kind is OutcomeKind.FAILED
    assert run.state.status is StepStatus.FAILED
    assert run.state.message.startswith("rejected")
    assert run.state.attempts == 1
    assert run.state.reason == "Rejected"
    assert run.state.outputs == {
        "rejectedBy": "",
        "rejectedAt": "2025-01-01T12:00:00Z",
        "value": "Rejected",
        "run": "demo-1",
    }


async def test_an_answer_bound_to_this_run_counts_and_names_the_approver(
    make_run: RunFactory,
) -> None:
    run = make_run(
        "approval",
        {},
        step="gate",
        run=run_of(3),
        pipeline=pipeline_object(annotations={approval_annotation("gate"): "bob@demo-3"}),
    )
    assert (await run.once()).kind is OutcomeKind.DONE
    assert run.state.outputs is not None
    assert run.state.outputs["approvedBy"] == "bob"


async def test_an_answer_bound_to_another_run_does_not_count(make_run: RunFactory) -> None:
    run = make_run(
        "approval",
        {},
        step="gate",
        run=run_of(3),
        pipeline=pipeline_object(annotations={approval_annotation("gate"): "reject@demo-2"}),
    )
    assert (await run.once()).kind is OutcomeKind.WAIT
    assert "run demo-3" in run.state.message


async def test_an_email_address_is_a_name_not_a_run(make_run: RunFactory) -> None:
    run = make_run(
        "approval",
        {},
        step="gate",
        pipeline=pipeline_object(annotations={approval_annotation("gate"): "ann@example.com"}),
    )
    assert (await run.once()).kind is OutcomeKind.DONE
    assert run.state.outputs is not None
    assert run.state.outputs["approvedBy"] == "ann@example.com"
