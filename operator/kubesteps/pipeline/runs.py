"""Runs: the identity of one execution of a Pipeline's work, and the verbs that steer it.

A Pipeline stays one declarative object; what it does is organised in runs. A run starts
when the Pipeline is created, when what defines its work changes (``specHash``: the steps
and every other field that changes what runs, not ``suspend``, ``resyncPeriod``,
``timeout`` or ``historyLimit``), or on an explicit ``rerun``. Step records belong to a
run, so pausing, editing labels or an operator restart never re-runs a finished step.

Everything here is pure: the reconciler reads ``status.run`` and the annotations, asks
``advance`` what this pass means for the run, and writes the answer with the pass's status
patch. Verbs (``kubesteps.dev/retry``, ``/rerun``, ``/cancel``) are annotations whose value
is a token: a token is acted on once; the last one handled per verb is kept in
``status.handledTokens``, so a replay (an operator restart between acting and removing the
annotation, or a re-applied manifest) is ignored.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from kubesteps.engine.elapsed import format_elapsed
from kubesteps.kube.conditions import stamp

DOMAIN = "kubesteps.dev"
# Applied in this order when several arrive together: the constructive verbs win.
VERBS = ("cancel", "retry", "rerun")
VERB_ANNOTATIONS = {verb: f"{DOMAIN}/{verb}" for verb in VERBS}

# Triggers and phases are open enums: readers must accept values they do not know.
CREATED, SPEC_CHANGED, RERUN, RETRY, SCHEDULE = (
    "Created",
    "SpecChanged",
    "Rerun",
    "Retry",
    "Schedule",
)
RUNNING, SUSPENDED, SUCCEEDED, FAILED, CANCELLED = (
    "Running",
    "Suspended",
    "Succeeded",
    "Failed",
    "Cancelled",
)
# Not a phase of a run: a scheduled Pipeline that has none yet.
PENDING = "Pending"
TRIGGERS = (CREATED, SPEC_CHANGED, RERUN, RETRY, SCHEDULE)
PHASES = (RUNNING, SUSPENDED, SUCCEEDED, FAILED, CANCELLED)
FINISHED = frozenset({SUCCEEDED, FAILED, CANCELLED})

# Spec fields that pace the work without changing it: a change starts no run.
PACING_FIELDS = frozenset(
    {"suspend", "resyncPeriod", "timeout", "historyLimit", "schedule", "mutex"}
)

DEFAULT_HISTORY_LIMIT = 10
MAX_HISTORY_LIMIT = 50
MAX_RUN_MESSAGE = 256
# Tokens are kept in status: a long one is kept as its digest, and so many per verb.
MAX_TOKEN = 128
MAX_TOKENS_KEPT = 10


def work_hash(spec: Mapping[str, Any]) -> str:
    """The hash of what defines the work: the spec (defaults applied) minus pacing fields."""
    work = {key: value for key, value in spec.items() if key not in PACING_FIELDS}
    text = json.dumps(work, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def token_key(token: str) -> str:
    """How a verb's token is remembered in ``status.handledTokens``."""
    token = token.strip()
    if len(token) <= MAX_TOKEN:
        return token
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()[:32]


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_RUN_MESSAGE else text[: MAX_RUN_MESSAGE - 1] + "…"


