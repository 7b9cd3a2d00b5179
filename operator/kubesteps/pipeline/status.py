"""The shape of a Pipeline's ``status``: the source of the CRD's status schema.

The operator writes this; the models exist so writers and readers agree on field names and
limits, and so the CRD lets the API server refuse a malformed status write.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

# metav1.Condition's rules, so that `kubectl wait --for=condition=Ready` and kstatus work.
from kubesteps.kube.conditions import CONDITION_REASON_PATTERN, CONDITION_TYPE_PATTERN
from kubesteps.pipeline.runs import (
    MAX_HANDLED_APPROVALS,
    MAX_HISTORY_LIMIT,
    MAX_RUN_MESSAGE,
    MAX_TOKENS_KEPT,
    PHASES,
    TRIGGERS,
)

# An annotation value may be long: what is kept of an answer is its token_key.
MAX_APPROVAL_VALUE = 200

MAX_CONDITION_MESSAGE = 32768
# status.steps is bounded: forEach can generate many sub-steps, and an object must stay
# well under etcd's size limit (forEach items are capped, and the keeper refuses more).
MAX_STEP_RECORDS = 1000
MAX_STEP_MESSAGE = 1024
# A job step's Pod log as kept in its record: the last lines, at most this many characters.
MAX_LOG_TAIL = 2048

StepPhase = Literal[
    "Pending", "Running", "Waiting", "Retrying", "Succeeded", "Failed", "Skipped", "Throttled"
]

_STATUS_CONFIG = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class Condition(BaseModel):
    """A standard Kubernetes condition (the metav1.Condition shape)."""

    model_config = _STATUS_CONFIG

    type: Annotated[str, StringConstraints(pattern=CONDITION_TYPE_PATTERN, max_length=316)]
    status: Literal["True", "False", "Unknown"]
    observed_generation: int | None = Field(default=None, ge=0)
    last_transition_time: datetime
    reason: Annotated[
        str, StringConstraints(pattern=CONDITION_REASON_PATTERN, min_length=1, max_length=1024)
    ]
    message: Annotated[str, StringConstraints(max_length=MAX_CONDITION_MESSAGE)]


class StepRecord(BaseModel):
    """What happened to one step (generated forEach sub-steps included)."""

    model_config = _STATUS_CONFIG

    name: Annotated[str, StringConstraints(min_length=1, max_length=253)]
    item: Annotated[str, StringConstraints(max_length=256)] | None = Field(
        default=None, description="For a forEach sub-step: the item it runs for, shortened."
    )
    phase: StepPhase
    reason: Annotated[str, StringConstraints(max_length=128)] | None = Field(
        default=None, description="Why the step is in this phase (CamelCase)."
    )
    attempts: int = Field(default=0, ge=0)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    next_run_at: datetime | None = Field(
        default=None, description="When a waiting, retrying or throttled step runs next."
    )
    message: Annotated[str, StringConstraints(max_length=MAX_STEP_MESSAGE)] | None = None
    outputs: dict[str, Any] | None = Field(
        default=None, description="What the step's action returned, for later steps' CEL."
    )
    run: int | None = Field(
        default=None, ge=1, description="The run (status.run.number) the record belongs to."
    )
    from_run: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Kept from this earlier run (rerunOnSpecChange: false): the step did not run again."
        ),
    )
    attempt_started_at: datetime | None = Field(
        default=None,
        description="When the current attempt began, if not at startedAt (timeouts count from it).",
    )
    disabled: bool | None = Field(
        default=None, description="Disabled at run time by another step; skipped until enabled."
    )
    inserted: list[Annotated[str, StringConstraints(max_length=253)]] | None = Field(
        default=None, max_length=100, description="Steps this step inserted at run time."
    )
    log_tail: Annotated[str, StringConstraints(max_length=MAX_LOG_TAIL)] | None = Field(
        default=None,
        description="A job step: the last lines of its Pod's log, once the Pod ended.",
    )


RunTrigger = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Za-z]*$", max_length=32)]
RunPhase = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Za-z]*$", max_length=32)]
RunMessage = Annotated[str, StringConstraints(max_length=MAX_RUN_MESSAGE)]
StepName = Annotated[str, StringConstraints(max_length=253)]


class RunEnding(BaseModel):
    """How a run's steps ended (before its finally steps)."""

    model_config = _STATUS_CONFIG

    phase: RunPhase
    reason: RunPhase | None = None
    failed_step: StepName | None = None
    message: RunMessage | None = None


class ScheduleStatus(BaseModel):
    """Where a scheduled Pipeline stands."""

    model_config = _STATUS_CONFIG

    since: datetime | None = Field(
        default=None, description="When the schedule was first seen: no tick before counts."
    )
    last_schedule_time: datetime | None = Field(
        default=None, description="The last tick acted on (run, skipped or missed)."
    )
    next_schedule_time: datetime | None = None
    last_successful_time: datetime | None = Field(
        default=None, description="When a scheduled run last succeeded."
    )
    consecutive_failures: int = Field(
        default=0, ge=0, description="Scheduled runs that failed in a row."
    )
    suspended: bool | None = Field(
        default=None,
        description="Scheduling suspended itself after spec.schedule.suspendAfterFailures.",
    )
    suspended_for: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        default=None,
        description="The schedule it suspended for: a change of spec.schedule resumes it.",
    )


