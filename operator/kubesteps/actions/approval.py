"""``approval``: wait until someone approves (or rejects) the step with an annotation."""

from __future__ import annotations

from pydantic import BaseModel

from kubesteps.actions.base import ActionContext, Outputs
from kubesteps.engine import PermanentError, WaitError
from kubesteps.kube.conditions import stamp
from kubesteps.kube.meta import meta_of
from kubesteps.pipeline.params import ApprovalParams, approval_annotation
from kubesteps.pipeline.runs import read_approval

APPROVAL_RECHECK = 30.0


class ApprovalAction:
    """Reads the Pipeline as this pass sees it: setting the annotation changes the Pipeline,
    which starts a new pass; the periodic recheck only covers a missed event.

    An answer belongs to the run waiting for it: the operator removes the annotation once
    the step has acted on it (so the next run asks again), and hides an answer that names
    another run (``<answer>@<run id>``) from the step.
    """

    name: str = "approval"
    params: type[BaseModel] = ApprovalParams

    async def run(self, ctx: ActionContext, params: ApprovalParams) -> Outputs:
        annotation = approval_annotation(ctx.name)
        annotations = meta_of(ctx.pipeline).annotations
        answer = read_approval(str(annotations.get(annotation, "")), ctx.pipeline_name)
        if answer is None or (answer.run is not None and answer.run != ctx.run_number):
            raise WaitError(
                f"waiting for approval of run {ctx.run_id}: {params.message} (approve with: "
                f"kubectl annotate pipeline {ctx.pipeline_name} {annotation}=<your name>; "
                f"reject with {annotation}=reject)",
                APPROVAL_RECHECK,
            )
        when = stamp(ctx.clock())
        if not answer.approved:
            raise PermanentError(
                f"rejected: annotation {annotation} is {answer.value!r}",
                reason="Rejected",
                outputs={
                    "rejectedBy": answer.by,
                    "rejectedAt": when,
                    "value": answer.value,
                    "run": ctx.run_id,
                },
            )
        return {
            "approvedBy": answer.by,
            "approvedAt": when,
            "value": answer.value,
            "run": ctx.run_id,
        }