@dataclass(frozen=True, kw_only=True)
class Run:
    """``status.run``: one run of a Pipeline."""

    pipeline: str
    number: int
    trigger: str
    phase: str
    spec_hash: str
    started_at: datetime
    finished_at: datetime | None = None
    retries: int = 0
    # When the last retry began: spec.timeout counts from here (or from started_at).
    retried_at: datetime | None = None
    # While suspended: since when; and the suspended time since the clock of spec.timeout
    # started, which does not count against it.
    suspended_at: datetime | None = None
    suspended_seconds: float = 0.0
    # Why a finished run ended as it did (CamelCase, as Ready's reason), and what happened.
    reason: str = ""
    failed_step: str = ""
    message: str = ""
    # How the main steps ended, once they did, while the finally steps run (and after).
    ending: Ending | None = None
    finally_done: bool = False
    # The PipelineTemplates its uses steps expanded: name -> resourceVersion.
    templates: Mapping[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return run_id(self.pipeline, self.number)

    @property
    def pending(self) -> bool:
        """A scheduled Pipeline before its first tick: no run yet (number 0)."""
        return self.number == 0

    @property
    def finalizing(self) -> bool:
        """The main steps ended; the finally steps have not yet."""
        return self.ending is not None and not self.finally_done

    @property
    def finished(self) -> bool:
        return self.phase in FINISHED

    def active_seconds(self, now: datetime) -> float:
        """Time the run has counted against spec.timeout: since it (or its last retry)
        started, minus the time it spent suspended."""
        base = self.retried_at or self.started_at
        paused = self.suspended_seconds
        if self.suspended_at is not None:
            paused += max(0.0, (now - self.suspended_at).total_seconds())
        return max(0.0, (now - base).total_seconds() - paused)

    def suspend(self, now: datetime) -> Run:
        if self.suspended_at is not None or self.finished:
            return self if self.finished else replace(self, phase=SUSPENDED)
        return replace(self, phase=SUSPENDED, suspended_at=now)

    def resume(self, now: datetime) -> Run:
        if self.suspended_at is None:
            return self
        paused = self.suspended_seconds + max(0.0, (now - self.suspended_at).total_seconds())
        phase = RUNNING if self.phase == SUSPENDED else self.phase
        return replace(self, suspended_at=None, suspended_seconds=round(paused), phase=phase)

    def settle(
        self, phase: str, now: datetime, *, reason: str = "", step: str = "", message: str = ""
    ) -> Run:
        """The run in ``phase``; a finished phase gets its finish time (kept if already so)."""
        if phase in FINISHED:
            finished = self.finished_at if self.phase == phase and self.finished_at else now
            ended = self.resume(now) if self.suspended_at is not None else self
            return replace(
                ended,
                phase=phase,
                finished_at=finished,
                reason=reason or phase,
                failed_step=step,
                message=_short(message),
            )
        return replace(self, phase=phase, finished_at=None, reason="", failed_step="", message="")

    def end_main(self, phase: str, *, reason: str = "", step: str = "", message: str = "") -> Run:
        """The main steps ended so; the finally steps come next (the run goes on)."""
        ending = Ending(
            phase=phase, reason=reason or phase, failed_step=step, message=_short(message)
        )
        return replace(self, phase=RUNNING, finished_at=None, ending=ending, finally_done=False)

    def restart(self) -> Run:
        """The main steps start again (a retry): the finally steps will run again after."""
        return replace(self, ending=None, finally_done=False)

    def to_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "number": self.number,
            "id": self.id,
            "trigger": self.trigger,
            "phase": self.phase,
            "startedAt": stamp(self.started_at),
            "specHash": self.spec_hash,
            "retries": self.retries,
        }
        optional: dict[str, Any] = {
            "finishedAt": stamp(self.finished_at) if self.finished_at else None,
            "retriedAt": stamp(self.retried_at) if self.retried_at else None,
            "suspendedAt": stamp(self.suspended_at) if self.suspended_at else None,
            "suspendedSeconds": int(self.suspended_seconds) or None,
            "reason": self.reason or None,
            "failedStep": self.failed_step or None,
            "message": self.message or None,
            "ending": self.ending.to_status() if self.ending is not None else None,
            "finallyDone": True if self.finally_done else None,
            "templates": [
                {"name": name, "resourceVersion": version}
                for name, version in sorted(self.templates.items())
            ]
            or None,
        }
        status.update({key: value for key, value in optional.items() if value is not None})
        return status

    def history_entry(self) -> dict[str, Any]:
        """What ``status.history`` keeps of a run once another has started."""
        entry: dict[str, Any] = {
            "number": self.number,
            "id": self.id,
            "trigger": self.trigger,
            "phase": self.phase,
            "startedAt": stamp(self.started_at),
        }
        if self.finished_at is not None:
            entry["finishedAt"] = stamp(self.finished_at)
        if self.retries:
            entry["retries"] = self.retries
        if self.reason:
            entry["reason"] = self.reason
        if self.failed_step:
            entry["failedStep"] = self.failed_step
        if self.message:
            entry["message"] = self.message
        return entry

    @classmethod
    def from_status(cls, pipeline: str, status: Mapping[str, Any] | None) -> Run | None:
        if not isinstance(status, Mapping) or not status.get("number"):
            return None
        started = _time(status.get("startedAt"))
        if started is None:
            return None
        return cls(
            pipeline=pipeline,
            number=int(status["number"]),
            trigger=str(status.get("trigger") or CREATED),
            phase=str(status.get("phase") or RUNNING),
            spec_hash=str(status.get("specHash") or ""),
            started_at=started,
            finished_at=_time(status.get("finishedAt")),
            retries=int(status.get("retries") or 0),
            retried_at=_time(status.get("retriedAt")),
            suspended_at=_time(status.get("suspendedAt")),
            suspended_seconds=float(status.get("suspendedSeconds") or 0),
            reason=str(status.get("reason") or ""),
            failed_step=str(status.get("failedStep") or ""),
            message=str(status.get("message") or ""),
            ending=Ending.from_status(status.get("ending")),
            finally_done=bool(status.get("finallyDone")),
            templates={
                str(t["name"]): str(t.get("resourceVersion") or "")
                for t in status.get("templates") or []
                if isinstance(t, Mapping) and t.get("name")
            },
        )


