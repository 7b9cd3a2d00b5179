"""The ``Pipeline`` custom resource as pydantic models: the one source of the spec's shape.

YAML uses camelCase (``continueOnError``), Python snake_case (``continue_on_error``).
Checks that relate fields (one kind per step, bounds between durations) and those that need
the whole tree (unique names, CEL, action parameters, nesting depth) run in wrap
validators that read the data as written, before and whatever pydantic's field checks
find, so every problem is reported at once and a parsed ``Pipeline`` is always a valid
one; ``kubesteps.plan.validate.prepare`` gives them as readable errors.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any, Literal, Self

import pydantic
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)
from pydantic.config import JsonDict, JsonValue

from kubesteps.pipeline import semantics
from kubesteps.pipeline.durations import DurationError, parse_duration
from kubesteps.pipeline.issues import Issue, raw_fields, with_issues
from kubesteps.pipeline.params import known_actions
from kubesteps.pipeline.runs import DEFAULT_HISTORY_LIMIT, MAX_HISTORY_LIMIT
from kubesteps.pipeline.types import (
    ACTION_NAME_PATTERN,
    DNS1123_LABEL_PATTERN,
    DNS1123_SUBDOMAIN_PATTERN,
    SPEC_CONFIG,
    CelIdentifier,
    ConditionType,
    DnsLabel,
    PositiveDuration,
)

API_VERSION = "kubesteps.dev/v1alpha1"
KIND = "Pipeline"

MAX_TOP_LEVEL_STEPS = 100
# Nested lists are smaller: the API server multiplies the cost of every CEL rule by the
# largest number of objects the rule can apply to (100 * 16 * 16 * 16 at the deepest level),
# and refuses a CRD whose rules add up to more than its budget. kube-apiserver 1.37 refused
# 20 (1.6 times the budget) and 18 (1.18 times); 16 uses about 83% of it (tests/cluster
# installs the CRD on a real server).
MAX_NESTED_STEPS = 16
MAX_CONCURRENCY = 100
MAX_WHEN = 16
MAX_EXPRESSION_LENGTH = 2048

CelExpression = Annotated[str, StringConstraints(min_length=1, max_length=MAX_EXPRESSION_LENGTH)]

_STEP_KINDS = ("action", "parallel", "group", "forEach", "switch", "uses")
MAX_SWITCH_CASES = 16
MAX_FINALLY_STEPS = 20
MAX_PARAMS = 64
MAX_NEEDS = 32
NEED_PHASES = ("Succeeded", "Failed", "Skipped", "Finished")
MAX_PARAMS_BYTES = 64 * 1024
MAX_ENUM = 64
_ACTION_NAMES: list[JsonValue] = list(known_actions())

# A list of named steps is a map keyed by name for the API server: it refuses duplicate
# names in one list without a CEL rule, and server-side apply merges steps by name.
_STEP_LIST: JsonDict = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}


class Throttle(BaseModel):
    """Run the step at most once per interval; the last run time survives restarts."""

    model_config = SPEC_CONFIG

    interval: PositiveDuration = Field(description="Minimum time between two runs; > 0.")
    ensure_success: bool = Field(
        default=False,
        description="Count only successful runs: after a failure the step may run again at once.",
    )
    partition_key: str | None = Field(
        default=None,
        max_length=256,
        description="Throttle separately per key (may use ${ } templates, e.g. per forEach item).",
    )
    initial_delay: PositiveDuration | None = Field(
        default=None,
        description=(
            "Delay the first run by a random time up to this bound (spreads load after a "
            "restart); at most the interval. Without it the first run happens at once."
        ),
    )

    @model_validator(mode="wrap")
    @classmethod
    def _delay_within_interval(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        issues = []
        if not isinstance(data, cls):
            raw = raw_fields(cls, data)
            interval, delay = _duration(raw.get("interval")), _duration(raw.get("initialDelay"))
            if interval is not None and delay is not None and delay > interval:
                issues.append(Issue(("initialDelay",), "must not be longer than the interval"))
        return with_issues("Throttle", data, handler, issues)


def _duration(value: Any) -> timedelta | None:
    """A duration as written, or None when it is missing or malformed (reported elsewhere)."""
    if isinstance(value, timedelta):
        return value
    try:
        return parse_duration(value) if isinstance(value, str) else None
    except DurationError:
        return None


class Backoff(BaseModel):
    """Exponential backoff between attempts: initial * factor**n, capped at max, +/- jitter."""

    model_config = SPEC_CONFIG

    initial: PositiveDuration = Field(
        default=timedelta(seconds=1), description="Delay before the first retry (default 1s)."
    )
    max: PositiveDuration = Field(
        default=timedelta(minutes=5), description="Longest delay between attempts (default 5m)."
    )
    factor: float = Field(
        default=2.0, ge=1.0, le=10.0, description="Growth factor per attempt, 1..10 (default 2)."
    )
    jitter: float = Field(
        default=0.2,
        ge=0.0,
        le=1.0,
        description="Random spread as a fraction of the delay, 0..1 (default 0.2).",
    )

    @model_validator(mode="wrap")
    @classmethod
    def _bounds(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        issues = []
        if not isinstance(data, cls):
            raw = raw_fields(cls, data)
            initial = _duration(raw.get("initial", "1s"))
            longest = _duration(raw.get("max", "5m"))
            if initial is not None and initial > timedelta(hours=1):
                issues.append(Issue(("initial",), "must be at most 1h"))
            if longest is not None and longest > timedelta(hours=24):
                issues.append(Issue(("max",), "must be at most 24h"))
            if initial is not None and longest is not None and longest < initial:
                issues.append(Issue(("max",), "must not be shorter than initial"))
        return with_issues("Backoff", data, handler, issues)


class RetryPolicy(BaseModel):
    """How often a failing step is tried again before it fails for good (Stalled)."""

    model_config = SPEC_CONFIG

    limit: int = Field(
        default=3,
        ge=0,
        le=100,
        description="Retries after the first attempt, 0..100 (default 3; 0 = never retry).",
    )
    backoff: Backoff = Field(default_factory=Backoff, description="Delays between attempts.")


def _not_set(field: str) -> str:
    return f"!(has(self.{field}) && self.{field})"


_SEQUENTIAL_OPTIONS_MESSAGE = (
    "continueOnError and finishOnSuccess are not allowed on sub-steps of parallel or "
    "forEach: they run side by side"
)


class ParallelSpec(BaseModel):
    """Sub-steps that run side by side; the group succeeds when all of them do."""

    model_config = ConfigDict(
        **SPEC_CONFIG,
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.steps.all(s, "
                    + " && ".join(
                        _not_set(f).replace("self.", "s.")
                        for f in ("continueOnError", "finishOnSuccess")
                    )
                    + ")",
                    "message": _SEQUENTIAL_OPTIONS_MESSAGE,
                }
            ]
        },
    )

    steps: list[Step] = Field(
        min_length=1,
        max_length=MAX_NESTED_STEPS,
        description=f"The sub-steps (1..{MAX_NESTED_STEPS}).",
        json_schema_extra=_STEP_LIST,
    )
    max_concurrency: int = Field(
        default=10, ge=1, le=MAX_CONCURRENCY, description="Sub-steps running at once (1..100)."
    )
    fail_fast: bool = Field(
        default=False,
        description="Cancel the other sub-steps when one fails (default: wait for all).",
    )

    @model_validator(mode="wrap")
    @classmethod
    def _no_sequential_options(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        issues = []
        steps = raw_fields(cls, data).get("steps") if not isinstance(data, cls) else None
        if isinstance(steps, list):
            issues = [
                Issue(("steps", index, *loc), message)
                for index, step in enumerate(steps)
                for loc, message in _sequential_option_conflicts(step)
            ]
        return with_issues("ParallelSpec", data, handler, issues)


class GroupSpec(BaseModel):
    """Sub-steps that run in order (or as a graph, by their needs), as one step to the
    parent."""

    model_config = SPEC_CONFIG

    steps: list[Step] = Field(
        min_length=1,
        max_length=MAX_NESTED_STEPS,
        description=f"The sub-steps (1..{MAX_NESTED_STEPS}).",
        json_schema_extra=_STEP_LIST,
    )
    max_concurrency: int = Field(
        default=10,
        ge=1,
        le=MAX_CONCURRENCY,
        description="Sub-steps running at once when their needs make a graph (1..100).",
    )


class SwitchSpec(BaseModel):
    """Exclusive branches: the first step whose ``when`` all hold runs, the others are
    skipped; a last step without ``when`` is the default."""

    model_config = SPEC_CONFIG

    steps: list[Step] = Field(
        min_length=1,
        max_length=MAX_SWITCH_CASES,
        description=(
            "The branches (1..16), tried in order; each a step whose when decides whether "
            "it is taken. A branch without when (the last) is the default."
        ),
        json_schema_extra=_STEP_LIST,
    )


class ForEachSpec(BaseModel):
    """One generated sub-step per item of a list; sub-steps are named <name>-<index>."""

    model_config = ConfigDict(
        **SPEC_CONFIG,
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": " && ".join(
                        _not_set(f).replace("self.", "self.step.")
                        for f in ("continueOnError", "finishOnSuccess")
                    ),
                    "message": _SEQUENTIAL_OPTIONS_MESSAGE,
                }
            ]
        },
    )

    items: CelExpression = Field(
        description="A CEL expression (no ${ }) that yields a list, e.g. self.spec.targets."
    )
    as_: CelIdentifier = Field(
        default="item",
        alias="as",
        description="The variable holding the current item in the template (default item).",
    )
    max_concurrency: int = Field(
        default=10, ge=1, le=MAX_CONCURRENCY, description="Sub-steps running at once (1..100)."
    )
    fail_fast: bool = Field(
        default=False,
        description="Cancel the other sub-steps when one fails (default: wait for all).",
    )
    step: StepTemplate = Field(
        description="The step run for each item; it has no name (the sub-steps get one)."
    )

    @model_validator(mode="wrap")
    @classmethod
    def _no_sequential_options(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        issues = []
        if not isinstance(data, cls):
            issues = [
                Issue(("step", *loc), message)
                for loc, message in _sequential_option_conflicts(raw_fields(cls, data).get("step"))
            ]
        return with_issues("ForEachSpec", data, handler, issues)


def _sequential_option_conflicts(step: Any) -> list[tuple[tuple[str, ...], str]]:
    """Options that only make sense for steps run one after another (``step`` as written)."""
    found: list[tuple[tuple[str, ...], str]] = []
    raw = raw_fields(StepBase, step)
    if raw.get("continueOnError") is True:
        found.append(
            (
                ("continueOnError",),
                "not allowed on a sub-step of parallel or forEach: sub-steps run side by "
                "side, so there is no next step to continue with; use failFast: false on "
                "the group (the default) to let the other sub-steps finish",
            )
        )
    if raw.get("finishOnSuccess") is True:
        found.append(
            (
                ("finishOnSuccess",),
                "not allowed on a sub-step of parallel or forEach: sub-steps run side by "
                "side, so there are no later steps to skip",
            )
        )
    return found


# Any JSON value; typed as such for the CRD (a structural schema allows one untyped node
# when unknown fields are kept).
ParamValue = Annotated[
    pydantic.JsonValue,
    WithJsonSchema({"x-kubernetes-preserve-unknown-fields": True}),
]


NeedPhase = Literal["Succeeded", "Failed", "Skipped", "Finished"]


class Need(BaseModel):
    """A step of the same list that must end first, in a given phase."""

    model_config = SPEC_CONFIG

    step: DnsLabel = Field(description="The name of a step of the same list.")
    phase: NeedPhase = Field(
        default="Succeeded",
        description=(
            "How it must have ended: Succeeded (default), Failed, Skipped, or Finished "
            "(any of those)."
        ),
    )


def _need(value: Any) -> Any:
    if isinstance(value, str):
        return {"step": value}
    if isinstance(value, Mapping | Need):
        return value
    raise ValueError("must be a step name or {step: NAME, phase: PHASE}")


# A need is a step name, or a Need for another phase than Succeeded. The CRD cannot type a
# list item as "a string or an object", so it keeps the items as written; the operator (and
# `kubesteps validate`) checks them in full.
NeedRef = Annotated[
    Need,
    BeforeValidator(_need),
    WithJsonSchema({"x-kubernetes-preserve-unknown-fields": True}),
]


class UsesSpec(BaseModel):
    """Run a PipelineTemplate's steps here, as a group, with values for its params."""

    model_config = SPEC_CONFIG

    template: Annotated[
        str, StringConstraints(max_length=253, pattern=DNS1123_SUBDOMAIN_PATTERN)
    ] = Field(description="The name of a PipelineTemplate in the Pipeline's namespace.")
    params: dict[str, ParamValue] = Field(
        default_factory=dict,
        max_length=MAX_PARAMS,
        description=(
            "Values for the template's params (name -> any JSON value; ${ } templates may "
            "read the Pipeline's params and self). Params left out take the template's "
            "default; one without a default must be given."
        ),
    )


