"""Params, switch, finally and schedules, pass by pass against the API emulator with an
injected clock (nothing sleeps)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubesteps.controller.reconciler import Reconciler
from kubesteps.kube.client import KubeClient
from kubesteps.kube.events import EventRecorder
from kubesteps.telemetry.metrics import OperatorMetrics
from kubesteps.testing import Emulator

from .conftest import pipeline
from .test_runs import (
    JOB,
    Calls,
    Clock,
    Fetch,
    annotate,
    calls,
    clock,
    event_messages,
    event_reasons,
    events,
    jobs,
    metrics,
    ready,
    reconcile,
    reconciler,
    record,
    run_of,
    spec_patch,
    work,
)

# Fixtures shared with test_runs.py.
__all__ = ["calls", "clock", "events", "metrics", "reconciler"]


def echo(name: str, **args: Any) -> dict[str, Any]:
    """A step whose outputs are its rendered args (test.runs.work counts, greet echoes)."""
    return {
        "name": name,
        "action": "python",
        "with": {"function": "kubesteps.examples.greet", "args": args},
    }


# -- params -------------------------------------------------------------------------------


async def test_params_reach_every_place_cel_is_allowed(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch
) -> None:
    await api.create(
        pipeline(
            "inputs",
            [
                {
                    "name": "fan",
                    "forEach": {
                        "items": "params.targets",
                        "step": {
                            "action": "python",
                            "throttle": {
                                "interval": "1h",
                                "partitionKey": "${ params.region }-${ item }",
                            },
                            "with": {
                                "function": "kubesteps.examples.greet",
                                "args": {"who": "${ item }@${ params.region }"},
                            },
                        },
                    },
                },
                echo("only-eu", who="${ params.region }") | {"when": ["params.region == 'eu'"]},
                echo("only-us", who="us") | {"when": ["params.region == 'us'"]},
            ],
            params=[
                {"name": "region", "value": "eu", "enum": ["eu", "us"]},
                {"name": "targets", "value": ["a", "b"]},
            ],
        )
    )

    assert (await reconcile(reconciler, fetch, "inputs")).outcome == "done"

    body = await fetch("inputs")
    assert record(body, "fan-1")["outputs"]["who"] == "b@eu"
    assert record(body, "only-eu")["outputs"]["who"] == "eu"
    assert record(body, "only-us")["phase"] == "Skipped"
    assert sorted(body["status"]["lastRuns"]) == ["eu-a", "eu-b"]


async def test_a_change_of_a_params_value_starts_a_new_run(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch
) -> None:
    params = [{"name": "who", "value": "ann"}]
    await api.create(pipeline("greeter", [echo("hi", who="${ params.who }")], params=params))
    await reconcile(reconciler, fetch, "greeter")
    await spec_patch(api, "greeter", {"params": [{"name": "who", "value": "bob"}]})

    await reconcile(reconciler, fetch, "greeter")

    body = await fetch("greeter")
    assert (run_of(body)["number"], run_of(body)["trigger"]) == (2, "SpecChanged")
    assert record(body, "hi")["outputs"]["who"] == "bob"


# -- switch -------------------------------------------------------------------------------


def switch(name: str, *branches: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "switch": {"steps": list(branches)}}


async def test_a_switch_takes_the_first_branch_that_holds(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, calls: Calls
) -> None:
    await api.create(
        pipeline(
            "choose",
            [
                switch(
                    "deploy",
                    work("eu") | {"when": ["params.region == 'eu'"]},
                    work("us") | {"when": ["params.region == 'us'"]},
                    work("anywhere"),
                )
            ],
            params=[{"name": "region", "value": "us"}],
        )
    )

    assert (await reconcile(reconciler, fetch, "choose")).outcome == "done"

    body = await fetch("choose")
    assert calls.counts == {"us": 1}
    for name in ("eu", "anywhere"):
        assert (record(body, name)["phase"], record(body, name)["reason"]) == (
            "Skipped",
            "NotTaken",
        )
        assert record(body, name)["message"] == "another case was taken: 'us'"


async def test_a_switch_without_a_match_takes_its_default_or_is_skipped(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, calls: Calls
) -> None:
    await api.create(
        pipeline(
            "defaults",
            [
                switch("with-default", work("never") | {"when": ["false"]}, work("fallback")),
                switch("without", work("nope") | {"when": ["1 == 2"]}),
            ],
        )
    )

    assert (await reconcile(reconciler, fetch, "defaults")).outcome == "done"

    body = await fetch("defaults")
    assert calls.counts == {"fallback": 1}
    skipped = record(body, "without")
    assert (skipped["phase"], skipped["reason"], skipped["message"]) == (
        "Skipped",
        "NoCaseTaken",
        "no case was taken",
    )


# -- finally ------------------------------------------------------------------------------


def final(name: str, **extra: Any) -> dict[str, Any]:
    """A finally step whose outputs say what it saw: ``who`` the phase, ``greeting`` the
    failed step."""
    return echo(name, who="${ run.phase }", greeting="${ 'at ' + run.failedStep }") | extra


async def test_finally_runs_after_success_and_sees_the_phase(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, calls: Calls
) -> None:
    await api.create(pipeline("tidy", [work("main")], **{"finally": [final("cleanup")]}))

    assert (await reconcile(reconciler, fetch, "tidy")).outcome == "done"

    body = await fetch("tidy")
    assert record(body, "cleanup")["outputs"]["who"] == "Succeeded"
    run = run_of(body)
    assert (run["phase"], run["finallyDone"], run["ending"]["phase"]) == (
        "Succeeded",
        True,
        "Succeeded",
    )


async def test_finally_after_a_failure_keeps_the_failure_and_may_alert_only_then(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, calls: Calls
) -> None:
    calls.broken.add("main")
    await api.create(
        pipeline(
            "alerting",
            [work("main", retry={"limit": 0})],
            **{
                "finally": [
                    final("alert", when=["run.phase == 'Failed'"]),
                    final("celebrate", when=["run.phase == 'Succeeded'"]),
                ]
            },
        )
    )

    result = await reconcile(reconciler, fetch, "alerting")

    assert (result.outcome, result.step) == ("failed", "main")
    body = await fetch("alerting")
    assert record(body, "alert")["outputs"] == {
        "who": "Failed",
        "greeting": "at main",
        "step": "alert",
    }
    assert record(body, "celebrate")["phase"] == "Skipped"
    assert run_of(body)["message"] == "step 'main': main is broken"
    assert ready(body)["reason"] == "Failed"


async def test_a_failing_finally_step_fails_a_run_that_succeeded(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, calls: Calls
) -> None:
    calls.broken.add("notify")
    await api.create(
        pipeline("noisy", [work("main")], **{"finally": [work("notify", retry={"limit": 0})]})
    )

    result = await reconcile(reconciler, fetch, "noisy")

    assert result.outcome == "failed"
    run = run_of(await fetch("noisy"))
    assert (run["phase"], run["reason"], run["failedStep"]) == ("Failed", "FinallyFailed", "notify")
    assert run["message"] == "finally step 'notify' failed: notify is broken"


async def test_finally_runs_after_a_timeout_and_after_a_cancel(
    api: KubeClient,
    reconciler: Reconciler,
    fetch: Fetch,
    clock: Clock,
    k8s_emulator: Emulator,
) -> None:
    await api.create(
        pipeline(
            "late",
            [{"name": "wait", "action": "delay", "with": {"duration": "1h"}}],
            timeout="1m",
            **{"finally": [final("after")]},
        )
    )
    await api.create(
        pipeline(
            "stopped",
            [{"name": "build", "action": "job", "with": JOB}],
            **{"finally": [final("after-cancel")]},
        )
    )
    await reconcile(reconciler, fetch, "late")
    await reconcile(reconciler, fetch, "stopped")
    clock.advance(61)
    await annotate(api, "stopped", "kubesteps.dev/cancel", "c")

    assert (await reconcile(reconciler, fetch, "late")).outcome == "failed"
    assert (await reconcile(reconciler, fetch, "stopped")).outcome == "cancelled"

    late, stopped = await fetch("late"), await fetch("stopped")
    assert record(late, "after")["outputs"]["who"] == "Failed"
    assert run_of(late)["reason"] == "TimedOut"
    assert record(stopped, "after-cancel")["outputs"]["who"] == "Cancelled"
    assert run_of(stopped)["phase"] == "Cancelled"
    assert jobs(k8s_emulator) == []


async def test_finally_that_waits_keeps_the_run_going_and_a_second_cancel_stops_it(
    api: KubeClient,
    reconciler: Reconciler,
    fetch: Fetch,
    calls: Calls,
) -> None:
    await api.create(
        pipeline(
            "slow-finally",
            [work("main")],
            **{"finally": [{"name": "drain", "action": "delay", "with": {"duration": "10m"}}]},
        )
    )
    waiting = await reconcile(reconciler, fetch, "slow-finally")
    assert (waiting.outcome, waiting.step) == ("wait", "drain")
    body = await fetch("slow-finally")
    assert (run_of(body)["phase"], run_of(body)["ending"]["phase"]) == ("Running", "Succeeded")
    assert ready(body)["message"].startswith("the steps succeeded; finally: ")
    await annotate(api, "slow-finally", "kubesteps.dev/cancel", "stop")

    assert (await reconcile(reconciler, fetch, "slow-finally")).outcome == "cancelled"

    body = await fetch("slow-finally")
    assert (record(body, "drain")["phase"], record(body, "drain")["reason"]) == (
        "Failed",
        "Cancelled",
    )
    assert run_of(body)["phase"] == "Cancelled"


async def test_a_retry_runs_the_finally_steps_again(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, calls: Calls
) -> None:
    calls.broken.add("main")
    await api.create(
        pipeline("again", [work("main", retry={"limit": 0})], **{"finally": [work("report")]})
    )
    await reconcile(reconciler, fetch, "again")
    calls.broken.clear()
    await annotate(api, "again", "kubesteps.dev/retry", "r")

    assert (await reconcile(reconciler, fetch, "again")).outcome == "done"

    assert calls.counts == {"main": 2, "report": 2}


# -- schedules ----------------------------------------------------------------------------


START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def scheduled(name: str, steps: list[dict[str, Any]], **schedule: Any) -> dict[str, Any]:
    return pipeline(name, steps, schedule={"cron": "*/10 * * * *", **schedule})


async def test_a_scheduled_pipeline_waits_for_its_first_tick_then_runs_each_tick(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, calls: Calls, clock: Clock
) -> None:
    clock.advance(30)  # 12:00:30
    await api.create(scheduled("ticking", [work("job")]))

    first = await reconcile(reconciler, fetch, "ticking")

    assert first.delay == pytest.approx(570)  # exactly at 12:10
    body = await fetch("ticking")
    assert "run" not in body["status"]
    assert (ready(body)["reason"], ready(body)["message"]) == (
        "Scheduled",
        "no run yet: the first starts at 2026-03-01T12:10:00Z",
    )
    assert body["status"]["schedule"]["nextScheduleTime"] == "2026-03-01T12:10:00Z"
    clock.advance(570)

    ran = await reconcile(reconciler, fetch, "ticking")

    assert ran.delay == pytest.approx(600)
    body = await fetch("ticking")
    assert (run_of(body)["number"], run_of(body)["trigger"]) == (1, "Schedule")
    assert body["status"]["schedule"]["lastScheduleTime"] == "2026-03-01T12:10:00Z"
    assert body["status"]["schedule"]["lastSuccessfulTime"] == "2026-03-01T12:10:00Z"
    clock.advance(600)
    await reconcile(reconciler, fetch, "ticking")
    assert run_of(await fetch("ticking"))["number"] == 2
    assert calls.counts == {"job": 2}


async def test_forbid_skips_a_tick_while_a_run_is_at_work(
    api: KubeClient,
    reconciler: Reconciler,
    fetch: Fetch,
    clock: Clock,
    events: EventRecorder,
) -> None:
    await api.create(
        scheduled("exclusive", [{"name": "long", "action": "delay", "with": {"duration": "15m"}}])
    )
    await reconcile(reconciler, fetch, "exclusive")
    clock.advance(600)
    await reconcile(reconciler, fetch, "exclusive")  # 12:10: run 1 starts
    clock.advance(600)

    await reconcile(reconciler, fetch, "exclusive")  # 12:20: run 1 still at work

    body = await fetch("exclusive")
    assert run_of(body)["number"] == 1
    assert body["status"]["schedule"]["lastScheduleTime"] == "2026-03-01T12:20:00Z"
    (skipped,) = await event_messages(api, events, "ScheduleSkipped")
    assert skipped == (
        "the tick at 2026-03-01T12:20:00Z was skipped: run exclusive-1 is "
        "still at work (concurrencyPolicy Forbid)"
    )


async def test_replace_cancels_the_run_at_work_and_starts_anew(
    api: KubeClient,
    reconciler: Reconciler,
    fetch: Fetch,
    clock: Clock,
    k8s_emulator: Emulator,
) -> None:
    await api.create(
        scheduled(
            "replacing",
            [{"name": "build", "action": "job", "with": JOB}],
            concurrencyPolicy="Replace",
        )
    )
    await reconcile(reconciler, fetch, "replacing")
    clock.advance(600)
    await reconcile(reconciler, fetch, "replacing")
    assert jobs(k8s_emulator) == ["replacing-build-1-1"]
    clock.advance(600)

    await reconcile(reconciler, fetch, "replacing")

    body = await fetch("replacing")
    assert run_of(body)["number"] == 2
    (old,) = body["status"]["history"]
    assert (old["phase"], old["reason"]) == ("Cancelled", "Replaced")
    assert jobs(k8s_emulator) == ["replacing-build-2-1"]


async def test_after_downtime_one_catch_up_run_or_none_past_the_deadline(
    api: KubeClient,
    reconciler: Reconciler,
    fetch: Fetch,
    calls: Calls,
    clock: Clock,
    events: EventRecorder,
) -> None:
    await api.create(scheduled("catch-up", [work("one")]))
    await api.create(scheduled("strict", [work("two")], startingDeadline="2m"))
    await reconcile(reconciler, fetch, "catch-up")
    await reconcile(reconciler, fetch, "strict")
    clock.advance(3 * 3600 + 5 * 60)  # the operator was down for three hours: 12:05 -> 15:05

    await reconcile(reconciler, fetch, "catch-up")
    await reconcile(reconciler, fetch, "strict")

    assert calls.counts == {"one": 1}, "18 missed ticks: one catch-up run, none past 2m"
    assert run_of(await fetch("catch-up"))["number"] == 1
    strict = await fetch("strict")
    assert "run" not in strict["status"]
    assert strict["status"]["schedule"]["lastScheduleTime"] == "2026-03-01T15:00:00Z"
    (missed,) = await event_messages(api, events, "ScheduleMissed")
    assert "missed by more than startingDeadline 2m" in missed


async def test_a_tick_fired_before_a_crash_is_not_fired_again(
    api: KubeClient, fetch: Fetch, calls: Calls, clock: Clock
) -> None:
    await api.create(scheduled("once-per-tick", [work("one")]))
    first = Reconciler(lambda: api, clock=clock)
    await first.reconcile(await fetch("once-per-tick"))
    clock.advance(600)
    await first.reconcile(await fetch("once-per-tick"))  # the tick fires: run 1

    restarted = Reconciler(lambda: api, clock=clock)  # the operator died and came back
    clock.advance(5)
    await restarted.reconcile(await fetch("once-per-tick"))

    assert calls.counts == {"one": 1}
    assert run_of(await fetch("once-per-tick"))["number"] == 1


async def test_scheduling_suspends_itself_after_failures_in_a_row_until_changed(
    api: KubeClient,
    reconciler: Reconciler,
    fetch: Fetch,
    calls: Calls,
    clock: Clock,
    events: EventRecorder,
    metrics: OperatorMetrics,
) -> None:
    calls.broken.add("flaky")
    await api.create(
        scheduled("dead-letter", [work("flaky", retry={"limit": 0})], suspendAfterFailures=2)
    )
    await reconcile(reconciler, fetch, "dead-letter")
    for _ in range(2):
        clock.advance(600)
        await reconcile(reconciler, fetch, "dead-letter")

    body = await fetch("dead-letter")
    assert body["status"]["schedule"]["consecutiveFailures"] == 2
    assert body["status"]["schedule"]["suspended"] is True
    assert "nextScheduleTime" not in body["status"]["schedule"]
    assert ready(body)["reason"] == "ScheduleSuspended"
    assert "ScheduleSuspended" in await event_reasons(api, events, "dead-letter")
    assert "kubesteps_schedules_suspended_total 1.0" in metrics.render()
    clock.advance(600)
    await reconcile(reconciler, fetch, "dead-letter")
    assert run_of(await fetch("dead-letter"))["number"] == 2, "no tick while suspended"

    calls.broken.clear()
    await spec_patch(
        api, "dead-letter", {"schedule": {"cron": "*/5 * * * *", "suspendAfterFailures": 2}}
    )
    # A changed schedule resumes: the tick of 12:30 it would have run comes at once.
    await reconcile(reconciler, fetch, "dead-letter")
    body = await fetch("dead-letter")
    assert (run_of(body)["number"], run_of(body)["phase"]) == (3, "Succeeded")
    assert body["status"]["schedule"]["consecutiveFailures"] == 0


async def test_a_suspended_schedule_starts_nothing_and_shows_no_next_time(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, calls: Calls, clock: Clock
) -> None:
    await api.create(scheduled("paused", [work("one")], suspend=True))
    first = await reconcile(reconciler, fetch, "paused")
    clock.advance(3600)
    await reconcile(reconciler, fetch, "paused")

    assert calls.counts == {}
    assert first.delay is None
    assert "nextScheduleTime" not in (await fetch("paused"))["status"]["schedule"]


async def test_ticks_follow_the_time_zone_across_a_daylight_saving_change(
    api: KubeClient, fetch: Fetch, calls: Calls
) -> None:
    """Berlin falls back on 2026-10-25 (03:00 CEST -> 02:00 CET): a daily 02:30 job runs
    once that day, at 00:30 UTC, and at 01:30 UTC the next."""
    now = [datetime(2026, 10, 24, 12, 0, tzinfo=UTC)]
    reconciler = Reconciler(lambda: api, clock=lambda: now[0])
    await api.create(
        pipeline(
            "nightly", [work("one")], schedule={"cron": "30 2 * * *", "timeZone": "Europe/Berlin"}
        )
    )
    fired = []
    for _ in range(6):
        result = await reconciler.reconcile(await fetch("nightly"))
        status = (await fetch("nightly"))["status"]
        if "run" in status and status["run"]["startedAt"] not in fired:
            fired.append(status["run"]["startedAt"])
        assert result.delay is not None
        now[0] += timedelta(seconds=result.delay)

    assert fired[:2] == ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]