@dataclass(frozen=True, kw_only=True)
class Ending:
    """How a run's main steps ended (``status.run.ending``): what finally steps see as
    ``run.phase``, ``run.reason``, ``run.failedStep`` and ``run.message``."""

    phase: str
    reason: str = ""
    failed_step: str = ""
    message: str = ""

    def to_status(self) -> dict[str, Any]:
        status = {"phase": self.phase, "reason": self.reason or self.phase}
        if self.failed_step:
            status["failedStep"] = self.failed_step
        if self.message:
            status["message"] = self.message
        return status

    @classmethod
    def from_status(cls, status: Any) -> Ending | None:
        if not isinstance(status, Mapping) or not status.get("phase"):
            return None
        return cls(
            phase=str(status["phase"]),
            reason=str(status.get("reason") or ""),
            failed_step=str(status.get("failedStep") or ""),
            message=str(status.get("message") or ""),
        )


def run_id(pipeline: str, number: int) -> str:
    return f"{pipeline}-{number}"


@dataclass(frozen=True)
class Verb:
    """A verb annotation seen on the object: which verb, its token, and the value as set
    (what the removal must find: a value with a trailing newline is removed as it is)."""

    verb: str
    token: str
    raw: str = ""

    @property
    def annotation(self) -> str:
        return VERB_ANNOTATIONS[self.verb]


@dataclass(frozen=True)
class Idle:
    """A verb acted on as nothing: it arrived with nothing to do, and why."""

    verb: Verb
    why: str


