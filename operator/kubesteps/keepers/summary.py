"""The run-level summary: what ``Ready``, ``Reconciling`` and ``Stalled`` say, and how an
engine outcome becomes one (``summarize``)."""

from __future__ import annotations

from dataclasses import dataclass

from kubesteps.engine import Outcome, OutcomeKind


@dataclass(frozen=True, slots=True, kw_only=True)
class Summary:
    """The run-level state shown in ``Ready``/``Reconciling``/``Stalled``."""

    ready: str  # "True" / "False"
    reason: str
    message: str
    reconciling: bool
    stalled: bool
    current_step: str = ""


def summarize(outcome: Outcome) -> Summary:
    """The summary conditions for an engine outcome."""
    # A message that names its step already ("step 'x' timed out after 2m") gets no prefix.
    named = outcome.step and outcome.message.startswith(f"step {outcome.step!r}")
    where = f"step {outcome.step!r}: " if outcome.step and not named else ""
    text = f"{where}{outcome.message}".strip(": ")
    if outcome.kind is OutcomeKind.DONE:
        return Summary(
            ready="True",
            reason="Succeeded",
            message="all steps are done",
            reconciling=False,
            stalled=False,
        )
    if outcome.kind is OutcomeKind.WAIT:
        return Summary(
            ready="False",
            reason="Waiting",
            message=text,
            reconciling=True,
            stalled=False,
            current_step=outcome.step or "",
        )
    if outcome.kind is OutcomeKind.RETRY:
        return Summary(
            ready="False",
            reason="Retrying",
            message=text,
            reconciling=True,
            stalled=False,
            current_step=outcome.step or "",
        )
    if outcome.kind is OutcomeKind.ABORTED:
        return Summary(
            ready="False",
            reason="Aborted",
            message=text,
            reconciling=True,
            stalled=False,
            current_step=outcome.step or "",
        )
    return Summary(
        ready="False",
        reason="Failed",
        message=text,
        reconciling=False,
        stalled=True,
        current_step=outcome.step or "",
    )