class StepBase(BaseModel):
    """What every step has, named or not: options plus exactly one step kind."""

    model_config = ConfigDict(
        **SPEC_CONFIG,
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": " + ".join(f"(has(self.{kind}) ? 1 : 0)" for kind in _STEP_KINDS)
                    + " == 1",
                    "message": (
                        "a step needs exactly one of action, parallel, group, forEach, switch, uses"
                    ),
                },
                {
                    "rule": "!has(self.with) || has(self.action)",
                    "message": "with is only allowed together with action",
                },
            ]
        },
    )

    when: list[CelExpression] = Field(
        default_factory=list,
        max_length=MAX_WHEN,
        description="CEL predicates (no ${ }); the step runs only when all are true.",
    )
    abort_on_false: bool = Field(
        default=False,
        description="A false predicate aborts the whole run instead of skipping the step.",
    )
    continue_on_error: bool = Field(
        default=False, description="A failure of this step does not stop the steps after it."
    )
    finish_on_success: bool = Field(
        default=False,
        description="Success ends the enclosing group (or the whole run at the top level).",
    )
    rerun_on_spec_change: bool = Field(
        default=True,
        description=(
            "Run again in a run started by a spec change even if it succeeded in the run "
            "before (default true); a rerun runs every step."
        ),
    )
    timeout: PositiveDuration | None = Field(
        default=None,
        description=(
            "Fail an attempt that takes longer than this, also one that waits over several "
            "passes (waitFor, job, approval, delay); the retry policy applies."
        ),
    )
    throttle: Throttle | None = Field(default=None, description="Run at most once per interval.")
    retry: RetryPolicy = Field(
        default_factory=RetryPolicy, description="Retries with exponential backoff."
    )
    action: str | None = Field(
        default=None,
        max_length=63,
        pattern=ACTION_NAME_PATTERN,
        description="The action this step runs (a simple step).",
        json_schema_extra={"enum": _ACTION_NAMES},
    )
    params: dict[str, Any] | None = Field(
        default=None,
        alias="with",
        description="The action's parameters; values may use ${ } CEL templates.",
    )
    parallel: ParallelSpec | None = Field(default=None, description="Sub-steps run side by side.")
    group: GroupSpec | None = Field(default=None, description="Sub-steps run in order.")
    for_each: ForEachSpec | None = Field(
        default=None, description="A step template run once per item of a list."
    )
    switch: SwitchSpec | None = Field(
        default=None, description="Branches of which exactly one runs (or none)."
    )
    uses: UsesSpec | None = Field(
        default=None,
        description="A PipelineTemplate's steps, run as a group (named <step>-<their name>).",
    )

    @property
    def kind(self) -> str:
        """Which of action/parallel/group/forEach this step is."""
        return next(kind for kind in _STEP_KINDS if self._kind_value(kind) is not None)

    @property
    def children(self) -> list[StepBase]:
        """The steps directly inside this one (empty for an action step)."""
        if self.parallel is not None:
            return list(self.parallel.steps)
        if self.group is not None:
            return list(self.group.steps)
        if self.for_each is not None:
            return [self.for_each.step]
        if self.switch is not None:
            return list(self.switch.steps)
        return []  # an action, or a template's steps: known once the template is read

    def _kind_value(self, kind: str) -> object:
        return {
            "action": self.action,
            "parallel": self.parallel,
            "group": self.group,
            "forEach": self.for_each,
            "switch": self.switch,
            "uses": self.uses,
        }[kind]

    @model_validator(mode="wrap")
    @classmethod
    def _one_kind(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        return with_issues(cls.__name__, data, handler, _kind_issues(cls, data))


def _kind_issues(model: type[StepBase], data: Any) -> list[Issue]:
    if isinstance(data, model) or not isinstance(data, Mapping):
        return []
    raw = raw_fields(model, data)
    present = [kind for kind in _STEP_KINDS if raw.get(kind) is not None]
    issues = []
    if len(present) != 1:
        found = ", ".join(present) if present else "none"
        issues.append(
            Issue(
                (),
                "a step needs exactly one of action, parallel, group, forEach, switch, uses; "
                f"found: {found}",
            )
        )
    if raw.get("with") is not None and raw.get("action") is None:
        issues.append(Issue(("with",), "only allowed together with action"))
    return issues


class Step(StepBase):
    """A named step."""

    name: DnsLabel = Field(
        description="Unique across the whole pipeline; a DNS-1123 label (<= 63 chars)."
    )
    needs: list[NeedRef] = Field(
        default_factory=list,
        max_length=MAX_NEEDS,
        description=(
            "Steps of the same list that must end first: a name (it must have succeeded) or "
            "{step, phase} with phase Succeeded, Failed, Skipped or Finished. A list with "
            "needs runs as a graph: each step starts once its needs are met, side by side "
            "with the others up to the list's maxConcurrency."
        ),
    )
    condition: ConditionType | None = Field(
        default=None,
        description=(
            "A status condition type recorded for this step (CamelCase, unique, not "
            "Ready/Reconciling/Stalled)."
        ),
    )


class StepTemplate(StepBase):
    """The step a forEach runs per item: no name and no condition (the sub-steps get them)."""

    @model_validator(mode="wrap")
    @classmethod
    def _no_name_or_condition(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        issues = []
        if isinstance(data, Mapping) and ("name" in data or "condition" in data):
            if "name" in data:
                issues.append(
                    Issue(
                        ("name",),
                        "a forEach template has no name: its sub-steps are named "
                        "<forEach step name>-<index>",
                    )
                )
            if "condition" in data:
                issues.append(
                    Issue(
                        ("condition",),
                        "not allowed in a forEach template: every item would write the same "
                        "condition; set condition on the forEach step itself",
                    )
                )
            # Checked without them, so that the rest of the template is checked too.
            data = {k: v for k, v in data.items() if k not in ("name", "condition")}
        return with_issues("StepTemplate", data, handler, issues)


class Metadata(BaseModel):
    """The object's metadata; only the name is checked, the rest is the API server's."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)

    name: str = Field(max_length=253, pattern=DNS1123_SUBDOMAIN_PATTERN)
    namespace: str | None = Field(default=None, max_length=63, pattern=DNS1123_SUBDOMAIN_PATTERN)


class Param(BaseModel):
    """An input of the Pipeline, read in CEL as ``params.<name>``."""

    model_config = SPEC_CONFIG

    name: CelIdentifier = Field(description="A CEL identifier, unique among the params.")
    value: ParamValue = Field(description="Any JSON value: a string, number, list, object...")
    description: Annotated[str, StringConstraints(max_length=1024)] | None = Field(
        default=None, description="What the param is for."
    )
    enum: list[ParamValue] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_ENUM,
        description="The values allowed (1..64); the value must be one of them.",
    )


ConcurrencyPolicy = Literal["Forbid", "Replace"]


class ScheduleSpec(BaseModel):
    """Runs on a cron schedule: each tick starts a new run (trigger Schedule)."""

    model_config = SPEC_CONFIG

    cron: Annotated[str, StringConstraints(min_length=1, max_length=128)] = Field(
        description=(
            "Five fields (minute hour day-of-month month day-of-week), e.g. '*/15 * * * *', "
            "or @yearly, @monthly, @weekly, @daily, @hourly."
        )
    )
    time_zone: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        default="UTC", description="An IANA time zone name (default UTC), e.g. Europe/Berlin."
    )
    concurrency_policy: ConcurrencyPolicy = Field(
        default="Forbid",
        description=(
            "A tick while a run is at work: Forbid skips the tick (default), Replace cancels "
            "the run and starts a new one."
        ),
    )
    starting_deadline: PositiveDuration | None = Field(
        default=None,
        description=(
            "A tick missed by more than this (the operator was down) is skipped; without it "
            "one catch-up run follows any number of missed ticks."
        ),
    )
    suspend: bool = Field(
        default=False,
        description="Stop scheduling (a run at work goes on; spec.suspend pauses it).",
    )
    suspend_after_failures: int | None = Field(
        default=None,
        ge=1,
        le=100,
        description=(
            "After this many scheduled runs failed in a row, scheduling suspends itself "
            "(Ready reason ScheduleSuspended) until the schedule is changed or a run succeeds."
        ),
    )


MAX_MUTEXES = 8
_MUTEX_NAME = re.compile(DNS1123_LABEL_PATTERN)


def mutex_names(value: Any) -> Any:
    """``mutex: deploy`` or ``mutex: [deploy, db]``, as a tuple of names."""
    if isinstance(value, tuple):
        return value
    names = [value] if isinstance(value, str) else value
    if names == []:  # as a dump writes "none"
        return ()
    if not isinstance(names, list):
        raise ValueError(
            f"must be a mutex name or a list of up to {MAX_MUTEXES} of them; got {value!r}"
        )
    if len(names) > MAX_MUTEXES:
        raise ValueError(f"at most {MAX_MUTEXES} mutexes; got {len(names)}")
    for name in names:
        if not isinstance(name, str) or len(name) > 47 or not _MUTEX_NAME.fullmatch(name):
            raise ValueError(
                f"{name!r} is not a mutex name: a DNS-1123 label of at most 47 characters "
                "(lower-case letters, digits and '-'), e.g. deploy-prod"
            )
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"{duplicates[0]!r} is given twice")
    return tuple(names)


# A name or a list of names: the CRD keeps either (a structural schema has no "string or
# list"), and the operator checks it as kubesteps validate does.
MutexNames = Annotated[
    tuple[str, ...],
    BeforeValidator(mutex_names),
    WithJsonSchema(
        {
            "x-kubernetes-preserve-unknown-fields": True,
            "description": (
                "A mutex name, or a list of up to 8: at most one run in the namespace holds "
                "each at a time (a Lease kubesteps-mutex-<name>); the others wait in line, "
                "Ready reason MutexHeld."
            ),
        }
    ),
]


class PipelineSpec(BaseModel):
    """What the pipeline does: its steps, and how the whole run is paced."""

    model_config = SPEC_CONFIG

    suspend: bool = Field(
        default=False,
        description=(
            "Pause the run: no new steps start while true; clearing it continues the same "
            "run (finished steps do not run again)."
        ),
    )
    resync_period: PositiveDuration | None = Field(
        default=None,
        description="After the run is done, check everything again this often.",
    )
    timeout: PositiveDuration | None = Field(
        default=None,
        description=(
            "Fail a run that takes longer than this (time suspended does not count; a "
            "retry starts the clock again)."
        ),
    )
    history_limit: int = Field(
        default=DEFAULT_HISTORY_LIMIT,
        ge=0,
        le=MAX_HISTORY_LIMIT,
        description="How many earlier runs status.history keeps, 0..50 (default 10).",
    )
    params: list[Param] = Field(
        default_factory=list,
        max_length=MAX_PARAMS,
        description="Inputs, read in CEL as params.<name> (at most 64, 64 KiB in all).",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    schedule: ScheduleSpec | None = Field(
        default=None, description="Run on a cron schedule: each tick starts a new run."
    )
    mutex: MutexNames = Field(default=())
    steps: list[Step] = Field(
        min_length=1,
        max_length=MAX_TOP_LEVEL_STEPS,
        description="The steps, run in order, or as a graph when they have needs (1..100).",
        json_schema_extra=_STEP_LIST,
    )
    max_concurrency: int = Field(
        default=10,
        ge=1,
        le=MAX_CONCURRENCY,
        description=(
            "Steps (and finally steps) running at once when their needs make a graph "
            "(1..100, default 10)."
        ),
    )
    finally_: list[Step] = Field(
        default_factory=list,
        alias="finally",
        max_length=MAX_FINALLY_STEPS,
        description=(
            "Steps that run once the steps above end (succeeded, failed, timed out or "
            "cancelled), with run.phase and run.failedStep in CEL; at most 20, nesting 2 "
            "levels deep."
        ),
        json_schema_extra=_STEP_LIST,
    )

    @model_validator(mode="wrap")
    @classmethod
    def _whole_tree(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        issues = (
            []
            if isinstance(data, cls)
            else semantics.check_spec(
                raw_fields(cls, data),
                spec_fields=[field.alias or name for name, field in cls.model_fields.items()],
            )
        )
        return with_issues("PipelineSpec", data, handler, issues)


class Pipeline(BaseModel):
    """A Pipeline object as stored by the API server (``status`` is carried, not checked)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    api_version: Literal["kubesteps.dev/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["Pipeline"]
    metadata: Metadata
    spec: PipelineSpec
    status: dict[str, Any] | None = None

    @model_validator(mode="wrap")
    @classmethod
    def _spec_and_metadata(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        issues = []
        if not isinstance(data, cls) and isinstance(data, Mapping):
            meta, spec = data.get("metadata"), data.get("spec")
            namespace = meta.get("namespace") if isinstance(meta, Mapping) else None
            if isinstance(spec, Mapping) and isinstance(namespace, str):
                issues = [
                    Issue(("spec", *issue.loc), issue.message)
                    for issue in semantics.check_namespaces(spec, namespace)
                ]
        return with_issues("Pipeline", data, handler, issues)


ParallelSpec.model_rebuild()
GroupSpec.model_rebuild()
ForEachSpec.model_rebuild()
SwitchSpec.model_rebuild()