@dataclass
class RunDecision:
    """What this pass does to the run, before any step runs."""

    run: Run
    # The runs this pass ended by starting another one (for history, events and metrics).
    ended: list[Run] = field(default_factory=list)
    # A run started in this pass: step records of earlier runs are dropped (``carry``: but
    # successes of steps with rerunOnSpecChange: false are kept).
    started: bool = False
    carry: bool = False
    # A cancel was acted on in this pass: the steps at work stop and their Jobs go (even
    # when a retry in the same change then starts them again).
    stop: bool = False
    # Failed (and cancelled, timed-out, rejected) steps start again with fresh attempts.
    reset_failed: bool = False
    acted: list[Verb] = field(default_factory=list)
    replayed: list[Verb] = field(default_factory=list)
    idle: list[Idle] = field(default_factory=list)
    tokens: dict[str, list[str]] = field(default_factory=dict)
    # A schedule tick was not run: a run was at work and concurrencyPolicy is Forbid.
    skipped_tick: datetime | None = None

    @property
    def cancelled(self) -> bool:
        """The run ends cancelled in this pass."""
        return self.stop and self.run.phase == CANCELLED


def handled_tokens(status: Mapping[str, Any]) -> dict[str, list[str]]:
    """``status.handledTokens``: verb -> the tokens acted on, newest first."""
    handled: dict[str, list[str]] = {}
    for verb, tokens in (status.get("handledTokens") or {}).items():
        if isinstance(tokens, str):  # one token per verb, as the first release kept them
            tokens = [tokens]
        if isinstance(tokens, list):
            handled[str(verb)] = [str(t) for t in tokens][:MAX_TOKENS_KEPT]
    return handled


def advance(
    *,
    pipeline: str,
    status: Mapping[str, Any],
    spec_hash: str,
    annotations: Mapping[str, str],
    now: datetime,
    failed_steps: bool = False,
    adopt_since: datetime | None = None,
    invalid: bool = False,
    scheduled: bool = False,
    tick: datetime | None = None,
    replace_active: bool = False,
) -> RunDecision:
    """Decide the run of this pass from the stored status, the work's hash and the verbs.

    ``failed_steps``: the current run has failed step records (a retry has work even when
    the run itself succeeded, thanks to ``continueOnError``). ``adopt_since``: the status
    was written before runs existed, for the current generation, from this time on: its step
    records become run 1's, which started then. ``invalid``: the spec cannot be read now; a
    cancel still stops the run, a retry or rerun waits for a fixed spec (ignored).

    ``scheduled``: the Pipeline runs on a schedule: no run starts at creation (the run is
    pending, number 0, until the first tick), and a change of the work starts a run only
    when one is at work (the next tick runs the new work otherwise). ``tick``: a schedule
    tick is due; it starts a run, unless one is at work: then ``replace_active`` (policy
    Replace) cancels that one, and otherwise the tick is skipped (policy Forbid).
    """
    tokens = handled_tokens(status)
    current = Run.from_status(pipeline, status.get("run"))
    if current is None and scheduled and adopt_since is None:
        decision = RunDecision(pending(pipeline, spec_hash, now), tokens=tokens)
    elif current is None:
        run = Run(
            pipeline=pipeline,
            number=1,
            trigger=CREATED,
            phase=RUNNING,
            spec_hash=spec_hash,
            started_at=adopt_since or now,
        )
        decision = RunDecision(run, started=adopt_since is None, tokens=tokens)
    elif current.spec_hash != spec_hash and scheduled and current.finished:
        decision = RunDecision(current, tokens=tokens)  # the next tick runs the new work
    elif current.spec_hash != spec_hash:
        decision = RunDecision(current, tokens=tokens)
        _start(decision, SPEC_CHANGED, spec_hash, now, "the spec changed")
        decision.carry = True
    else:
        decision = RunDecision(current, tokens=tokens)

    fresh: dict[str, Verb] = {}
    for verb in _verbs(annotations):
        key = token_key(verb.token)
        if key in tokens.get(verb.verb, []):
            decision.replayed.append(verb)
            continue
        tokens[verb.verb] = [key, *tokens.get(verb.verb, [])][:MAX_TOKENS_KEPT]
        fresh[verb.verb] = verb
    decision.tokens = tokens

    if invalid:
        for name in ("retry", "rerun"):
            if name in fresh:
                decision.idle.append(Idle(fresh.pop(name), "the spec is invalid: fix it first"))
    rerun = fresh.pop("rerun", None)
    if rerun is not None:
        # A run from scratch makes a cancel or a retry of the old one moot.
        for moot in fresh.values():
            decision.idle.append(Idle(moot, "a rerun asked for at the same time wins"))
        if decision.started:  # a run started in this pass already: make it a rerun
            decision.run = replace(decision.run, trigger=RERUN)
        else:
            _start(decision, RERUN, spec_hash, now, "a rerun was asked for")
        decision.carry = False
        decision.acted.append(rerun)
        if tick is not None and not replace_active:
            decision.skipped_tick = tick
        return decision
    if tick is not None:
        run = decision.run
        if run.pending or run.finished:
            _start(decision, SCHEDULE, spec_hash, now, "a schedule tick")
            decision.carry = False
        elif replace_active:
            _start(
                decision, SCHEDULE, spec_hash, now, "replaced at a schedule tick", reason="Replaced"
            )
            decision.carry = False
        else:
            decision.skipped_tick = tick

    cancel = fresh.get("cancel")
    if cancel is not None:
        if decision.run.pending:
            decision.idle.append(Idle(cancel, "no run has started yet, nothing to cancel"))
        elif decision.run.finished:
            decision.idle.append(
                Idle(cancel, f"run {decision.run.id} is {decision.run.phase}, nothing to cancel")
            )
        else:
            decision.stop = True
            decision.run = decision.run.settle(
                CANCELLED,
                now,
                reason="Cancelled",
                message=f"cancelled by {cancel.annotation}={cancel.token}",
            )
            decision.acted.append(cancel)
    retry = fresh.get("retry")
    if retry is not None:
        run = decision.run
        if run.pending:
            decision.idle.append(Idle(retry, "no run has started yet, nothing to retry"))
        elif decision.started:
            decision.idle.append(Idle(retry, f"run {run.id} has just started"))
        elif run.phase not in (FAILED, CANCELLED) and not failed_steps:
            decision.idle.append(
                Idle(retry, f"run {run.id} is {run.phase} with no failed step, nothing to retry")
            )
        else:
            decision.reset_failed = True
            # A fresh budget for spec.timeout: it counts from the retry (suspension, which
            # the reconciler applies again, counted from now on).
            decision.run = replace(
                run.settle(RUNNING, now),
                trigger=RETRY,
                retries=run.retries + 1,
                retried_at=now,
                suspended_seconds=0.0,
                suspended_at=None,
            )
            decision.acted.append(retry)
    return decision


