"""ConditionsKeeper: step states kept in a custom resource's ``status``.

The engine's transitions land in memory; ``commit`` turns them into ``status.steps``
records, one condition per step that declares one, the ``Ready``/``Reconciling``/``Stalled``
summary and ``observedGeneration``, and writes only what changed in one status patch. A step
that keeps running for a while gets one more patch while it runs, so ``kubectl get`` shows
it. A conflict (somebody else wrote in between) re-reads the object and re-applies our
changes on top of theirs; conditions we do not own are never touched.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from opentelemetry import trace

from kubesteps.engine import StepState, StepStatus
from kubesteps.engine.errors import short_message
from kubesteps.engine.keeper import NoWait
from kubesteps.keepers.summary import Summary
from kubesteps.kube.client import ApiError
from kubesteps.kube.conditions import set_condition, stamp
from kubesteps.kube.json_diff import json_diff, size
from kubesteps.kube.merge import merge_diff
from kubesteps.kube.meta import meta_of

log = logging.getLogger("kubesteps.keepers.status_keeper")
tracer = trace.get_tracer("kubesteps.keepers.status_keeper")

SUMMARY_CONDITIONS = ("Ready", "Reconciling", "Stalled")
# The CRD's status schema (pipeline/status.py) allows exactly these; a test keeps them equal.
MAX_RECORDS = 1000
MAX_MESSAGE = 1024
# Far below etcd's ~1.5 MiB object limit: the spec, kopf's annotations and the conditions
# share the object with the step records.
MAX_STATUS_BYTES = 512 * 1024
# Fields a step record keeps besides the step's state, set by its action (ActionContext.
# keep_in_record): the last lines of a job step's Pod log.
KEPT_FIELDS = ("logTail",)


class StaleStatusError(Exception):
    """The object's status was changed by another pass in a way that makes this pass's
    decisions stale (a verb acted on, a new run): its write is dropped, and a fresh pass
    must decide again."""


def status_digest(status: Mapping[str, Any] | None) -> str:
    """A digest of what the operator keeps in a status (kopf's own part left out)."""
    ours = {key: value for key, value in (status or {}).items() if key != "kopf"}
    text = json.dumps(ours, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _run_signature(status: Mapping[str, Any]) -> str:
    """What identifies the state of the run a pass decided from."""
    run = status.get("run") or {}
    return json.dumps(
        [
            run.get("number"),
            run.get("retries"),
            status.get("handledTokens"),
            status.get("handledApprovals"),
        ],
        sort_keys=True,
        default=str,
    )


class StatusStore(Protocol):
    """Where the object lives: the API server (operator) or a local database (``run``)."""

    async def patch(self, status: Mapping[str, Any], resource_version: str | None) -> Any: ...

    async def read(self) -> Any: ...

    async def remove_annotations(self, expected: Mapping[str, str]) -> Any:
        """Remove each annotation of ``expected`` that still has the value given there."""
        ...


@runtime_checkable
class PatchesByOperation(Protocol):
    """A store that can also apply a JSON patch (RFC 6902) to the status, guarded by the
    ``resourceVersion`` it was computed against: a write then sends only the list entries
    that changed, where a merge patch resends whole lists."""

    async def patch_operations(
        self, operations: list[dict[str, Any]], resource_version: str
    ) -> Any: ...


_STEP_CONDITION = {
    StepStatus.SUCCEEDED: ("True", "Succeeded"),
    StepStatus.THROTTLED: ("True", "Throttled"),
    StepStatus.FAILED: ("False", "Failed"),
    StepStatus.SKIPPED: ("False", "Skipped"),
    StepStatus.RUNNING: ("Unknown", "Running"),
    StepStatus.WAITING: ("Unknown", "Waiting"),
    StepStatus.RETRYING: ("Unknown", "Retrying"),
    StepStatus.PENDING: ("Unknown", "Pending"),
}


def _phase(status: StepStatus) -> str:
    return status.value.capitalize()


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), default=str))


