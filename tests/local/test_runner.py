"""`kubesteps run` as a library: passes until settled, status kept in SQLite, resumed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from kubesteps.kube.client import ApiError, Credentials, KubeClient
from kubesteps.kube.conditions import find, stamp
from kubesteps.local.objects import LocalObjects
from kubesteps.local.runner import LocalResult, run_pipelines, table
from kubesteps.testing import Emulator

from .conftest import Calls


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state" / "kubesteps.db"


def pipeline(
    name: str, steps: list[dict[str, Any]], namespace: str | None = None, **spec: Any
) -> dict[str, Any]:
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {
        "apiVersion": "kubesteps.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": metadata,
        "spec": {"steps": steps, **spec},
    }


def delay(name: str, duration: str) -> dict[str, Any]:
    return {"name": name, "action": "delay", "with": {"duration": duration}}


def ready_condition(result: LocalResult) -> dict[str, Any]:
    condition = find(result.body["status"].get("conditions", []), "Ready")
    assert condition is not None, result.body["status"]
    return dict(condition)


def steps_of(result: LocalResult) -> dict[str, dict[str, Any]]:
    return {step["name"]: step for step in result.body["status"].get("steps", [])}


async def test_pipelines_run_to_ready_with_the_operators_status_shape(
    calls: Calls, state: Path
) -> None:
    lines: list[str] = []

    [result] = await run_pipelines(
        [pipeline("hello", [calls.step("one", who="a"), calls.step("two", who="b")])],
        database=state,
        budget=10,
        echo=lines.append,
    )

    assert result.ready
    assert result.settled
    assert (result.namespace, result.name) == ("default", "hello")
    assert calls.args == [{"who": "a"}, {"who": "b"}]
    ready = ready_condition(result)
    assert (ready["status"], ready["reason"]) == ("True", "Succeeded")
    assert result.body["status"]["observedGeneration"] == 1
    steps = steps_of(result)
    assert [(s["phase"], s["attempts"]) for s in steps.values()] == [("Succeeded", 1)] * 2
    assert steps["two"]["outputs"] == {"call": 2}
    transitions = [line.split()[:3] for line in lines]
    assert transitions == [
        ["hello", "one", "Running"],
        ["hello", "one", "Succeeded"],
        ["hello", "two", "Running"],
        ["hello", "two", "Succeeded"],
    ]


async def test_a_second_run_resumes_and_does_not_repeat_succeeded_steps(
    calls: Calls, state: Path
) -> None:
    manifest = pipeline("once", [calls.step("only")])
    [first] = await run_pipelines([manifest], database=state, budget=10, echo=lambda _: None)
    lines: list[str] = []

    [second] = await run_pipelines([manifest], database=state, budget=10, echo=lines.append)

    assert second.ready
    assert len(calls.args) == 1
    assert lines == []
    assert steps_of(second)["only"] == steps_of(first)["only"]  # attempts, startedAt alike
    assert second.body["metadata"]["uid"] == first.body["metadata"]["uid"]
    assert second.body["metadata"]["generation"] == 1


async def test_a_changed_spec_is_a_new_run_whose_steps_run_again(calls: Calls, state: Path) -> None:
    await run_pipelines(
        [pipeline("changing", [calls.step("greet", who="a")])],
        database=state,
        budget=10,
        echo=lambda _: None,
    )

    [result] = await run_pipelines(
        [pipeline("changing", [calls.step("greet", who="b")])],
        database=state,
        budget=10,
        echo=lambda _: None,
    )

    assert calls.args == [{"who": "a"}, {"who": "b"}]
    assert result.ready
    assert result.body["metadata"]["generation"] == 2
    assert result.body["status"]["observedGeneration"] == 2
    assert steps_of(result)["greet"]["run"] == 2
    assert result.body["status"]["run"]["trigger"] == "SpecChanged"


async def test_a_step_still_waiting_when_the_budget_runs_out_is_reported_as_such(
    state: Path,
) -> None:
    [result] = await run_pipelines(
        [pipeline("slow", [delay("pause", "1h")])], database=state, budget=0.2, echo=lambda _: None
    )

    assert not result.ready
    assert not result.settled
    assert result.result.outcome == "wait"
    assert ready_condition(result)["reason"] == "Waiting"
    assert steps_of(result)["pause"]["phase"] == "Waiting"


async def test_a_wait_resumes_where_the_previous_run_left_it(state: Path) -> None:
    manifest = pipeline("later", [delay("pause", "1h")])
    [first] = await run_pipelines([manifest], database=state, budget=0, echo=lambda _: None)
    pause = steps_of(first)["pause"]
    assert pause["phase"] == "Waiting"
    # The hour passes between the two runs: move the recorded start of the wait into the past.
    started = stamp(datetime.now(UTC) - timedelta(minutes=61))
    objects = LocalObjects(state)
    try:
        objects.patch_status("default", "later", {"steps": [{**pause, "startedAt": started}]}, None)
    finally:
        objects.close()

    [second] = await run_pipelines([manifest], database=state, budget=10, echo=lambda _: None)

    assert second.ready
    assert second.passes == 1
    done = steps_of(second)["pause"]
    assert done["phase"] == "Succeeded"
    assert done["startedAt"] == started


async def test_an_invalid_pipeline_is_reported_with_the_field_and_not_run(
    calls: Calls, state: Path
) -> None:
    manifest = pipeline("bad", [calls.step("ok"), delay("pause", "soon")])

    [result] = await run_pipelines([manifest], database=state, budget=10, echo=lambda _: None)

    assert result.result.outcome == "invalid"
    assert result.result.permanent
    assert result.settled
    assert not result.ready
    ready = ready_condition(result)
    assert ready["reason"] == "InvalidSpec"
    assert "spec.steps[1].with.duration" in ready["message"]
    assert calls.args == []


async def test_a_failing_step_fails_the_pipeline_for_good(state: Path) -> None:
    action = Calls(fail="the thing is broken")
    action.register()
    try:
        [result] = await run_pipelines(
            [pipeline("doomed", [action.step("boom")])],
            database=state,
            budget=10,
            echo=lambda _: None,
        )
    finally:
        action.unregister()

    assert result.result.outcome == "failed"
    assert result.result.permanent
    assert ready_condition(result)["reason"] == "Failed"
    assert steps_of(result)["boom"]["message"] == "the thing is broken"
    assert len(action.args) == 1


async def test_pipelines_settle_independently(calls: Calls, state: Path) -> None:
    results = await run_pipelines(
        [pipeline("fast", [calls.step("go")]), pipeline("slow", [delay("pause", "1h")])],
        database=state,
        budget=0.3,
        echo=lambda _: None,
    )

    assert [(r.name, r.ready) for r in results] == [("fast", True), ("slow", False)]
    assert results[0].passes == 1


async def test_apply_and_wait_for_work_in_the_embedded_api_in_any_namespace(
    state: Path,
) -> None:
    manifest = pipeline(
        "deploy",
        [
            {
                "name": "settings",
                "action": "apply",
                "with": {
                    "manifest": {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": {"name": "settings"},
                        "data": {"greeting": "hello"},
                    }
                },
            },
            {
                "name": "visible",
                "action": "waitFor",
                "with": {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "name": "settings",
                    "jsonPath": "{.data.greeting}",
                    "value": "hello",
                },
            },
        ],
        namespace="team-a",
    )

    [result] = await run_pipelines([manifest], database=state, budget=10, echo=lambda _: None)

    assert result.ready, ready_condition(result)
    assert result.namespace == "team-a"
    assert [s["phase"] for s in steps_of(result).values()] == ["Succeeded", "Succeeded"]


@pytest_asyncio.fixture
async def cluster(k8s_emulator: Emulator) -> AsyncIterator[KubeClient]:
    assert k8s_emulator.url is not None
    async with KubeClient(Credentials(server=k8s_emulator.url, insecure=True)) as client:
        yield client


async def test_a_given_api_client_receives_what_the_steps_apply(
    cluster: KubeClient, k8s_emulator: Emulator, state: Path
) -> None:
    manifest = pipeline(
        "deploy",
        [
            {
                "name": "settings",
                "action": "apply",
                "with": {
                    "manifest": {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": {"name": "s"},
                        "data": {"greeting": "hi"},
                    }
                },
            }
        ],
    )

    [result] = await run_pipelines(
        [manifest], database=state, budget=10, echo=lambda _: None, kube=cluster
    )

    assert result.ready
    applied = k8s_emulator.object("configmaps", "s", "default")
    assert applied is not None
    assert applied["data"] == {"greeting": "hi"}


async def test_the_table_lists_each_pipeline_then_its_steps(calls: Calls, state: Path) -> None:
    results = await run_pipelines(
        [
            pipeline("a", [calls.step("first"), calls.step("second")]),
            pipeline("b", [delay("pause", "1h")]),
        ],
        database=state,
        budget=0.2,
        echo=lambda _: None,
    )

    rows = [line.split() for line in table(results).splitlines()]

    assert rows[0] == ["PIPELINE", "READY", "REASON", "RUN", "STEP", "MESSAGE"]
    assert rows[1][:5] == ["default/a", "True", "Succeeded", "1", "-"]
    assert rows[2][:3] == ["first", "Succeeded", "attempts=1"]
    assert rows[3][:3] == ["second", "Succeeded", "attempts=1"]
    assert rows[4][:5] == ["default/b", "False", "Waiting", "1", "pause"]
    assert rows[5][:3] == ["pause", "Waiting", "attempts=0"]
    assert len(rows) == 6


# -- the SQLite home of the objects ------------------------------------------------------------


def test_objects_keep_uid_and_status_and_move_generation_only_on_spec_changes(
    state: Path,
) -> None:
    objects = LocalObjects(state)
    try:
        created = objects.put(pipeline("p", [delay("d", "1s")]))
        objects.patch_status(
            "default", "p", {"observedGeneration": 1}, created["metadata"]["resourceVersion"]
        )
        same = objects.put(pipeline("p", [delay("d", "1s")]))
        changed = objects.put(pipeline("p", [delay("d", "2s")]))
    finally:
        objects.close()

    assert [b["metadata"]["generation"] for b in (created, same, changed)] == [1, 1, 2]
    versions = [int(b["metadata"]["resourceVersion"]) for b in (created, same, changed)]
    assert versions == sorted(set(versions))
    assert same["metadata"]["uid"] == changed["metadata"]["uid"] == created["metadata"]["uid"]
    assert changed["status"] == {"observedGeneration": 1}


def test_a_status_write_on_a_stale_version_conflicts_and_changes_nothing(state: Path) -> None:
    objects = LocalObjects(state)
    try:
        body = objects.put(pipeline("p", [delay("d", "1s")]))
        stale = body["metadata"]["resourceVersion"]
        objects.patch_status("default", "p", {"phase": "one"}, stale)

        with pytest.raises(ApiError) as conflict:
            objects.patch_status("default", "p", {"phase": "two"}, stale)
        with pytest.raises(ApiError) as missing:
            objects.patch_status("default", "nope", {"phase": "two"}, None)

        stored = objects.get("default", "p")
    finally:
        objects.close()

    assert conflict.value.status == 409
    assert missing.value.status == 404
    assert stored is not None
    assert stored["status"] == {"phase": "one"}


def test_objects_outlive_the_process_in_the_file(state: Path) -> None:
    first = LocalObjects(state)
    body = first.put(pipeline("p", [delay("d", "1s")], namespace="team-a"))
    first.patch_status("team-a", "p", {"observedGeneration": 1, "gone": "x"}, None)
    first.patch_status("team-a", "p", {"gone": None}, None)  # null deletes, as a merge patch
    first.close()

    again = LocalObjects(state)
    try:
        stored = again.get("team-a", "p")
    finally:
        again.close()

    assert stored is not None
    assert stored["metadata"]["uid"] == body["metadata"]["uid"]
    assert stored["status"] == {"observedGeneration": 1}


# -- runs, locally ------------------------------------------------------------------------


async def test_a_run_that_is_done_returns_at_once_even_with_a_resync_or_throttle(
    calls: Calls, state: Path
) -> None:
    throttled = {**calls.step("often"), "throttle": {"interval": "1h"}}
    [result] = await run_pipelines(
        [pipeline("periodic", [throttled], resyncPeriod="1m")],
        database=state,
        budget=30,
        echo=lambda _: None,
    )

    assert result.ready
    assert result.passes == 1
    assert result.result.delay is not None  # a resync is due: the operator would requeue


async def test_verbs_in_the_manifest_act_once_and_a_replayed_token_is_ignored(
    calls: Calls, state: Path
) -> None:
    manifest = pipeline("verbs", [calls.step("one")])
    await run_pipelines([manifest], database=state, budget=10, echo=lambda _: None)
    manifest["metadata"]["annotations"] = {"kubesteps.dev/rerun": "first"}

    [rerun] = await run_pipelines([manifest], database=state, budget=10, echo=lambda _: None)
    [again] = await run_pipelines([manifest], database=state, budget=10, echo=lambda _: None)

    assert calls.count == 2
    assert rerun.body["status"]["run"]["number"] == 2
    assert again.body["status"]["run"]["number"] == 2
    assert rerun.body["status"]["run"]["trigger"] == "Rerun"
    assert "kubesteps.dev/rerun" not in (again.body["metadata"].get("annotations") or {})


async def test_a_cancelled_local_run_is_settled_and_not_ready(state: Path) -> None:
    manifest = pipeline("stopped", [delay("pause", "1h")])
    manifest["metadata"]["annotations"] = {"kubesteps.dev/cancel": "now"}

    [result] = await run_pipelines([manifest], database=state, budget=10, echo=lambda _: None)

    assert (result.result.outcome, result.settled, result.ready) == ("cancelled", True, False)
    assert ready_condition(result)["reason"] == "Cancelled"


async def test_a_run_waiting_for_an_approval_returns_at_once(state: Path) -> None:
    gate = {"name": "gate", "action": "approval", "with": {"message": "ship?"}}

    [result] = await run_pipelines(
        [pipeline("asks", [gate])], database=state, budget=30, echo=lambda _: None
    )

    assert (result.result.outcome, result.settled, result.passes) == ("wait", True, 1)