def pending(pipeline: str, spec_hash: str, now: datetime) -> Run:
    """No run yet: a scheduled Pipeline before its first tick."""
    return Run(
        pipeline=pipeline,
        number=0,
        trigger=SCHEDULE,
        phase=PENDING,
        spec_hash=spec_hash,
        started_at=now,
    )


def _start(
    decision: RunDecision,
    trigger: str,
    spec_hash: str,
    now: datetime,
    why: str,
    *,
    reason: str = "Superseded",
) -> None:
    old = decision.run
    number = old.number + 1
    if not old.finished and not old.pending:
        old = old.settle(
            CANCELLED,
            now,
            reason=reason,
            message=f"superseded by run {run_id(old.pipeline, number)}: {why}",
        )
    if not old.pending:
        decision.ended.append(old)
    decision.run = Run(
        pipeline=old.pipeline,
        number=number,
        trigger=trigger,
        phase=RUNNING,
        spec_hash=spec_hash,
        started_at=now,
    )
    decision.started = True


def _verbs(annotations: Mapping[str, str]) -> list[Verb]:
    found = []
    for verb in VERBS:
        value = annotations.get(VERB_ANNOTATIONS[verb])
        if value is not None and str(value).strip():
            found.append(Verb(verb, str(value).strip(), str(value)))
    return found