SHORT_MESSAGE = 200


def _within_budget(status: dict[str, Any]) -> dict[str, Any]:
    """Keep the whole status well under etcd's object size limit.

    Every part is bounded on its own (outputs 8 KiB a step, messages 1 KiB, 1000 records,
    50 history entries); together they may still add up. Past ``MAX_STATUS_BYTES``, what
    matters least goes first: the log tails of job steps, then the largest step outputs
    (replaced by a marker), then the length of step and condition messages, then the
    messages of earlier runs. States, phases, reasons and times always stay.
    """
    total = _size(status)
    if total <= MAX_STATUS_BYTES:
        return status
    log.warning(
        "the status would be %d bytes, over its budget of %d: trimming it", total, MAX_STATUS_BYTES
    )
    records = list(status.get("steps") or [])
    for index, record in enumerate(records):
        if total > MAX_STATUS_BYTES and "logTail" in record:
            records[index] = {k: v for k, v in record.items() if k != "logTail"}
            total -= _size(record) - _size(records[index])
    sizes = [_size(r["outputs"]) if "outputs" in r else 0 for r in records]
    for index in sorted(range(len(records)), key=lambda i: sizes[i], reverse=True):
        if total <= MAX_STATUS_BYTES or sizes[index] <= 64:
            break
        records[index] = {**records[index], "outputs": {"outputsDropped": True}}
        total -= sizes[index] - _size(records[index]["outputs"])
    status = {**status, "steps": records}
    if total > MAX_STATUS_BYTES:
        status["steps"] = [_shortened(r) for r in status["steps"]]
        status["conditions"] = [_shortened(c) for c in status.get("conditions") or []]
        total = _size(status)
    if total > MAX_STATUS_BYTES and status.get("history"):
        status["history"] = [
            {k: v for k, v in h.items() if k != "message"} for h in status["history"]
        ]
    return status


def _shortened(entry: Mapping[str, Any]) -> dict[str, Any]:
    message = entry.get("message")
    if not isinstance(message, str) or len(message) <= SHORT_MESSAGE:
        return dict(entry)
    return {**entry, "message": message[: SHORT_MESSAGE - 1] + "…"}


