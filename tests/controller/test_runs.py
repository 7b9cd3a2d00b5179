"""Runs: identity, suspend/resume, approvals per run, timeouts across passes, verbs, history.

Passes run one by one against the API emulator with an injected clock, so every time rule
is checked exactly and nothing sleeps. The same scenarios through the running operator
(kopf reacting to annotations and spec edits) are in test_runs_operator.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubesteps.actions.registry import register_python, unregister_python
from kubesteps.controller.reconciler import PassResult, Reconciler
from kubesteps.kube.client import KubeClient
from kubesteps.kube.conditions import find
from kubesteps.kube.events import EventRecorder
from kubesteps.telemetry.metrics import OperatorMetrics
from kubesteps.testing import Emulator

from .conftest import API, pipeline

Fetch = Callable[[str], Any]
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Calls:
    """A python action ``test.runs.work`` that counts its calls per step, and fails for the
    steps named in ``broken``."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.broken: set[str] = set()

    def __call__(self, ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
        self.counts[ctx.name] = self.counts.get(ctx.name, 0) + 1
        if ctx.name in self.broken:
            raise RuntimeError(f"{ctx.name} is broken")
        return {"calls": self.counts[ctx.name]}


@pytest.fixture
def calls() -> Iterator[Calls]:
    counter = Calls()
    register_python("test.runs.work", counter)
    yield counter
    unregister_python("test.runs.work")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def events(api: KubeClient) -> EventRecorder:
    return EventRecorder(lambda: api, dedupe_seconds=0)


@pytest.fixture
def metrics() -> OperatorMetrics:
    return OperatorMetrics()


@pytest.fixture
def reconciler(
    api: KubeClient, clock: Clock, events: EventRecorder, metrics: OperatorMetrics
) -> Reconciler:
    return Reconciler(lambda: api, clock=clock, events=events, metrics=metrics)


def work(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "action": "python", "with": {"function": "test.runs.work"}, **extra}


JOB = {"image": "busybox:1.36", "command": ["true"]}


def job_step(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "action": "job", "with": JOB, **extra}


def run_of(body: dict[str, Any]) -> dict[str, Any]:
    run = body["status"]["run"]
    assert isinstance(run, dict)
    return run


def ready(body: dict[str, Any]) -> dict[str, Any]:
    found = find(body["status"]["conditions"], "Ready")
    assert found is not None
    return dict(found)


def record(body: dict[str, Any], step: str) -> dict[str, Any]:
    return next(dict(s) for s in body["status"]["steps"] if s["name"] == step)


async def reconcile(reconciler: Reconciler, fetch: Fetch, name: str) -> PassResult:
    return await reconciler.reconcile(await fetch(name))


async def annotate(api: KubeClient, name: str, key: str, value: str | None) -> None:
    await api.patch(API, "Pipeline", name, "default", {"metadata": {"annotations": {key: value}}})


async def spec_patch(api: KubeClient, name: str, spec: dict[str, Any]) -> None:
    await api.patch(API, "Pipeline", name, "default", {"spec": spec})


def jobs(emulator: Emulator) -> list[str]:
    """The Jobs the emulator stores, by name."""
    stored = emulator.store.items(emulator.resource("jobs").storage_key, "default")
    return sorted(j["metadata"]["name"] for j in stored)


async def finish_job(api: KubeClient, name: str) -> None:
    """Play the Job controller: the Job completed."""
    await api.patch(
        "batch/v1",
        "Job",
        name,
        "default",
        {
            "status": {
                "succeeded": 1,
                "conditions": [{"type": "Complete", "status": "True"}],
            }
        },
        subresource="status",
    )


async def event_reasons(api: KubeClient, events: EventRecorder, name: str) -> list[str]:
    await events.drain()
    listed = await api.list("v1", "Event", "default")
    return [e["reason"] for e in listed if e["involvedObject"]["name"] == name]


async def event_messages(api: KubeClient, events: EventRecorder, reason: str) -> list[str]:
    await events.drain()
    return [e["message"] for e in await api.list("v1", "Event", "default") if e["reason"] == reason]


# -- 1. run identity ----------------------------------------------------------------------


async def test_a_new_pipeline_is_run_1_with_its_identity_on_status(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, calls: Calls, clock: Clock
) -> None:
    await api.create(pipeline("ident", [work("one")]))

    result = await reconcile(reconciler, fetch, "ident")

    assert (result.outcome, result.run) == ("done", "ident-1")
    run = run_of(await fetch("ident"))
    assert run == {
        "number": 1,
        "id": "ident-1",
        "trigger": "Created",
        "phase": "Succeeded",
        "reason": "Succeeded",
        "startedAt": "2026-03-01T12:00:00Z",
        "finishedAt": "2026-03-01T12:00:00Z",
        "specHash": run["specHash"],
        "retries": 0,
    }
    assert len(run["specHash"]) == 16
    assert record(await fetch("ident"), "one")["run"] == 1


async def test_changes_that_do_not_change_the_work_start_no_run(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, calls: Calls
) -> None:
    await api.create(pipeline("steady", [work("one"), work("two")]))
    await reconcile(reconciler, fetch, "steady")
    pacing: list[dict[str, Any]] = [
        {"spec": {"suspend": True}},
        {"spec": {"suspend": False}},
        {"spec": {"resyncPeriod": "1h"}},
        {"spec": {"timeout": "2h"}},
        {"spec": {"historyLimit": 3}},
        {"metadata": {"labels": {"team": "ops"}}},
        {"metadata": {"annotations": {"note": "hello"}}},
        # Writing a default out does not change the work either.
        {"spec": {"steps": [work("one", retry={"limit": 3}), work("two")]}},
    ]
    for change in pacing:
        await api.patch(API, "Pipeline", "steady", "default", change)
        await reconcile(reconciler, fetch, "steady")

    body = await fetch("steady")
    assert calls.counts == {"one": 1, "two": 1}
    assert body["metadata"]["generation"] == 7
    assert body["status"]["observedGeneration"] == 7
    assert ready(body)["observedGeneration"] == 7
    assert (run_of(body)["number"], run_of(body)["phase"]) == (1, "Succeeded")
    assert "history" not in body["status"]


async def test_a_change_of_the_work_starts_the_next_run_and_keeps_opted_out_successes(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, calls: Calls, clock: Clock
) -> None:
    await api.create(pipeline("evolve", [work("setup", rerunOnSpecChange=False), work("main")]))
    await reconcile(reconciler, fetch, "evolve")
    clock.advance(60)
    await spec_patch(
        api,
        "evolve",
        {
            "steps": [
                work("setup", rerunOnSpecChange=False),
                work("main", condition="MainDone"),
            ]
        },
    )

    await reconcile(reconciler, fetch, "evolve")

    body = await fetch("evolve")
    assert calls.counts == {"setup": 1, "main": 2}
    run = run_of(body)
    assert (run["number"], run["id"], run["trigger"]) == (2, "evolve-2", "SpecChanged")
    assert record(body, "setup")["fromRun"] == 1
    assert record(body, "main")["run"] == 2
    assert body["status"]["history"] == [
        {
            "number": 1,
            "id": "evolve-1",
            "trigger": "Created",
            "phase": "Succeeded",
            "reason": "Succeeded",
            "startedAt": "2026-03-01T12:00:00Z",
            "finishedAt": "2026-03-01T12:00:00Z",
        }
    ]


async def test_a_run_superseded_while_at_work_ends_cancelled_in_the_history(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, metrics: OperatorMetrics
) -> None:
    await api.create(
        pipeline("busy", [{"name": "wait", "action": "delay", "with": {"duration": "1h"}}])
    )
    await reconcile(reconciler, fetch, "busy")
    await spec_patch(
        api, "busy", {"steps": [{"name": "wait", "action": "delay", "with": {"duration": "1s"}}]}
    )

    await reconcile(reconciler, fetch, "busy")

    (old,) = (await fetch("busy"))["status"]["history"]
    assert (old["phase"], old["reason"]) == ("Cancelled", "Superseded")
    assert old["message"] == "superseded by run busy-2: the spec changed"
    assert 'kubesteps_runs_total{phase="Cancelled",trigger="Created"} 1.0' in metrics.render()


# -- 2. suspend and resume ----------------------------------------------------------------


async def test_suspend_and_resume_continue_the_same_run_with_exactly_one_job(
    api: KubeClient,
    reconciler: Reconciler,
    fetch: Fetch,
    calls: Calls,
    k8s_emulator: Emulator,
    events: EventRecorder,
) -> None:
    await api.create(pipeline("paused", [work("before"), job_step("build"), work("after")]))
    await reconcile(reconciler, fetch, "paused")
    assert jobs(k8s_emulator) == ["paused-build-1-1"]

    await spec_patch(api, "paused", {"suspend": True})
    result = await reconcile(reconciler, fetch, "paused")

    assert (result.outcome, result.delay) == ("suspended", None)
    body = await fetch("paused")
    assert (ready(body)["status"], ready(body)["reason"]) == ("False", "Suspended")
    assert (run_of(body)["phase"], run_of(body)["suspendedAt"]) == (
        "Suspended",
        "2026-03-01T12:00:00Z",
    )
    assert jobs(k8s_emulator) == ["paused-build-1-1"], "a running Job is left running"
    await finish_job(api, "paused-build-1-1")  # it finishes while the run is suspended

    await spec_patch(api, "paused", {"suspend": False})
    result = await reconcile(reconciler, fetch, "paused")

    assert result.outcome == "done"
    body = await fetch("paused")
    assert (run_of(body)["number"], run_of(body)["phase"]) == (1, "Succeeded")
    assert calls.counts == {"before": 1, "after": 1}
    assert jobs(k8s_emulator) == ["paused-build-1-1"]
    assert record(body, "build")["outputs"]["jobName"] == "paused-build-1-1"
    reasons = await event_reasons(api, events, "paused")
    assert reasons.count("RunSuspended") == 1
    assert reasons.count("RunResumed") == 1


async def test_time_suspended_does_not_count_against_the_runs_timeout(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, clock: Clock
) -> None:
    await api.create(
        pipeline(
            "patient",
            [{"name": "wait", "action": "delay", "with": {"duration": "2h"}}],
            timeout="10m",
        )
    )
    await reconcile(reconciler, fetch, "patient")
    clock.advance(5 * 60)
    await spec_patch(api, "patient", {"suspend": True})
    await reconcile(reconciler, fetch, "patient")
    clock.advance(55 * 60)  # an hour after the start, but only 5 minutes at work
    await spec_patch(api, "patient", {"suspend": False})

    resumed = await reconcile(reconciler, fetch, "patient")

    assert resumed.outcome == "wait"
    assert resumed.delay == pytest.approx(5 * 60)  # the rest of spec.timeout, not the delay
    assert run_of(await fetch("patient"))["suspendedSeconds"] == 55 * 60
    clock.advance(5 * 60 + 3)
    late = await reconcile(reconciler, fetch, "patient")
    assert late.outcome == "failed"
    assert late.message == "run exceeded spec.timeout 10m (ran 10m3s)"


# -- 3. approvals belong to a run ---------------------------------------------------------


GATE = {"name": "gate", "action": "approval", "with": {"message": "ship?"}}
GATE_KEY = "kubesteps.dev/approve.gate"


async def test_an_approval_is_recorded_removed_and_a_new_run_must_be_approved_again(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, calls: Calls, clock: Clock
) -> None:
    await api.create(pipeline("gated", [GATE, work("ship")]))
    assert (await reconcile(reconciler, fetch, "gated")).outcome == "wait"
    await annotate(api, "gated", GATE_KEY, "alice")
    clock.advance(30)

    assert (await reconcile(reconciler, fetch, "gated")).outcome == "done"

    body = await fetch("gated")
    outputs = record(body, "gate")["outputs"]
    assert (outputs["approvedBy"], outputs["approvedAt"]) == ("alice", "2026-03-01T12:00:30Z")
    assert outputs["run"] == "gated-1"
    assert GATE_KEY not in (body["metadata"].get("annotations") or {})

    await spec_patch(api, "gated", {"steps": [GATE, work("ship", condition="Shipped")]})
    result = await reconcile(reconciler, fetch, "gated")

    assert (result.outcome, result.step, result.run) == ("wait", "gate", "gated-2")
    assert calls.counts == {"ship": 1}


@pytest.mark.slow  # waits seconds of real time (backoffs, leases, whole runs)
async def test_a_leftover_answer_whose_removal_failed_does_not_approve_the_next_run(
    api: KubeClient,
    reconciler: Reconciler,
    fetch: Fetch,
    calls: Calls,
    k8s_emulator: Emulator,
) -> None:
    await api.create(pipeline("sticky", [GATE, work("ship")]))
    await annotate(api, "sticky", GATE_KEY, "yes")
    # Refused for the whole pass (the API client retries a single refusal).
    k8s_emulator.inject(
        verb="patch", resource="pipelines", subresource=None, status=500, times=None
    )
    await reconcile(reconciler, fetch, "sticky")
    k8s_emulator.clear_faults()
    assert (await fetch("sticky"))["metadata"]["annotations"][GATE_KEY] == "yes"

    await spec_patch(api, "sticky", {"steps": [GATE, work("ship", condition="Shipped")]})
    result = await reconcile(reconciler, fetch, "sticky")

    assert (result.outcome, result.step) == ("wait", "gate")
    assert GATE_KEY not in ((await fetch("sticky"))["metadata"].get("annotations") or {})


async def test_an_answer_for_another_run_is_ignored_with_a_warning_and_removed(
    api: KubeClient,
    reconciler: Reconciler,
    fetch: Fetch,
    events: EventRecorder,
    calls: Calls,
) -> None:
    await api.create(pipeline("bound", [GATE, work("ship")]))
    await reconcile(reconciler, fetch, "bound")
    await annotate(api, "bound", GATE_KEY, "alice@bound-7")

    assert (await reconcile(reconciler, fetch, "bound")).outcome == "wait"
    assert GATE_KEY not in ((await fetch("bound"))["metadata"].get("annotations") or {})
    (warning,) = await event_messages(api, events, "ApprovalIgnored")
    assert warning == (
        "bound-1: kubesteps.dev/approve.gate='alice@bound-7' ignored: it "
        "answers run bound-7, and the current run is bound-1"
    )

    await annotate(api, "bound", GATE_KEY, "alice@bound-1")
    assert (await reconcile(reconciler, fetch, "bound")).outcome == "done"


async def test_a_rejection_fails_the_run_and_a_retry_asks_again(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, calls: Calls
) -> None:
    await api.create(pipeline("vetoed", [work("build"), GATE, work("ship")]))
    await annotate(api, "vetoed", GATE_KEY, "reject")

    rejected = await reconcile(reconciler, fetch, "vetoed")

    assert (rejected.outcome, rejected.step) == ("failed", "gate")
    body = await fetch("vetoed")
    assert (record(body, "gate")["phase"], record(body, "gate")["reason"]) == ("Failed", "Rejected")
    assert run_of(body)["phase"] == "Failed"
    assert GATE_KEY not in (body["metadata"].get("annotations") or {})

    await annotate(api, "vetoed", "kubesteps.dev/retry", "try-2")
    again = await reconcile(reconciler, fetch, "vetoed")

    assert (again.outcome, again.step) == ("wait", "gate")
    await annotate(api, "vetoed", GATE_KEY, "bob")
    assert (await reconcile(reconciler, fetch, "vetoed")).outcome == "done"
    assert calls.counts == {"build": 1, "ship": 1}


# -- 4. timeouts across passes ------------------------------------------------------------


async def test_a_step_timeout_bounds_a_wait_over_several_passes(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, clock: Clock
) -> None:
    await api.create(
        pipeline(
            "bounded",
            [
                {
                    "name": "visible",
                    "timeout": "2m",
                    "retry": {"limit": 0},
                    "action": "waitFor",
                    "with": {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "name": "never",
                        "jsonPath": "{.data.x}",
                        "value": "y",
                    },
                }
            ],
        )
    )
    first = await reconcile(reconciler, fetch, "bounded")
    assert first.outcome == "wait"
    clock.advance(118)
    second = await reconcile(reconciler, fetch, "bounded")
    # waitFor would look again in 11.8s; the attempt's deadline comes first.
    assert second.delay == pytest.approx(2), "the next look comes at the attempt's deadline"
    clock.advance(2)

    timed_out = await reconcile(reconciler, fetch, "bounded")

    assert timed_out.outcome == "failed"
    visible = record(await fetch("bounded"), "visible")
    assert (visible["phase"], visible["reason"]) == ("Failed", "TimedOut")
    assert visible["message"] == "step 'visible' timed out after 2m (the attempt ran 2m)"


async def test_a_timed_out_job_step_deletes_its_job_and_the_retry_starts_a_new_one(
    api: KubeClient,
    reconciler: Reconciler,
    fetch: Fetch,
    clock: Clock,
    k8s_emulator: Emulator,
) -> None:
    await api.create(
        pipeline(
            "slowjob",
            [
                job_step(
                    "build",
                    timeout="1m",
                    retry={"limit": 1, "backoff": {"initial": "5s", "jitter": 0}},
                )
            ],
        )
    )
    await reconcile(reconciler, fetch, "slowjob")
    assert jobs(k8s_emulator) == ["slowjob-build-1-1"]
    clock.advance(61)

    retrying = await reconcile(reconciler, fetch, "slowjob")

    assert retrying.outcome == "retry"
    assert jobs(k8s_emulator) == []
    assert record(await fetch("slowjob"), "build")["reason"] == "TimedOut"
    clock.advance(5)
    await reconcile(reconciler, fetch, "slowjob")
    assert jobs(k8s_emulator) == ["slowjob-build-1-2"]


async def test_the_run_timeout_is_enforced_on_time_with_a_readable_message(
    api: KubeClient,
    reconciler: Reconciler,
    fetch: Fetch,
    clock: Clock,
    k8s_emulator: Emulator,
    events: EventRecorder,
) -> None:
    await api.create(pipeline("deadline", [job_step("build")], timeout="10m"))
    first = await reconcile(reconciler, fetch, "deadline")
    assert first.outcome == "wait"
    clock.advance(599)
    near = await reconcile(reconciler, fetch, "deadline")
    assert near.delay == pytest.approx(1)
    clock.advance(4)

    over = await reconcile(reconciler, fetch, "deadline")

    assert (over.outcome, over.delay, over.step) == ("failed", None, "build")
    assert over.message == "run exceeded spec.timeout 10m (ran 10m3s)"
    body = await fetch("deadline")
    assert (ready(body)["reason"], run_of(body)["reason"]) == ("TimedOut", "TimedOut")
    assert record(body, "build")["reason"] == "TimedOut"
    assert jobs(k8s_emulator) == []
    assert "RunTimedOut" in await event_reasons(api, events, "deadline")
    # Nothing runs after that until a retry: no second Job.
    clock.advance(60)
    assert (await reconcile(reconciler, fetch, "deadline")).outcome == "failed"
    assert jobs(k8s_emulator) == []


# -- 5. verbs -----------------------------------------------------------------------------


async def test_retry_runs_the_failed_steps_again_and_not_the_succeeded_ones(
    api: KubeClient,
    reconciler: Reconciler,
    fetch: Fetch,
    calls: Calls,
    clock: Clock,
    events: EventRecorder,
    metrics: OperatorMetrics,
) -> None:
    await api.create(
        pipeline("again", [work("first"), work("flaky", retry={"limit": 0}), work("last")])
    )
    calls.broken.add("flaky")
    assert (await reconcile(reconciler, fetch, "again")).outcome == "failed"
    assert run_of(await fetch("again"))["failedStep"] == "flaky"
    calls.broken.clear()
    clock.advance(60)
    await annotate(api, "again", "kubesteps.dev/retry", "2026-03-01T12:01")

    result = await reconcile(reconciler, fetch, "again")

    assert result.outcome == "done"
    assert calls.counts == {"first": 1, "flaky": 2, "last": 1}
    body = await fetch("again")
    run = run_of(body)
    assert (run["number"], run["phase"], run["retries"]) == (1, "Succeeded", 1)
    assert run["trigger"] == "Retry"
    assert run["retriedAt"] == "2026-03-01T12:01:00Z"
    assert record(body, "flaky")["attempts"] == 1, "fresh attempt counters"
    assert "kubesteps.dev/retry" not in (body["metadata"].get("annotations") or {})
    assert body["status"]["handledTokens"] == {"retry": ["2026-03-01T12:01"]}
    assert "RunRetried" in await event_reasons(api, events, "again")
    rendered = metrics.render()
    assert 'kubesteps_runs_total{phase="Failed",trigger="Created"} 1.0' in rendered
    assert 'kubesteps_runs_total{phase="Succeeded",trigger="Retry"} 1.0' in rendered


async def test_rerun_starts_a_new_run_in_which_every_step_runs(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, calls: Calls
) -> None:
    await api.create(pipeline("fresh", [work("setup", rerunOnSpecChange=False), work("main")]))
    await reconcile(reconciler, fetch, "fresh")
    await annotate(api, "fresh", "kubesteps.dev/rerun", "now")

    await reconcile(reconciler, fetch, "fresh")

    body = await fetch("fresh")
    assert calls.counts == {"setup": 2, "main": 2}
    assert (run_of(body)["number"], run_of(body)["trigger"]) == (2, "Rerun")
    assert [h["number"] for h in body["status"]["history"]] == [1]
    assert "kubesteps.dev/rerun" not in (body["metadata"].get("annotations") or {})


async def test_cancel_stops_the_job_and_nothing_starts_until_a_retry(
    api: KubeClient,
    reconciler: Reconciler,
    fetch: Fetch,
    calls: Calls,
    k8s_emulator: Emulator,
    events: EventRecorder,
) -> None:
    await api.create(pipeline("halt", [job_step("build"), work("after")]))
    await reconcile(reconciler, fetch, "halt")
    assert jobs(k8s_emulator) == ["halt-build-1-1"]
    await annotate(api, "halt", "kubesteps.dev/cancel", "stop-1")

    cancelled = await reconcile(reconciler, fetch, "halt")

    assert (cancelled.outcome, cancelled.delay) == ("cancelled", None)
    assert jobs(k8s_emulator) == []
    body = await fetch("halt")
    assert (ready(body)["status"], ready(body)["reason"]) == ("False", "Cancelled")
    assert (run_of(body)["phase"], run_of(body)["reason"]) == ("Cancelled", "Cancelled")
    assert (record(body, "build")["phase"], record(body, "build")["reason"]) == (
        "Failed",
        "Cancelled",
    )
    assert find(body["status"]["conditions"], "Stalled")["status"] == "True"  # type: ignore[index]
    await reconcile(reconciler, fetch, "halt")
    assert jobs(k8s_emulator) == []
    assert calls.counts == {}
    assert "RunCancelled" in await event_reasons(api, events, "halt")

    await annotate(api, "halt", "kubesteps.dev/retry", "go-1")
    assert (await reconcile(reconciler, fetch, "halt")).outcome == "wait"
    assert jobs(k8s_emulator) == ["halt-build-1r1-1"]


@pytest.mark.slow  # waits seconds of real time (backoffs, leases, whole runs)
async def test_a_token_replayed_after_a_restart_is_acted_on_once(
    api: KubeClient,
    fetch: Fetch,
    calls: Calls,
    clock: Clock,
    k8s_emulator: Emulator,
    events: EventRecorder,
) -> None:
    first = Reconciler(lambda: api, clock=clock, events=events)
    await api.create(pipeline("replay", [work("once")]))
    await first.reconcile(await fetch("replay"))
    await annotate(api, "replay", "kubesteps.dev/rerun", "abc")
    # The operator dies between acting and removing the annotation: the removal never lands.
    k8s_emulator.inject(
        verb="patch", resource="pipelines", subresource=None, status=503, times=None
    )
    await first.reconcile(await fetch("replay"))
    k8s_emulator.clear_faults()
    assert (await fetch("replay"))["metadata"]["annotations"]["kubesteps.dev/rerun"] == "abc"

    restarted = Reconciler(lambda: api, clock=clock, events=events)
    await restarted.reconcile(await fetch("replay"))

    body = await fetch("replay")
    assert run_of(body)["number"] == 2
    assert calls.counts == {"once": 2}
    assert "kubesteps.dev/rerun" not in (body["metadata"].get("annotations") or {})
    (ignored,) = await event_messages(api, events, "VerbIgnored")
    assert ignored.startswith("replay-2: kubesteps.dev/rerun=abc ignored: this token was acted")


async def test_a_verb_with_nothing_to_act_on_is_reported_and_removed(
    api: KubeClient,
    reconciler: Reconciler,
    fetch: Fetch,
    calls: Calls,
    events: EventRecorder,
) -> None:
    await api.create(pipeline("idle", [work("one")]))
    await reconcile(reconciler, fetch, "idle")
    await annotate(api, "idle", "kubesteps.dev/cancel", "x")

    assert (await reconcile(reconciler, fetch, "idle")).outcome == "done"

    (ignored,) = await event_messages(api, events, "VerbIgnored")
    assert ignored == (
        "idle-1: kubesteps.dev/cancel=x ignored: run idle-1 is Succeeded, nothing to cancel"
    )
    assert "kubesteps.dev/cancel" not in (
        (await fetch("idle"))["metadata"].get("annotations") or {}
    )


# -- 6. history ---------------------------------------------------------------------------


async def test_history_keeps_the_last_history_limit_runs_newest_first(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, calls: Calls
) -> None:
    await api.create(pipeline("rotating", [work("one")], historyLimit=2))
    await reconcile(reconciler, fetch, "rotating")
    for token in ("a", "b", "c"):
        await annotate(api, "rotating", "kubesteps.dev/rerun", token)
        await reconcile(reconciler, fetch, "rotating")

    body = await fetch("rotating")
    assert run_of(body)["number"] == 4
    assert [h["id"] for h in body["status"]["history"]] == ["rotating-3", "rotating-2"]
    assert [h["trigger"] for h in body["status"]["history"]] == ["Rerun", "Rerun"]


async def test_fifty_history_entries_with_500_step_records_stay_well_under_the_size_limit(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch
) -> None:
    """The worst case the schema allows for history (50 entries, every field at its longest)
    next to 500 step records: the object stays far below etcd's 1.5 MiB."""
    greet = {
        "action": "python",
        "with": {"function": "kubesteps.examples.greet", "args": {"who": "${ string(item) }"}},
    }
    fan_out = [
        {
            "name": f"fan-{i}",
            "forEach": {
                "items": "[" + ",".join(str(x) for x in range(n)) + "]",
                "maxConcurrency": 100,
                "step": greet,
            },
        }
        for i, n in enumerate((200, 200, 100))
    ]
    await api.create(pipeline("huge", fan_out, historyLimit=50))
    entry = {
        "id": "huge-1",
        "trigger": "SpecChanged",
        "phase": "Failed",
        "reason": "TimedOut",
        "startedAt": "2026-03-01T12:00:00Z",
        "finishedAt": "2026-03-01T13:00:00Z",
        "retries": 99,
        "failedStep": "s" * 253,
        "message": "m" * 256,
    }
    history = [{**entry, "number": n, "id": f"huge-{n}"} for n in range(50, 0, -1)]
    await api.patch(
        API,
        "Pipeline",
        "huge",
        "default",
        {
            "status": {
                "history": history,
                "run": {
                    "number": 50,
                    "id": "huge-50",
                    "trigger": "Rerun",
                    "phase": "Succeeded",
                    "specHash": "x",
                    "startedAt": "2026-03-01T12:00:00Z",
                },
            }
        },
        subresource="status",
    )
    await annotate(api, "huge", "kubesteps.dev/rerun", "one-more")

    assert (await reconcile(reconciler, fetch, "huge")).outcome == "done"

    body = await fetch("huge")
    assert len(body["status"]["steps"]) == 503
    assert len(body["status"]["history"]) == 50
    assert body["status"]["history"][0]["id"] == "huge-50"
    size = len(json.dumps(body))
    assert size < 1024 * 1024, f"{size} bytes"


# -- 8. traces --------------------------------------------------------------------------


async def test_every_pass_names_its_run_and_an_ended_run_is_one_span_of_its_own(
    api: KubeClient, fetch: Fetch, calls: Calls, clock: Clock
) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    reconciler = Reconciler(lambda: api, clock=clock, tracer=provider.get_tracer("test"))
    await api.create(
        pipeline("traced", [{"name": "wait", "action": "delay", "with": {"duration": "10s"}}])
    )
    await reconcile(reconciler, fetch, "traced")
    clock.advance(10)
    await reconcile(reconciler, fetch, "traced")

    spans = exporter.get_finished_spans()
    passes = [s for s in spans if s.name == "reconcile"]
    assert [s.attributes["kubesteps.run.id"] for s in passes] == ["traced-1", "traced-1"]
    (run,) = [s for s in spans if s.name == "run"]
    assert run.parent is None, "a root span: the run outlives any one pass"
    assert run.attributes is not None
    assert dict(run.attributes) == {
        "kubesteps.pipeline": "traced",
        "kubesteps.run.id": "traced-1",
        "kubesteps.run.number": 1,
        "kubesteps.run.trigger": "Created",
        "kubesteps.run.phase": "Succeeded",
        "kubesteps.run.retries": 0,
    }
    assert (run.end_time or 0) - (run.start_time or 0) == 10 * 10**9
    assert [link.context.span_id for link in run.links] == [passes[-1].context.span_id]


# -- what a review of the run model found (each test failed before its fix) --------------


async def test_a_pass_given_a_body_from_before_the_last_pass_reads_the_object_afresh(
    api: KubeClient,
    reconciler: Reconciler,
    fetch: Fetch,
    calls: Calls,
    events: EventRecorder,
) -> None:
    """kopf's handler and the nudge get the same event; a change may land while a pass
    runs: the second pass must not act on the verb again from the body it was given."""
    from kubesteps.controller import handlers

    await api.create(pipeline("stale", [work("one")]))
    await reconcile(reconciler, fetch, "stale")
    await annotate(api, "stale", "kubesteps.dev/rerun", "t1")
    before = await fetch("stale")
    await annotate(api, "stale", "note", "a change while the pass runs")
    during = await fetch("stale")
    schedule = handlers._Schedule()

    await handlers._run_pass(reconciler, before, schedule, by_kopf=False)
    await handlers._run_pass(reconciler, during, schedule, by_kopf=True)
    await handlers._run_pass(reconciler, before, schedule, by_kopf=True)

    assert calls.counts == {"one": 2}
    assert run_of(await fetch("stale"))["number"] == 2
    assert (await event_reasons(api, events, "stale")).count("RunStarted") == 2


async def test_a_write_over_a_status_another_pass_moved_on_is_dropped(
    api: KubeClient, fetch: Fetch, calls: Calls, clock: Clock
) -> None:
    first, second = (Reconciler(lambda: api, clock=clock) for _ in range(2))
    await api.create(pipeline("race", [work("one")]))
    await first.reconcile(await fetch("race"))
    await annotate(api, "race", "kubesteps.dev/rerun", "r1")
    stale = await fetch("race")
    await first.reconcile(await fetch("race"))  # acts on the rerun: run 2

    result = await second.reconcile(stale)  # decided from before: its write would undo it

    assert (result.outcome, result.delay) == ("retry", 0.5)
    body = await fetch("race")
    assert run_of(body)["number"] == 2
    assert body["status"]["handledTokens"] == {"rerun": ["r1"]}


async def test_a_retry_leaves_a_step_at_work_alone_with_its_job(
    api: KubeClient,
    reconciler: Reconciler,
    fetch: Fetch,
    calls: Calls,
    k8s_emulator: Emulator,
) -> None:
    calls.broken.add("lint")
    await api.create(
        pipeline(
            "mixed",
            [
                {
                    "name": "both",
                    "parallel": {
                        "steps": [
                            work("lint", retry={"limit": 0}),
                            job_step("build"),
                        ]
                    },
                },
            ],
        )
    )
    failed = await reconcile(reconciler, fetch, "mixed")
    assert failed.outcome == "failed"
    body = await fetch("mixed")
    assert (record(body, "build")["phase"], record(body, "build")["reason"]) == (
        "Failed",
        "Stopped",
    ), "what worked beside the failure stops with the run"
    assert jobs(k8s_emulator) == []
    calls.broken.clear()
    await annotate(api, "mixed", "kubesteps.dev/retry", "r1")

    assert (await reconcile(reconciler, fetch, "mixed")).outcome == "wait"

    assert jobs(k8s_emulator) == ["mixed-build-1r1-1"]
    assert calls.counts == {"lint": 2}


async def test_cancel_and_retry_together_restart_the_job(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, k8s_emulator: Emulator
) -> None:
    await api.create(pipeline("restart", [job_step("build")]))
    await reconcile(reconciler, fetch, "restart")
    await api.patch(
        API,
        "Pipeline",
        "restart",
        "default",
        {"metadata": {"annotations": {"kubesteps.dev/cancel": "c1", "kubesteps.dev/retry": "r1"}}},
    )

    assert (await reconcile(reconciler, fetch, "restart")).outcome == "wait"

    assert jobs(k8s_emulator) == ["restart-build-1r1-1"]
    assert run_of(await fetch("restart"))["phase"] == "Running"


async def test_work_that_finished_before_the_deadline_counts_though_seen_after(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, clock: Clock
) -> None:
    await api.create(
        pipeline(
            "late-look",
            [
                job_step("build", timeout="1m", retry={"limit": 0}),
                job_step("test"),
            ],
            timeout="2m",
        )
    )
    await reconcile(reconciler, fetch, "late-look")
    clock.advance(55)
    await finish_job(api, "late-look-build-1-1")  # done at 55s; the next look comes at 60s
    clock.advance(5)
    assert (await reconcile(reconciler, fetch, "late-look")).outcome == "wait"
    assert record(await fetch("late-look"), "build")["phase"] == "Succeeded"
    clock.advance(55)
    await finish_job(api, "late-look-test-1-1")  # done at 1m55s; the run's deadline is 2m
    clock.advance(10)

    result = await reconcile(reconciler, fetch, "late-look")

    assert result.outcome == "done"
    assert run_of(await fetch("late-look"))["phase"] == "Succeeded"


async def test_past_the_runs_deadline_no_step_starts_afresh(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, calls: Calls, clock: Clock
) -> None:
    await api.create(pipeline("no-new", [job_step("build"), work("after")], timeout="1m"))
    await reconcile(reconciler, fetch, "no-new")
    await finish_job(api, "no-new-build-1-1")
    clock.advance(61)

    result = await reconcile(reconciler, fetch, "no-new")

    assert (result.outcome, result.message) == ("failed", "run exceeded spec.timeout 1m (ran 1m1s)")
    assert record(await fetch("no-new"), "build")["phase"] == "Succeeded"
    assert calls.counts == {}


async def test_resync_passes_of_a_succeeded_run_neither_reopen_nor_time_it_out(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, clock: Clock
) -> None:
    periodic = {
        "name": "poll",
        "action": "delay",
        "with": {"duration": "30s"},
        "throttle": {"interval": "1h"},
    }
    await api.create(pipeline("periodic", [periodic], timeout="10m", resyncPeriod="1h"))
    await reconcile(reconciler, fetch, "periodic")
    clock.advance(30)
    assert (await reconcile(reconciler, fetch, "periodic")).outcome == "done"
    clock.advance(3600)
    assert (await reconcile(reconciler, fetch, "periodic")).outcome == "wait"
    clock.advance(30)

    result = await reconcile(reconciler, fetch, "periodic")

    assert result.outcome == "done"
    run = run_of(await fetch("periodic"))
    assert (run["phase"], run["finishedAt"]) == ("Succeeded", "2026-03-01T12:00:30Z")


async def test_a_timed_out_foreach_job_step_loses_its_job(
    api: KubeClient,
    reconciler: Reconciler,
    fetch: Fetch,
    clock: Clock,
    k8s_emulator: Emulator,
) -> None:
    await api.create(
        pipeline(
            "fan",
            [
                {
                    "name": "build",
                    "forEach": {
                        "items": "['a', 'b']",
                        "step": {
                            "action": "job",
                            "with": JOB,
                            "timeout": "1m",
                            "retry": {"limit": 0},
                        },
                    },
                }
            ],
        )
    )
    await reconcile(reconciler, fetch, "fan")
    assert jobs(k8s_emulator) == ["fan-build-0-1-1", "fan-build-1-1-1"]
    clock.advance(61)

    assert (await reconcile(reconciler, fetch, "fan")).outcome == "failed"

    assert jobs(k8s_emulator) == []


async def test_an_older_token_brought_back_is_not_acted_on_again(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, calls: Calls
) -> None:
    await api.create(pipeline("revert", [work("one")]))
    await reconcile(reconciler, fetch, "revert")
    for token in ("a", "a", "b", "a"):  # a GitOps revert brings an old manifest back
        await annotate(api, "revert", "kubesteps.dev/rerun", token)
        await reconcile(reconciler, fetch, "revert")

    assert run_of(await fetch("revert"))["number"] == 3
    assert calls.counts == {"one": 3}


async def test_a_token_with_a_trailing_newline_is_acted_on_and_removed(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, calls: Calls
) -> None:
    await api.create(pipeline("newline", [work("one")]))
    await reconcile(reconciler, fetch, "newline")
    await annotate(api, "newline", "kubesteps.dev/rerun", "t1\n")

    await reconcile(reconciler, fetch, "newline")

    body = await fetch("newline")
    assert run_of(body)["number"] == 2
    assert "kubesteps.dev/rerun" not in (body["metadata"].get("annotations") or {})


async def test_an_answer_used_for_one_run_is_ignored_for_the_next_with_a_warning(
    api: KubeClient,
    reconciler: Reconciler,
    fetch: Fetch,
    calls: Calls,
    events: EventRecorder,
) -> None:
    await api.create(pipeline("reused", [GATE, work("ship")]))
    await annotate(api, "reused", GATE_KEY, "alice")
    assert (await reconcile(reconciler, fetch, "reused")).outcome == "done"
    # A re-applied manifest brings the answer back, with a rerun.
    await api.patch(
        API,
        "Pipeline",
        "reused",
        "default",
        {"metadata": {"annotations": {GATE_KEY: "alice", "kubesteps.dev/rerun": "again"}}},
    )

    result = await reconcile(reconciler, fetch, "reused")

    assert (result.outcome, result.step) == ("wait", "gate")
    (warning,) = await event_messages(api, events, "ApprovalIgnored")
    assert warning == (
        "reused-2: kubesteps.dev/approve.gate='alice' ignored: this answer was "
        "given to run reused-1 already; answer run reused-2 anew (e.g. "
        "alice@reused-2)"
    )
    await annotate(api, "reused", GATE_KEY, "alice@reused-2")
    assert (await reconcile(reconciler, fetch, "reused")).outcome == "done"


async def test_cancelling_a_suspended_run_ends_it_without_resuming_it(
    api: KubeClient,
    reconciler: Reconciler,
    fetch: Fetch,
    events: EventRecorder,
    clock: Clock,
) -> None:
    await api.create(pipeline("pausecancel", [job_step("build")], suspend=True))
    await reconcile(reconciler, fetch, "pausecancel")
    clock.advance(60)
    await annotate(api, "pausecancel", "kubesteps.dev/cancel", "c")

    assert (await reconcile(reconciler, fetch, "pausecancel")).outcome == "cancelled"

    run = run_of(await fetch("pausecancel"))
    assert (run["phase"], run["suspendedSeconds"]) == ("Cancelled", 60)
    assert "suspendedAt" not in run
    reasons = await event_reasons(api, events, "pausecancel")
    assert "RunResumed" not in reasons
    assert "RunCancelled" in reasons


@pytest.mark.slow  # waits seconds of real time (backoffs, leases, whole runs)
async def test_a_job_that_could_not_be_deleted_is_looked_for_again(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, k8s_emulator: Emulator
) -> None:
    await api.create(pipeline("sticky-job", [job_step("build")]))
    await reconcile(reconciler, fetch, "sticky-job")
    await annotate(api, "sticky-job", "kubesteps.dev/cancel", "c")
    k8s_emulator.inject(verb="delete", resource="jobs", status=500, times=None)

    first = await reconcile(reconciler, fetch, "sticky-job")

    assert (first.outcome, first.delay, first.permanent) == ("cancelled", 10.0, False)
    assert jobs(k8s_emulator) == ["sticky-job-build-1-1"]
    k8s_emulator.clear_faults()
    again = await reconcile(reconciler, fetch, "sticky-job")
    assert (again.outcome, again.delay, again.permanent) == ("cancelled", None, True)
    assert jobs(k8s_emulator) == []


async def test_a_run_can_be_cancelled_while_its_spec_is_invalid(
    api: KubeClient,
    reconciler: Reconciler,
    fetch: Fetch,
    k8s_emulator: Emulator,
    events: EventRecorder,
) -> None:
    await api.create(pipeline("broken-mid-run", [job_step("build")]))
    await reconcile(reconciler, fetch, "broken-mid-run")
    await spec_patch(
        api,
        "broken-mid-run",
        {
            "steps": [
                job_step("build"),
                {
                    "name": "bad",
                    "when": ["steps.nope.phase == 'x'"],
                    "action": "delay",
                    "with": {"duration": "1s"},
                },
            ]
        },
    )
    await api.patch(
        API,
        "Pipeline",
        "broken-mid-run",
        "default",
        {"metadata": {"annotations": {"kubesteps.dev/cancel": "c", "kubesteps.dev/retry": "r"}}},
    )

    assert (await reconcile(reconciler, fetch, "broken-mid-run")).outcome == "invalid"

    body = await fetch("broken-mid-run")
    assert run_of(body)["phase"] == "Cancelled"
    assert jobs(k8s_emulator) == []
    annotations = body["metadata"].get("annotations") or {}
    assert "kubesteps.dev/cancel" not in annotations
    assert "kubesteps.dev/retry" not in annotations
    messages = await event_messages(api, events, "VerbIgnored")
    assert messages == [
        "broken-mid-run-1: kubesteps.dev/retry=r ignored: the spec is invalid: fix it first"
    ]


async def test_a_status_from_before_runs_is_adopted_quietly(
    api: KubeClient,
    reconciler: Reconciler,
    fetch: Fetch,
    calls: Calls,
    events: EventRecorder,
    metrics: OperatorMetrics,
) -> None:
    await api.create(
        pipeline(
            "old", [work("one"), {"name": "wait", "action": "delay", "with": {"duration": "1h"}}]
        )
    )
    await api.patch(
        API,
        "Pipeline",
        "old",
        "default",
        {
            "status": {
                "observedGeneration": 1,
                "steps": [
                    {
                        "name": "one",
                        "phase": "Succeeded",
                        "attempts": 1,
                        "generation": 1,
                        "startedAt": "2026-02-01T00:00:00Z",
                        "finishedAt": "2026-02-01T00:00:01Z",
                    },
                    {
                        "name": "wait",
                        "phase": "Waiting",
                        "attempts": 0,
                        "generation": 1,
                        "startedAt": "2026-03-01T11:50:00Z",
                        "nextRunAt": "2026-03-01T12:50:00Z",
                    },
                ],
            }
        },
        subresource="status",
    )

    result = await reconcile(reconciler, fetch, "old")

    assert result.outcome == "wait"
    assert calls.counts == {}
    run = run_of(await fetch("old"))
    assert (run["number"], run["startedAt"]) == (1, "2026-02-01T00:00:00Z")
    reasons = await event_reasons(api, events, "old")
    assert "RunStarted" not in reasons
    assert "kubesteps_runs_total{" not in metrics.render()


async def test_a_rerun_asked_for_with_a_retry_wins_alone(
    api: KubeClient,
    reconciler: Reconciler,
    fetch: Fetch,
    calls: Calls,
    events: EventRecorder,
) -> None:
    calls.broken.add("one")
    await api.create(pipeline("both", [work("one", retry={"limit": 0})]))
    await reconcile(reconciler, fetch, "both")
    calls.broken.clear()
    await api.patch(
        API,
        "Pipeline",
        "both",
        "default",
        {"metadata": {"annotations": {"kubesteps.dev/retry": "r", "kubesteps.dev/rerun": "n"}}},
    )

    await reconcile(reconciler, fetch, "both")

    body = await fetch("both")
    assert (run_of(body)["number"], run_of(body)["trigger"]) == (2, "Rerun")
    assert body["status"]["history"][0]["phase"] == "Failed"
    (ignored,) = await event_messages(api, events, "VerbIgnored")
    assert ignored.endswith("ignored: a rerun asked for at the same time wins")


async def test_the_worst_status_the_schema_allows_is_trimmed_below_the_budget(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch
) -> None:
    """500 records with 1 KiB messages and big outputs, a condition per top-level step, 50
    history entries at their longest: the operator keeps the status within its budget and
    the object far below etcd's 1.5 MiB."""
    from kubesteps.keepers.status_keeper import MAX_STATUS_BYTES

    register_python("test.runs.big", lambda ctx, args: {"blob": "x" * 7000})
    try:

        def loud(n: int) -> dict[str, Any]:
            return {"action": "python", "with": {"function": "test.runs.big", "args": {"n": n}}}

        steps: list[dict[str, Any]] = [
            {
                "name": f"fan-{i}",
                "condition": f"Fan{i}",
                "forEach": {
                    "items": "[" + ",".join(str(x) for x in range(n)) + "]",
                    "maxConcurrency": 100,
                    "step": loud(n),
                },
            }
            for i, n in enumerate((200, 200, 97))
        ]
        await api.create(pipeline("worst", steps, historyLimit=50))
        entry = {
            "trigger": "SpecChanged",
            "phase": "Failed",
            "reason": "TimedOut",
            "startedAt": "2026-03-01T12:00:00Z",
            "finishedAt": "2026-03-01T13:00:00Z",
            "retries": 99,
            "failedStep": "s" * 253,
            "message": "m" * 256,
        }
        await api.patch(
            API,
            "Pipeline",
            "worst",
            "default",
            {
                "status": {
                    "history": [
                        {**entry, "number": n, "id": f"worst-{n}"} for n in range(50, 0, -1)
                    ],
                    "run": {
                        "number": 50,
                        "id": "worst-50",
                        "trigger": "Rerun",
                        "phase": "Succeeded",
                        "specHash": "x",
                        "startedAt": "2026-03-01T12:00:00Z",
                    },
                }
            },
            subresource="status",
        )

        assert (await reconcile(reconciler, fetch, "worst")).outcome == "done"
    finally:
        unregister_python("test.runs.big")

    body = await fetch("worst")
    assert len(body["status"]["steps"]) == 500
    assert len(body["status"]["history"]) == 50
    assert len(json.dumps(body["status"], separators=(",", ":"))) <= MAX_STATUS_BYTES
    assert len(json.dumps(body, separators=(",", ":"))) < 1024 * 1024


async def test_a_delay_longer_than_its_steps_timeout_times_out(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, clock: Clock
) -> None:
    await api.create(
        pipeline(
            "too-long",
            [
                {
                    "name": "pause",
                    "action": "delay",
                    "with": {"duration": "1h"},
                    "timeout": "2m",
                    "retry": {"limit": 0},
                }
            ],
        )
    )
    first = await reconcile(reconciler, fetch, "too-long")
    assert first.delay == pytest.approx(120), "the next look is at the step's deadline"
    clock.advance(180)

    result = await reconcile(reconciler, fetch, "too-long")

    assert result.outcome == "failed"
    assert record(await fetch("too-long"), "pause")["reason"] == "TimedOut"