def rotate(history: list[Mapping[str, Any]] | None, ended: list[Run], limit: int) -> list[Any]:
    """``status.history``: the runs before the current one, newest first, at most ``limit``."""
    entries = [run.history_entry() for run in reversed(ended)] + list(history or [])
    seen: set[int] = set()
    unique = []
    for entry in entries:
        number = int(entry.get("number") or 0)
        if number not in seen:
            seen.add(number)
            unique.append(entry)
    return unique[:limit]


def timeout_message(limit_text: str, ran: float) -> str:
    return f"run exceeded spec.timeout {limit_text} (ran {format_elapsed(ran)})"


# -- approvals --------------------------------------------------------------------------

APPROVAL_PREFIX = f"{DOMAIN}/approve."
REJECTIONS = frozenset({"false", "no", "reject", "rejected"})
# Values that approve without naming anyone.
ANONYMOUS = frozenset({"true", "yes", "approve", "approved"})


@dataclass(frozen=True)
class ApprovalAnswer:
    """An approval annotation read: approve or reject, by whom, and for which run."""

    approved: bool
    by: str
    run: int | None  # the run it names, or None: whichever run is waiting
    value: str


def read_approval(value: str, pipeline: str) -> ApprovalAnswer | None:
    """Read ``kubesteps.dev/approve.STEP``: ``<answer>`` or ``<answer>@<run id>``.

    The answer is ``approve``/``yes``/``true``, ``reject``/``no``/``false``, or a name
    (which approves, and is recorded as the approver). A trailing ``@<pipeline>-<number>``
    binds it to that run; any other ``@`` belongs to the name (``alice@example.com``).
    """
    text = str(value).strip()
    if not text:
        return None
    run = None
    match = re.fullmatch(rf"(.*)@{re.escape(pipeline)}-([0-9]+)", text, flags=re.DOTALL)
    if match is not None:
        text, run = match.group(1).strip(), int(match.group(2))
        if not text:
            text = "approve"
    word = text.lower()
    if word in REJECTIONS:
        return ApprovalAnswer(False, "", run, str(value).strip())
    return ApprovalAnswer(True, "" if word in ANONYMOUS else text, run, str(value).strip())


def approvals(annotations: Mapping[str, str]) -> dict[str, str]:
    """Step name -> annotation value, for every approval annotation."""
    return {
        key[len(APPROVAL_PREFIX) :]: str(value)
        for key, value in annotations.items()
        if key.startswith(APPROVAL_PREFIX)
    }


def consumed(record: Mapping[str, Any] | None, value: str) -> bool:
    """Whether a step's record shows it acted on this approval value."""
    if not record:
        return False
    outputs = record.get("outputs") or {}
    return (
        isinstance(outputs, Mapping)
        and outputs.get("value") == value
        and record.get("phase") in ("Succeeded", "Failed")
    )


MAX_HANDLED_APPROVALS = 200


def handled_approvals(status: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """``status.handledApprovals``: step -> (the answer last acted on, the run it answered).

    An answer is used once: the same value seen again on the same step (its removal did not
    land, or a re-applied manifest brought it back) answers nothing."""
    handled: dict[str, tuple[str, str]] = {}
    for entry in status.get("handledApprovals") or []:
        if isinstance(entry, Mapping) and entry.get("step"):
            handled[str(entry["step"])] = (str(entry.get("value", "")), str(entry.get("run", "")))
    return handled


def record_approvals(
    handled: Mapping[str, tuple[str, str]], used: Mapping[str, tuple[str, str]]
) -> list[dict[str, str]]:
    """``status.handledApprovals`` with ``used`` (step -> (value, run)) added, newest last."""
    merged = {k: v for k, v in handled.items() if k not in used}
    merged.update(used)
    entries = [{"step": step, "value": value, "run": run} for step, (value, run) in merged.items()]
    return entries[-MAX_HANDLED_APPROVALS:]