class ConditionsKeeper:
    """A ``StateKeeper`` over ``status``; see the module docstring.

    - ``body``: the object as read at the start of the pass (its status is the baseline).
    - ``run``: the number of the run this pass works for. Records of that run are the
      states; a record of an earlier run is dropped, except a success named in ``carry``
      (``rerunOnSpecChange: false`` in a run started by a spec change), which is kept with
      ``fromRun``. ``adopt``: records written before runs existed belong to this run.
      ``None`` keeps every record as it is (the spec cannot be read, so what it keeps is
      unknown).
    - ``reset_failed``: failed records are dropped, so those steps start again with fresh
      attempt counters (a retry).
    - ``conditions``: state name -> condition type, for steps that declare one.
    - ``flush_running_after``: seconds a step may run before its ``running`` state is
      written on its own (``None``: only at commit).

    ``items`` (generated sub-step name -> the forEach item it runs for) is filled in by the
    steps as they are generated, and recorded with each sub-step's state.
    """

    def __init__(
        self,
        store: StatusStore,
        body: Mapping[str, Any],
        *,
        run: int | None = 1,
        carry: frozenset[str] = frozenset(),
        adopt: bool = False,
        conditions: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] | None = None,
        flush_running_after: float | None = 2.0,
        conflict_attempts: int = 5,
    ) -> None:
        self.store = store
        self.items: dict[str, str] = {}
        self.conditions = dict(conditions or {})
        self.run = run
        self.clock = clock or (lambda: datetime.now(UTC))
        self.flush_running_after = flush_running_after
        self.conflict_attempts = conflict_attempts
        self._lock = asyncio.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._summary: Summary | None = None
        self._extra: dict[str, Any] = {}
        self._kept: dict[str, dict[str, Any]] = {}
        self._adopt(body)
        # What the pass decided from: a conflict whose fresh status moved the run on (a
        # verb acted on, a new run) means another pass did it, and this one is stale.
        self._origin = _run_signature(self._status)
        meta = meta_of(body)
        self.generation = meta.generation
        self._object = f"{meta.namespace}/{meta.name}"
        records = {r["name"]: dict(r) for r in self._status.get("steps") or [] if "name" in r}
        if run is not None:
            records = _of_run(records, run, carry=carry, adopt=adopt)
        self._records: dict[str, dict[str, Any]] = records
        # The states the engine sees, and the names changed, in order (for CEL's `steps`).
        self._live: dict[str, StepState] = {
            name: _to_state(record) for name, record in self._records.items()
        }
        self._changes: list[str] = []
        self._last_runs: dict[str, str] = dict(self._status.get("lastRuns") or {})
        self._task: asyncio.Task[None] | None = None
        # The store's JSON patches, while it takes them (None: merge patches only; a server
        # that refuses one ends them for this keeper).
        self._by_operation = store if isinstance(store, PatchesByOperation) else None
        # Only a keeper that knows the current spec's conditions may retire old ones.
        self._prune_conditions = run is not None

    # -- StateKeeper ------------------------------------------------------------------

    async def get_step_state(self, name: str) -> StepState | None:
        return self._live.get(name)

    async def set_step_state(self, state: StepState) -> None:
        self._set_now(state)

    def nowait(self) -> NoWait | None:
        """The synchronous fast path (see ``kubesteps.engine.keeper.nowait_access``)."""
        cls = type(self)
        if (
            cls.get_step_state is not ConditionsKeeper.get_step_state
            or cls.set_step_state is not ConditionsKeeper.set_step_state
        ):
            return None
        return self._live.get, self._set_now

    def _set_now(self, state: StepState) -> None:
        if state.name not in self._records and len(self._records) >= MAX_RECORDS:
            raise RuntimeError(
                f"a Pipeline's status holds at most {MAX_RECORDS} step records; step "
                f"{state.name!r} would be one more (use fewer forEach items)"
            )
        record = _to_record(state, self.run, self.items.get(state.name))
        before = self._records.get(state.name) or {}
        record.update({key: before[key] for key in KEPT_FIELDS if key in before})
        record.update(self._kept.get(state.name, {}))
        self._records[state.name] = record
        self._live[state.name] = state
        self._changes.append(state.name)
        if state.status is StepStatus.RUNNING and self.flush_running_after is not None:
            self._arm_timer()

    async def stop_unfinished(self, reason: str, message: str) -> list[str]:
        """Record every step still at work (running, waiting, retrying) as failed for
        ``reason`` (the run was cancelled or timed out); the names, outermost first."""
        now = self.clock()
        stopped = []
        for name, state in list(self._live.items()):
            if state.status in (StepStatus.RUNNING, StepStatus.WAITING, StepStatus.RETRYING):
                await self.set_step_state(
                    state.evolve(
                        status=StepStatus.FAILED,
                        reason=reason,
                        message=message,
                        finished_at=now,
                        next_run_at=None,
                    )
                )
                stopped.append(name)
        return stopped

    def reset_failed(self) -> list[str]:
        """Forget the failed records (a retry): those steps start again with fresh attempt
        counters. The names forgotten."""
        failed = [name for name, record in self._records.items() if record.get("phase") == "Failed"]
        for name in failed:
            del self._records[name]
            self._live.pop(name, None)
            self._changes.append(name)
        return failed

    def forget(self, names: Collection[str]) -> None:
        """Forget the records of ``names`` (finally steps, before a retried run ends again)."""
        for name in [n for n in self._records if n in names]:
            del self._records[name]
            self._live.pop(name, None)
            self._changes.append(name)

    def keep(self, name: str, fields: Mapping[str, Any]) -> None:
        """Keep ``fields`` (of ``KEPT_FIELDS``) in step ``name``'s record, from its next state
        on, until newer values replace them (a new attempt keeps the last ones meanwhile)."""
        unknown = set(fields) - set(KEPT_FIELDS)
        if unknown:
            raise ValueError(f"not a field a step record keeps: {', '.join(sorted(unknown))}")
        self._kept.setdefault(name, {}).update(fields)
        if name in self._records:
            self._records[name].update(fields)

    def set_run(self, **fields: Any) -> None:
        """Run-level fields written with the next patch (``run``, ``history``,
        ``handledTokens``), as the status has them."""
        self._extra.update(fields)

    async def get_last_run(self, key: str) -> datetime | None:
        return _parse_time(self._last_runs.get(key))

    async def set_last_run(self, key: str, when: datetime) -> None:
        self._last_runs[key] = when.isoformat()

    async def flush(self) -> None:
        """Called by the engine at the end of a run: the writing happens in ``commit``."""

    # -- writing ------------------------------------------------------------------------

    async def commit(self, summary: Summary) -> None:
        """Write the pass's states and ``summary``: at most one patch if nothing conflicts."""
        self._summary = summary
        self.close()
        await self._write()

    def close(self) -> None:
        """Stop the background write of a running step (the pass is over, or cancelled)."""
        self._disarm_timer()
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = None

    def record(self, name: str) -> Mapping[str, Any] | None:
        """The status record of a step as it will be written (None: none in this run)."""
        return self._records.get(name)

    def states(self) -> Mapping[str, StepState]:
        """The states as the engine reads them now (for CEL and printing); read-only."""
        return MappingProxyType(self._live)

    def changed_since(self, mark: int) -> tuple[int, list[str]]:
        """The names whose state changed since ``mark`` (a value this method returned)."""
        return len(self._changes), self._changes[mark:]

    @property
    def status(self) -> Mapping[str, Any]:
        """The status as last written (or read)."""
        return self._status

    @property
    def resource_version(self) -> str | None:
        """The object's resourceVersion as of the last write (or read)."""
        return self._resource_version

    def _arm_timer(self) -> None:
        if self._timer is None:
            loop = asyncio.get_running_loop()
            assert self.flush_running_after is not None
            self._timer = loop.call_later(self.flush_running_after, self._flush_in_background)

    def _disarm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _flush_in_background(self) -> None:
        self._timer = None
        self._task = asyncio.ensure_future(self._write(running=True))
        self._task.add_done_callback(_log_failure)

    async def _write(self, *, running: bool = False) -> None:
        async with self._lock:
            if running and self._summary is not None:
                return  # the pass committed meanwhile: its summary is the newer truth
            for attempt in range(1, self.conflict_attempts + 1):
                desired = self._render(running=running)
                # Nested objects (run, handledTokens) are merged by the server: a key dropped
                # from them must be sent as null, or it would stay.
                changes = {
                    k: merge_diff(self._status.get(k), v)
                    for k, v in desired.items()
                    if self._status.get(k) != v
                }
                if not changes:
                    return
                conflict: ApiError | None = None
                operations = self._as_operations(changes, desired)
                with tracer.start_as_current_span(
                    "status write",
                    attributes={
                        "kubesteps.object": self._object,
                        "kubesteps.status.attempt": attempt,
                        "kubesteps.status.fields": sorted(changes),
                        "kubesteps.status.running": running,
                        "kubesteps.status.patch": "json" if operations is not None else "merge",
                    },
                ) as span:
                    try:
                        result = await self._send(changes, operations)
                    except ApiError as error:
                        span.set_attribute("kubesteps.status.conflict", error.status == 409)
                        if error.status != 409 or attempt == self.conflict_attempts:
                            raise
                        conflict = error
                    else:
                        span.set_attribute("kubesteps.status.conflict", False)
                if conflict is not None:
                    fresh = await self.store.read()
                    if fresh is None:
                        raise conflict
                    log.debug("status conflict (attempt %d); re-reading", attempt)
                    self._adopt(fresh)
                    if _run_signature(self._status) != self._origin:
                        raise StaleStatusError(
                            f"the status of {self._object} moved on while this pass worked "
                            "(another pass acted on the run): not writing over it"
                        ) from conflict
                    continue
                self._adopt(result)
                self._origin = _run_signature(self._status)
                return

    async def _send(
        self, changes: Mapping[str, Any], operations: list[dict[str, Any]] | None
    ) -> Any:
        if operations is None:
            return await self.store.patch(changes, self._resource_version)
        assert self._by_operation is not None
        assert self._resource_version is not None
        try:
            return await self._by_operation.patch_operations(operations, self._resource_version)
        except ApiError as error:
            if error.status not in (415, 422):
                raise
            # Not expected of an API server (a patch computed from the version it guards
            # applies to it); if one refuses, this keeper sends merge patches from now on.
            log.warning(
                "%s: the API server refused a JSON patch of the status (%s); "
                "sending a merge patch instead",
                self._object,
                error,
            )
            self._by_operation = None
            return await self.store.patch(changes, self._resource_version)

    def _as_operations(
        self, changes: Mapping[str, Any], desired: Mapping[str, Any]
    ) -> list[dict[str, Any]] | None:
        """``changes`` (the merge patch from the status to ``desired``) as a JSON patch of
        ``/status``, when the store takes one and it is the smaller body; ``None``: send the
        merge patch. A JSON patch needs the version it was computed against (its list
        indexes are positions in that version) and a status to patch into."""
        if self._by_operation is None or not self._resource_version or not self._status:
            return None
        # What the merge patch leaves: the changed fields as desired, the others as they are.
        target = {**self._status, **{key: desired[key] for key in changes}}
        operations = json_diff(self._status, target, "/status")
        # (the writer adds one guard operation, about as long as the merge patch's metadata)
        return operations if size(operations) < size({"status": changes}) else None

    def _adopt(self, body: Mapping[str, Any]) -> None:
        """Take the object's current status and resourceVersion as the new baseline."""
        self._status: dict[str, Any] = dict(body.get("status") or {})
        self._resource_version: str | None = meta_of(body).resource_version or None

    def _render(self, *, running: bool) -> dict[str, Any]:
        now = self.clock()
        conditions: list[dict[str, Any]] = [dict(c) for c in self._status.get("conditions") or []]
        gen = self.generation
        summary = self._summary
        if summary is None or running:
            current = next((n for n, r in self._records.items() if r.get("phase") == "Running"), "")
            summary = Summary(
                ready="False",
                reason="Running",
                message=f"step {current!r} is running" if current else "running",
                reconciling=True,
                stalled=False,
                current_step=current,
            )
        set_condition(
            conditions,
            "Ready",
            summary.ready,
            summary.reason,
            self._ready_message(summary),
            generation=gen,
            now=now,
        )
        set_condition(
            conditions,
            "Reconciling",
            "True" if summary.reconciling else "False",
            summary.reason if summary.reconciling else "Done",
            summary.message,
            generation=gen,
            now=now,
        )
        set_condition(
            conditions,
            "Stalled",
            "True" if summary.stalled else "False",
            summary.reason if summary.stalled else "NotStalled",
            summary.message if summary.stalled else "",
            generation=gen,
            now=now,
        )
        # Step conditions this keeper wrote before for steps the spec no longer has: ours to
        # remove (the list of them is kept in status, so foreign conditions are never hit).
        retired = set(self._status.get("stepConditions") or ()) - set(self.conditions.values())
        if retired and self._summary is not None and self._prune_conditions:
            conditions = [c for c in conditions if c.get("type") not in retired]
        else:
            retired = set()
        for state_name, condition_type in self.conditions.items():
            record = self._records.get(state_name)
            if record is None:
                status, reason, message = "Unknown", "Pending", "not run yet in this run"
            else:
                status, reason = _STEP_CONDITION[StepStatus(record["phase"].lower())]
                if record.get("reason") in _STOPPED_REASONS:
                    reason = record["reason"]
                message = record.get("message") or ""
            set_condition(
                conditions, condition_type, status, reason, message, generation=gen, now=now
            )
        owned = (set(self._status.get("stepConditions") or ()) - retired) | set(
            self.conditions.values()
        )
        rendered: dict[str, Any] = {
            "observedGeneration": gen,
            "currentStep": summary.current_step,
            "conditions": conditions,
            "steps": list(self._records.values()),
            "lastRuns": dict(self._last_runs),
            **self._extra,
        }
        if owned or "stepConditions" in self._status:
            rendered["stepConditions"] = sorted(owned)
        if "history" in rendered or "history" in self._status:
            return _within_budget(
                {**rendered, "history": rendered.get("history", self._status.get("history"))}
            )
        return _within_budget(rendered)

    def _ready_message(self, summary: Summary) -> str:
        phases: dict[str, int] = {}
        for record in self._records.values():
            phases[record["phase"]] = phases.get(record["phase"], 0) + 1
        counts = ", ".join(f"{n} {p.lower()}" for p, n in sorted(phases.items()))
        if summary.ready == "True" and summary.reason == "Succeeded":
            return f"all steps are done ({counts})" if counts else "all steps are done"
        return f"{summary.message} ({counts})" if counts else summary.message


