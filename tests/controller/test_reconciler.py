"""One reconcile pass against the API emulator: status shape, requeues, conflicts, restarts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kubesteps.actions.registry import register_python, unregister_python
from kubesteps.controller.reconciler import Reconciler
from kubesteps.kube.client import KubeClient
from kubesteps.kube.conditions import find
from kubesteps.kube.events import EventRecorder
from kubesteps.testing import Emulator

from .conftest import API, pipeline, python_step

Fetch = Callable[[str], Any]


@pytest.fixture
def counted() -> Iterator[dict[str, int]]:
    """A python action ``test.count`` that counts its calls (and can be told to fail)."""
    calls: dict[str, int] = {}

    def count(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
        calls[ctx.name] = calls.get(ctx.name, 0) + 1
        if args.get("fail"):
            raise RuntimeError(f"{ctx.name} was told to fail")
        return {"calls": calls[ctx.name]}

    register_python("test.count", count)
    yield calls
    unregister_python("test.count")


def condition(body: dict[str, Any], kind: str) -> dict[str, Any]:
    found = find(body["status"].get("conditions", []), kind)
    assert found is not None, f"no {kind} condition in {body['status']}"
    return dict(found)


def status_patches(emulator: Emulator) -> int:
    return emulator.requests.count("patch", "pipelines.kubesteps.dev/status")


async def test_fast_steps_make_the_pipeline_ready_in_one_pass(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, k8s_emulator: Emulator
) -> None:
    await api.create(
        pipeline(
            "quick",
            [
                python_step("one", condition="First"),
                python_step("two"),
            ],
        )
    )
    result = await reconciler.reconcile(await fetch("quick"))

    assert (result.outcome, result.delay) == ("done", None)
    body = await fetch("quick")
    status = body["status"]
    assert status["observedGeneration"] == 1
    ready = condition(body, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Succeeded")
    assert ready["observedGeneration"] == 1
    assert condition(body, "Reconciling")["status"] == "False"
    assert condition(body, "Stalled")["status"] == "False"
    first = condition(body, "First")
    assert (first["status"], first["reason"]) == ("True", "Succeeded")
    assert [(s["name"], s["phase"]) for s in status["steps"]] == [
        ("one", "Succeeded"),
        ("two", "Succeeded"),
    ]
    assert status["steps"][0]["outputs"]["greeting"] == "Hello, world!"
    assert status_patches(k8s_emulator) == 1


async def test_a_second_pass_with_nothing_new_writes_nothing(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, k8s_emulator: Emulator
) -> None:
    await api.create(pipeline("steady", [python_step("one", condition="First")]))
    await reconciler.reconcile(await fetch("steady"))
    before = await fetch("steady")

    await reconciler.reconcile(before)

    after = await fetch("steady")
    assert status_patches(k8s_emulator) == 1
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


async def test_transition_time_changes_only_when_the_status_changes(
    api: KubeClient, fetch: Fetch, counted: dict[str, int]
) -> None:
    from datetime import UTC, datetime, timedelta

    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    reconciler = Reconciler(lambda: api, clock=lambda: now[0])
    await api.create(
        pipeline(
            "clock",
            [
                {"name": "wait", "action": "delay", "with": {"duration": "10s"}},
            ],
        )
    )
    await reconciler.reconcile(await fetch("clock"))
    first = condition(await fetch("clock"), "Ready")

    now[0] += timedelta(seconds=3)  # still waiting: same status, same transition time
    await reconciler.reconcile(await fetch("clock"))
    second = condition(await fetch("clock"), "Ready")
    assert second["status"] == "False"
    assert second["lastTransitionTime"] == first["lastTransitionTime"]

    now[0] += timedelta(seconds=10)  # done: False -> True moves the transition time
    await reconciler.reconcile(await fetch("clock"))
    third = condition(await fetch("clock"), "Ready")
    assert third["status"] == "True"
    assert third["lastTransitionTime"] == "2026-01-01T00:00:13Z"


async def test_a_waiting_step_requeues_after_its_delay_and_names_itself(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch
) -> None:
    await api.create(
        pipeline(
            "patient",
            [
                python_step("before"),
                {"name": "pause", "action": "delay", "with": {"duration": "5s"}},
                python_step("after"),
            ],
        )
    )
    result = await reconciler.reconcile(await fetch("patient"))

    assert result.outcome == "wait"
    assert result.delay == pytest.approx(5, abs=0.5)
    body = await fetch("patient")
    ready = condition(body, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "Waiting")
    assert "pause" in ready["message"]
    assert body["status"]["currentStep"] == "pause"
    assert condition(body, "Reconciling")["status"] == "True"
    assert [s["name"] for s in body["status"]["steps"]] == ["before", "pause"]


async def test_an_invalid_spec_is_reported_on_status_and_as_a_warning_event(
    api: KubeClient, fetch: Fetch, k8s_emulator: Emulator
) -> None:
    events = EventRecorder(lambda: api)
    reconciler = Reconciler(lambda: api, events=events)
    await api.create(
        pipeline(
            "broken",
            [
                {
                    "name": "check",
                    "when": ["self.spec.steps.size( > 1"],
                    "action": "delay",
                    "with": {"duration": "1s"},
                },
            ],
        )
    )
    result = await reconciler.reconcile(await fetch("broken"))
    await events.drain()

    assert result.outcome == "invalid"
    assert result.permanent
    body = await fetch("broken")
    ready = condition(body, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert "spec.steps[0].when[0]" in ready["message"]
    assert condition(body, "Stalled")["status"] == "True"
    listed = await api.list("v1", "Event", "default")
    warnings = [e for e in listed if e["reason"] == "InvalidSpec"]
    assert len(warnings) == 1
    assert warnings[0]["type"] == "Warning"
    assert warnings[0]["involvedObject"]["name"] == "broken"


async def test_a_spec_change_reruns_steps_unless_they_opt_out(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, counted: dict[str, int]
) -> None:
    steps = [
        {
            "name": "once",
            "action": "python",
            "rerunOnSpecChange": False,
            "with": {"function": "test.count", "args": {}},
        },
        {
            "name": "always",
            "action": "python",
            "condition": "Counted",
            "with": {"function": "test.count", "args": {}},
        },
    ]
    await api.create(pipeline("evolving", steps))
    await reconciler.reconcile(await fetch("evolving"))
    steps[1]["with"]["args"] = {"version": 2}
    await api.patch(API, "Pipeline", "evolving", "default", {"spec": {"steps": steps}})
    body = await fetch("evolving")
    assert body["metadata"]["generation"] == 2

    result = await reconciler.reconcile(body)

    assert result.outcome == "done"
    assert counted == {"once": 1, "always": 2}
    after = await fetch("evolving")
    assert after["status"]["observedGeneration"] == 2
    assert condition(after, "Counted")["observedGeneration"] == 2
    assert condition(after, "Ready")["observedGeneration"] == 2
    run = after["status"]["run"]
    assert (run["number"], run["trigger"], run["phase"]) == (2, "SpecChanged", "Succeeded")
    records = {s["name"]: s for s in after["status"]["steps"]}
    assert (records["once"]["run"], records["once"]["fromRun"]) == (2, 1)
    assert "fromRun" not in records["always"]


async def test_conditions_it_does_not_own_are_kept(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch
) -> None:
    await api.create(pipeline("shared", [python_step("one")]))
    foreign = {
        "type": "External",
        "status": "True",
        "reason": "SetByOthers",
        "message": "",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }
    await api.patch(
        API,
        "Pipeline",
        "shared",
        "default",
        {"status": {"conditions": [foreign]}},
        subresource="status",
    )

    await reconciler.reconcile(await fetch("shared"))

    body = await fetch("shared")
    assert condition(body, "External") == foreign
    assert condition(body, "Ready")["status"] == "True"


async def test_a_conflicting_write_is_redone_on_top_of_a_fresh_read(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, k8s_emulator: Emulator
) -> None:
    await api.create(pipeline("contested", [python_step("one")]))
    stale = await fetch("contested")
    # Somebody else writes a condition after we read the object: our write must not erase it.
    other = {
        "type": "Audited",
        "status": "True",
        "reason": "Checked",
        "message": "",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }
    await api.patch(
        API,
        "Pipeline",
        "contested",
        "default",
        {"status": {"conditions": [other]}},
        subresource="status",
    )

    result = await reconciler.reconcile(stale)

    assert result.outcome == "done"
    body = await fetch("contested")
    assert condition(body, "Audited") == other
    assert condition(body, "Ready")["status"] == "True"
    assert status_patches(k8s_emulator) == 3  # theirs, our refused one, our retried one


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_throttling_and_server_errors_are_retried(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, k8s_emulator: Emulator, status: int
) -> None:
    await api.create(pipeline("flaky", [python_step("one")]))
    k8s_emulator.inject(
        verb="patch",
        resource="pipelines",
        subresource="status",
        status=status,
        times=2,
        retry_after=0 if status == 429 else None,
    )

    result = await reconciler.reconcile(await fetch("flaky"))

    assert result.outcome == "done"
    assert condition(await fetch("flaky"), "Ready")["status"] == "True"


async def test_a_restart_resumes_without_rerunning_succeeded_steps(
    api: KubeClient, fetch: Fetch, counted: dict[str, int]
) -> None:
    await api.create(
        pipeline(
            "resumable",
            [
                {"name": "first", "action": "python", "with": {"function": "test.count"}},
                {"name": "pause", "action": "delay", "with": {"duration": "100ms"}},
                {"name": "last", "action": "python", "with": {"function": "test.count"}},
            ],
        )
    )
    first = await Reconciler(lambda: api).reconcile(await fetch("resumable"))
    assert first.outcome == "wait"

    import asyncio

    await asyncio.sleep(0.15)
    restarted = Reconciler(lambda: api)  # a new process knows only what the status says
    second = await restarted.reconcile(await fetch("resumable"))

    assert second.outcome == "done"
    assert counted == {"first": 1, "last": 1}


async def test_a_step_that_fails_for_good_stalls_the_pipeline(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, counted: dict[str, int]
) -> None:
    await api.create(
        pipeline(
            "doomed",
            [
                {
                    "name": "breaks",
                    "action": "python",
                    "retry": {"limit": 0},
                    "with": {"function": "test.count", "args": {"fail": True}},
                },
                python_step("never"),
            ],
        )
    )
    result = await reconciler.reconcile(await fetch("doomed"))

    assert result.outcome == "failed"
    assert result.permanent
    assert result.step == "breaks"
    body = await fetch("doomed")
    ready = condition(body, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "Failed")
    assert "breaks was told to fail" in ready["message"]
    assert condition(body, "Stalled")["status"] == "True"
    assert [s["name"] for s in body["status"]["steps"]] == ["breaks"]


async def test_a_failing_step_retries_with_backoff_before_failing(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, counted: dict[str, int]
) -> None:
    await api.create(
        pipeline(
            "bumpy",
            [
                {
                    "name": "shaky",
                    "action": "python",
                    "retry": {"limit": 2, "backoff": {"initial": "2s", "max": "10s", "jitter": 0}},
                    "with": {"function": "test.count", "args": {"fail": True}},
                },
            ],
        )
    )
    result = await reconciler.reconcile(await fetch("bumpy"))

    assert result.outcome == "retry"
    assert result.delay == pytest.approx(2.0, abs=0.01)
    body = await fetch("bumpy")
    record = body["status"]["steps"][0]
    assert (record["phase"], record["attempts"]) == ("Retrying", 1)
    assert condition(body, "Ready")["reason"] == "Retrying"
    # An early pass (e.g. another event) does not run the step before its backoff is over.
    again = await reconciler.reconcile(body)
    assert again.outcome == "retry"
    assert counted == {"shaky": 1}


async def test_suspend_runs_nothing(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, counted: dict[str, int]
) -> None:
    await api.create(
        pipeline(
            "paused",
            [
                {"name": "work", "action": "python", "with": {"function": "test.count"}},
            ],
            suspend=True,
        )
    )
    result = await reconciler.reconcile(await fetch("paused"))

    assert (result.outcome, result.delay) == ("suspended", None)
    assert counted == {}
    assert condition(await fetch("paused"), "Ready")["reason"] == "Suspended"


async def test_twenty_fast_steps_take_one_status_write(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, k8s_emulator: Emulator
) -> None:
    await api.create(pipeline("wide", [python_step(f"s{i}") for i in range(20)]))
    result = await reconciler.reconcile(await fetch("wide"))

    assert result.outcome == "done"
    assert status_patches(k8s_emulator) == 1
    assert len((await fetch("wide"))["status"]["steps"]) == 20


async def test_outputs_of_earlier_steps_reach_later_steps_through_cel(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch
) -> None:
    await api.create(
        pipeline(
            "chained",
            [
                {
                    "name": "first",
                    "action": "python",
                    "with": {"function": "kubesteps.examples.greet", "args": {"who": "cel"}},
                },
                {
                    "name": "second",
                    "action": "python",
                    "when": ["steps.first.outputs.who == 'cel'"],
                    "with": {
                        "function": "kubesteps.examples.greet",
                        "args": {"who": "${ steps.first.outputs.greeting }"},
                    },
                },
            ],
        )
    )
    await reconciler.reconcile(await fetch("chained"))

    records = {s["name"]: s for s in (await fetch("chained"))["status"]["steps"]}
    assert records["second"]["phase"] == "Succeeded"
    assert records["second"]["outputs"]["who"] == "Hello, cel!"


async def test_a_long_step_is_shown_running_while_it_runs(
    api: KubeClient, fetch: Fetch, k8s_emulator: Emulator
) -> None:
    import asyncio

    seen: list[dict[str, Any]] = []

    async def slow(ctx: Any, args: dict[str, Any]) -> None:
        await asyncio.sleep(0.3)  # longer than the keeper's running-flush delay below
        seen.append(await api.get(API, "Pipeline", "slow", "default") or {})

    register_python("test.slow", slow)
    try:
        reconciler = Reconciler(lambda: api, running_flush_after=0.05)
        await api.create(
            pipeline(
                "slow",
                [
                    {"name": "long", "action": "python", "with": {"function": "test.slow"}},
                ],
            )
        )
        result = await reconciler.reconcile(await fetch("slow"))
    finally:
        unregister_python("test.slow")

    assert result.outcome == "done"
    during = seen[0]["status"]
    assert during["steps"][0]["phase"] == "Running"
    assert find(during["conditions"], "Ready")["reason"] == "Running"  # type: ignore[index]
    assert during["currentStep"] == "long"
    assert status_patches(k8s_emulator) == 2  # one while running, one at the end


async def test_a_done_pipeline_with_a_resync_period_requeues_after_it(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch
) -> None:
    await api.create(pipeline("periodic", [python_step("one")], resyncPeriod="10m"))

    result = await reconciler.reconcile(await fetch("periodic"))

    assert (result.outcome, result.delay) == ("done", 600)


async def test_a_throttled_step_asks_for_a_pass_when_it_is_due_again(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, counted: dict[str, int]
) -> None:
    await api.create(
        pipeline(
            "throttled",
            [
                {
                    "name": "probe",
                    "action": "python",
                    "throttle": {"interval": "5m"},
                    "with": {"function": "test.count"},
                },
            ],
        )
    )
    first = await reconciler.reconcile(await fetch("throttled"))
    second = await reconciler.reconcile(await fetch("throttled"))

    assert first.outcome == "done"
    assert first.delay == pytest.approx(300, abs=2)
    assert second.outcome == "done"
    assert counted == {"probe": 1}  # not due again yet: throttled, not re-run
    record = (await fetch("throttled"))["status"]["steps"][0]
    assert (record["phase"], record["reason"]) == ("Throttled", "Throttled")
    assert (await fetch("throttled"))["status"]["lastRuns"]["probe"]


async def test_the_pipeline_timeout_fails_a_run_that_takes_too_long(
    api: KubeClient, fetch: Fetch
) -> None:
    from datetime import UTC, datetime, timedelta

    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    reconciler = Reconciler(lambda: api, clock=lambda: now[0])
    await api.create(
        pipeline(
            "slowpoke",
            [
                {"name": "pause", "action": "delay", "with": {"duration": "1h"}},
            ],
            timeout="10m",
        )
    )
    assert (await reconciler.reconcile(await fetch("slowpoke"))).outcome == "wait"

    now[0] += timedelta(minutes=11)
    result = await reconciler.reconcile(await fetch("slowpoke"))

    assert result.outcome == "failed"
    assert "spec.timeout" in result.message
    assert condition(await fetch("slowpoke"), "Stalled")["status"] == "True"


async def test_the_pipeline_timeout_does_not_fail_a_finished_run_on_resync(
    api: KubeClient, fetch: Fetch
) -> None:
    from datetime import UTC, datetime, timedelta

    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    reconciler = Reconciler(lambda: api, clock=lambda: now[0])
    await api.create(pipeline("punctual", [python_step("one")], timeout="10m", resyncPeriod="1h"))
    assert (await reconciler.reconcile(await fetch("punctual"))).outcome == "done"

    now[0] += timedelta(hours=1)  # the resync pass of a run that finished long ago
    result = await reconciler.reconcile(await fetch("punctual"))

    assert result.outcome == "done"
    assert condition(await fetch("punctual"), "Ready")["status"] == "True"


async def test_a_template_that_cannot_be_filled_at_build_time_is_an_invalid_spec(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch
) -> None:
    await api.create(
        pipeline(
            "unfillable",
            [
                {
                    "name": "probe",
                    "action": "delay",
                    "with": {"duration": "1s"},
                    "throttle": {
                        "interval": "5m",
                        "partitionKey": "${ self.metadata.labels.team }",
                    },
                },
            ],
        )
    )

    result = await reconciler.reconcile(await fetch("unfillable"))

    assert result.outcome == "invalid"
    ready = condition(await fetch("unfillable"), "Ready")
    assert ready["reason"] == "InvalidSpec"
    assert "team" in ready["message"]


async def test_records_of_steps_gone_from_the_spec_are_dropped(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch
) -> None:
    await api.create(pipeline("shrinking", [python_step("old"), python_step("kept")]))
    await reconciler.reconcile(await fetch("shrinking"))
    await api.patch(
        API, "Pipeline", "shrinking", "default", {"spec": {"steps": [python_step("kept")]}}
    )

    await reconciler.reconcile(await fetch("shrinking"))

    steps = (await fetch("shrinking"))["status"]["steps"]
    assert [(s["name"], s["run"]) for s in steps] == [("kept", 2)]


async def test_an_invalid_spec_keeps_the_records_a_later_fix_needs(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, counted: dict[str, int]
) -> None:
    once = {
        "name": "once",
        "action": "python",
        "rerunOnSpecChange": False,
        "with": {"function": "test.count"},
    }
    await api.create(pipeline("typo", [once]))
    await reconciler.reconcile(await fetch("typo"))
    await api.patch(
        API,
        "Pipeline",
        "typo",
        "default",
        {
            "spec": {
                "steps": [
                    once,
                    {
                        "name": "bad",
                        "when": ["steps.nope.phase == 'x'"],
                        "action": "python",
                        "with": {"function": "test.count"},
                    },
                ]
            }
        },
    )
    assert (await reconciler.reconcile(await fetch("typo"))).outcome == "invalid"
    await api.patch(
        API,
        "Pipeline",
        "typo",
        "default",
        {
            "spec": {
                "steps": [
                    once,
                    {"name": "good", "action": "python", "with": {"function": "test.count"}},
                ]
            }
        },
    )

    assert (await reconciler.reconcile(await fetch("typo"))).outcome == "done"
    assert counted == {"once": 1, "good": 1}


async def test_a_running_write_never_lands_after_the_final_one(
    api: KubeClient, fetch: Fetch, k8s_emulator: Emulator
) -> None:
    from kubesteps.keepers.status_keeper import ConditionsKeeper
    from kubesteps.keepers.summary import Summary
    from kubesteps.kube.status_writer import ObjectRef, StatusWriter

    await api.create(pipeline("ordered", [python_step("one")]))
    body = await fetch("ordered")
    keeper = ConditionsKeeper(StatusWriter(api, ObjectRef.of(body)), body, flush_running_after=None)
    keeper._flush_in_background()  # the timer fired just before the pass committed
    await keeper.commit(
        Summary(ready="True", reason="Succeeded", message="done", reconciling=False, stalled=False)
    )
    import asyncio

    await asyncio.sleep(0.1)

    assert condition(await fetch("ordered"), "Ready")["reason"] == "Succeeded"


async def test_large_outputs_are_trimmed_to_keep_the_status_small(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch
) -> None:
    def big(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
        return {"blob": "x" * 7000}

    register_python("test.big", big)
    try:
        await api.create(
            pipeline(
                "bulky",
                [
                    {
                        "name": "fan",
                        "forEach": {
                            "items": "[" + ",".join(str(i) for i in range(100)) + "]",
                            "step": {"action": "python", "with": {"function": "test.big"}},
                        },
                    },
                ],
            )
        )
        result = await reconciler.reconcile(await fetch("bulky"))
    finally:
        unregister_python("test.big")

    assert result.outcome == "done"
    steps = (await fetch("bulky"))["status"]["steps"]
    assert len(steps) == 101
    assert all(s["phase"] == "Succeeded" for s in steps)
    dropped = [s for s in steps if s.get("outputs") == {"outputsDropped": True}]
    assert dropped
    import json

    assert len(json.dumps(steps)) < 600 * 1024


async def test_a_foreach_over_too_many_items_fails_naming_the_limit(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch
) -> None:
    manifest = pipeline(
        "huge",
        [
            {
                "name": "fan",
                "forEach": {
                    "items": "self.metadata.annotations.map(k, k)",
                    "step": {"action": "delay", "with": {"duration": "1s"}},
                },
            },
        ],
    )
    # Known only at run time (a constant list this long is refused by validation).
    manifest["metadata"]["annotations"] = {f"item-{i}": "x" for i in range(201)}
    await api.create(manifest)

    result = await reconciler.reconcile(await fetch("huge"))

    assert result.outcome == "failed"
    assert "201 items" in result.message
    assert "at most 200" in result.message


def test_the_keepers_limits_are_the_crds() -> None:
    from kubesteps.keepers.status_keeper import MAX_MESSAGE, MAX_RECORDS
    from kubesteps.pipeline.status import MAX_STEP_MESSAGE, MAX_STEP_RECORDS

    assert (MAX_RECORDS, MAX_MESSAGE) == (MAX_STEP_RECORDS, MAX_STEP_MESSAGE)


async def test_a_step_condition_the_spec_no_longer_declares_is_removed_and_only_it(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch
) -> None:
    await api.create(pipeline("renamed", [python_step("one", condition="First")]))
    await reconciler.reconcile(await fetch("renamed"))
    foreign = {
        "type": "External",
        "status": "True",
        "reason": "SetByOthers",
        "message": "",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }
    body = await fetch("renamed")
    await api.patch(
        API,
        "Pipeline",
        "renamed",
        "default",
        {"status": {"conditions": [*body["status"]["conditions"], foreign]}},
        subresource="status",
    )
    await api.patch(
        API,
        "Pipeline",
        "renamed",
        "default",
        {"spec": {"steps": [python_step("one", condition="Second")]}},
    )

    await reconciler.reconcile(await fetch("renamed"))

    after = await fetch("renamed")
    types = [c["type"] for c in after["status"]["conditions"]]
    assert "First" not in types
    assert condition(after, "Second")["status"] == "True"
    assert condition(after, "External") == foreign
    assert after["status"]["stepConditions"] == ["Second"]


def test_each_pass_outcome_has_a_metric_series_and_each_engine_outcome_a_pass_outcome() -> None:
    from kubesteps.controller.reconciler import PassOutcome
    from kubesteps.engine import OutcomeKind
    from kubesteps.telemetry.metrics import RECONCILE_OUTCOMES

    assert {*PassOutcome, "error"} == set(RECONCILE_OUTCOMES)
    assert [PassOutcome.of(kind).value for kind in OutcomeKind] == [k.value for k in OutcomeKind]