class UsedTemplate(BaseModel):
    """A PipelineTemplate a run expanded."""

    model_config = _STATUS_CONFIG

    name: Annotated[str, StringConstraints(max_length=253)]
    resource_version: Annotated[str, StringConstraints(max_length=64)] = Field(
        description="The template's resourceVersion when the run expanded it."
    )


class RunStatus(BaseModel):
    """The run the step records belong to."""

    model_config = _STATUS_CONFIG

    number: int = Field(ge=1, description="1, 2, 3...: one more for every new run.")
    id: Annotated[str, StringConstraints(max_length=300)] = Field(
        description="<pipeline name>-<number>, the name Events, Jobs and traces use."
    )
    trigger: RunTrigger = Field(
        description=f"What started the run: {', '.join(TRIGGERS)} (more may come)."
    )
    phase: RunPhase = Field(description=f"One of {', '.join(PHASES)} (more may come).")
    started_at: datetime
    finished_at: datetime | None = None
    spec_hash: Annotated[str, StringConstraints(max_length=64)] = Field(
        description="Hash of what defines the work; a new run starts when it changes."
    )
    retries: int = Field(default=0, ge=0, description="Retries of this run (kubesteps.dev/retry).")
    retried_at: datetime | None = Field(default=None, description="When the last retry began.")
    suspended_at: datetime | None = Field(
        default=None, description="Since when the run is suspended (spec.suspend)."
    )
    suspended_seconds: int | None = Field(
        default=None,
        ge=0,
        description="Time suspended so far; it does not count against spec.timeout.",
    )
    reason: RunPhase | None = Field(
        default=None, description="Why a finished run ended so (e.g. TimedOut, Superseded)."
    )
    failed_step: StepName | None = Field(
        default=None, description="The step that failed (or was at work when it ended)."
    )
    message: RunMessage | None = None
    ending: RunEnding | None = Field(
        default=None,
        description="How the steps ended, once they did: what the finally steps see as run.",
    )
    finally_done: bool | None = Field(default=None, description="The finally steps are done.")
    templates: list[UsedTemplate] | None = Field(
        default=None,
        max_length=64,
        description="The PipelineTemplates the run's uses steps expanded, at which version.",
    )


class HistoryEntry(BaseModel):
    """An earlier run, as the history keeps it."""

    model_config = _STATUS_CONFIG

    number: int = Field(ge=1)
    id: Annotated[str, StringConstraints(max_length=300)]
    trigger: RunTrigger
    phase: RunPhase
    started_at: datetime
    finished_at: datetime | None = None
    retries: int | None = Field(default=None, ge=0)
    reason: RunPhase | None = None
    failed_step: StepName | None = None
    message: RunMessage | None = None


Token = Annotated[str, StringConstraints(max_length=200)]


TokenList = Annotated[list[Token], Field(max_length=MAX_TOKENS_KEPT)]


class HandledTokens(BaseModel):
    """The tokens acted on, per verb, newest first."""

    model_config = _STATUS_CONFIG

    retry: TokenList | None = None
    rerun: TokenList | None = None
    cancel: TokenList | None = None


class HandledApproval(BaseModel):
    """An approval answer acted on: it answers nothing again."""

    model_config = _STATUS_CONFIG

    step: StepName
    value: Annotated[str, StringConstraints(max_length=MAX_APPROVAL_VALUE)]
    run: Annotated[str, StringConstraints(max_length=300)]


class PipelineStatus(BaseModel):
    """What the operator reports about a Pipeline."""

    model_config = _STATUS_CONFIG

    observed_generation: int | None = Field(default=None, ge=0)
    current_step: Annotated[str, StringConstraints(max_length=253)] | None = Field(
        default=None, description="The step the run is at (running, waiting or failed)."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=512,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )
    steps: list[StepRecord] = Field(
        default_factory=list,
        max_length=MAX_STEP_RECORDS,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
        },
    )
    step_conditions: list[Annotated[str, StringConstraints(max_length=316)]] | None = Field(
        default=None,
        max_length=512,
        description=(
            "The condition types the operator wrote for steps; a type no longer declared by "
            "the spec is removed from conditions (and only such a type)."
        ),
    )
    run: RunStatus | None = Field(default=None, description="The current run.")
    schedule: ScheduleStatus | None = Field(
        default=None, description="The schedule's state (spec.schedule)."
    )
    history: list[HistoryEntry] | None = Field(
        default=None,
        max_length=MAX_HISTORY_LIMIT,
        description="Earlier runs, newest first (at most spec.historyLimit).",
    )
    handled_tokens: HandledTokens | None = Field(
        default=None,
        description=(
            "The last tokens acted on per verb annotation (kubesteps.dev/retry, rerun, "
            "cancel), newest first; a token seen again is ignored."
        ),
    )
    handled_approvals: list[HandledApproval] | None = Field(
        default=None,
        max_length=MAX_HANDLED_APPROVALS,
        description=(
            "The approval answers acted on, per step (the last one each): the same answer "
            "seen again is ignored."
        ),
    )
    last_runs: dict[str, datetime] | None = Field(
        default=None,
        description="When each throttled step (or throttle partition key) last ran.",
    )
    kopf: dict[str, Any] | None = Field(
        default=None, description="Bookkeeping of the kopf framework; not for users."
    )