def _of_run(
    records: Mapping[str, dict[str, Any]], run: int, *, carry: frozenset[str], adopt: bool
) -> dict[str, dict[str, Any]]:
    """The records that belong to run ``run`` (see ``ConditionsKeeper``)."""
    kept: dict[str, dict[str, Any]] = {}
    for name, record in records.items():
        owner = record.get("run")
        if owner == run:
            kept[name] = record
        elif owner is None and adopt:
            kept[name] = {**{k: v for k, v in record.items() if k != "generation"}, "run": run}
        elif name in carry and record.get("phase") == "Succeeded":
            kept[name] = {**record, "run": run, "fromRun": record.get("fromRun") or owner}
    return kept


# Reasons a step condition shows as they are: why a step stopped that did not fail itself.
_STOPPED_REASONS = frozenset({"Cancelled", "TimedOut", "Rejected", "Stopped"})


def _to_record(state: StepState, run: int | None, item: str | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {
        "name": state.name,
        "phase": _phase(state.status),
        "reason": state.reason or _phase(state.status),
        "attempts": state.attempts,
    }
    if item is not None:
        record["item"] = item
    if run is not None:
        record["run"] = run
    if state.message:
        message = state.message
        record["message"] = message if len(message) <= MAX_MESSAGE else message[:1023] + "…"
    for key, value in (
        ("startedAt", state.started_at),
        ("finishedAt", state.finished_at),
        ("nextRunAt", state.next_run_at),
    ):
        if value is not None:
            record[key] = stamp(value)
    if state.attempt_started_at is not None and state.attempt_started_at != state.started_at:
        record["attemptStartedAt"] = stamp(state.attempt_started_at)
    if state.outputs is not None:
        record["outputs"] = state.outputs
    if state.disabled:
        record["disabled"] = True
    if state.inserted:
        record["inserted"] = list(state.inserted)
    return record


def _to_state(record: Mapping[str, Any]) -> StepState:
    return StepState(
        name=record["name"],
        status=StepStatus(str(record.get("phase", "Pending")).lower()),
        reason=record.get("reason", ""),
        message=record.get("message", ""),
        attempts=int(record.get("attempts") or 0),
        started_at=_parse_time(record.get("startedAt")),
        finished_at=_parse_time(record.get("finishedAt")),
        next_run_at=_parse_time(record.get("nextRunAt")),
        outputs=record.get("outputs"),
        disabled=bool(record.get("disabled", False)),
        inserted=tuple(record.get("inserted") or ()),
        attempt_started_at=_parse_time(record.get("attemptStartedAt") or record.get("startedAt")),
    )


def _log_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning(
            "writing a running step's state failed: %s",
            short_message(task.exception() or RuntimeError()),
        )
