"""``approval``: wait until someone approves (or rejects) the step with an annotation."""

from __future__ import annotations

from pydantic import BaseModel

from kubesteps.actions.base import ActionContext, Outputs
from kubesteps.actions.params import ApprovalParams, approval_annotation
from kubesteps.engine import PermanentError, WaitError

APPROVAL_RECHECK = 30.0
REJECTIONS = frozenset({"false", "no", "reject", "rejected"})
# Values that approve without naming anyone.
ANONYMOUS = frozenset({"true", "yes", "approve", "approved"})


class ApprovalAction:
    """Reads the Pipeline as this pass sees it: setting the annotation changes the Pipeline,
    which starts a new pass; the periodic recheck only covers a missed event."""

    name: str = "approval"
    params: type[BaseModel] = ApprovalParams

    async def run(self, ctx: ActionContext, params: ApprovalParams) -> Outputs:
        annotation = approval_annotation(ctx.name)
        annotations = (ctx.pipeline.get("metadata") or {}).get("annotations") or {}
        value = str(annotations.get(annotation, "")).strip()
        if not value:
            raise WaitError(
                f"waiting for approval: {params.message} (approve with: kubectl annotate "
                f"pipeline {ctx.pipeline_name} {annotation}=<your name>; reject with "
                f"{annotation}=reject)",
                APPROVAL_RECHECK,
            )
        if value.lower() in REJECTIONS:
            raise PermanentError(f"rejected: annotation {annotation} is {value!r}")
        return {"approvedBy": "" if value.lower() in ANONYMOUS else value, "value": value}
