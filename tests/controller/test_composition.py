"""DAGs (needs), PipelineTemplates (uses) and child Pipelines (the pipeline action), pass by
pass through the reconciler against the API emulator (the CRDs are the generated ones, so
every object is checked as the API server would)."""

from __future__ import annotations

from typing import Any

from kubesteps.controller.reconciler import TEMPLATE_RECHECK, Reconciler
from kubesteps.kube.client import KubeClient
from kubesteps.testing import Emulator

from .conftest import API, pipeline
from .test_runs import (
    Calls,
    Fetch,
    annotate,
    calls,
    clock,
    events,
    finish_job,
    job_step,
    jobs,
    metrics,
    ready,
    reconcile,
    reconciler,
    record,
    run_of,
    work,
)

# Fixtures shared with test_runs.py.
__all__ = ["calls", "clock", "events", "metrics", "reconciler"]


def template(name: str, steps: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "PipelineTemplate",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"steps": steps, **spec},
    }


def greet(name: str, who: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "action": "python",
        "with": {"function": "kubesteps.examples.greet", "args": {"who": who}},
        **extra,
    }


# -- DAG ------------------------------------------------------------------------------------


async def test_a_branch_waiting_on_a_job_holds_back_only_what_needs_it(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, calls: Calls, k8s_emulator: Emulator
) -> None:
    await api.create(
        pipeline(
            "graph",
            [
                work("publish", needs=["build", "docs"]),
                job_step("build"),
                work("docs"),
                work("lint"),
                work("test", needs=["lint"]),
            ],
        )
    )

    first = await reconcile(reconciler, fetch, "graph")

    assert (first.outcome, first.step) == ("wait", "build")
    assert calls.counts == {"docs": 1, "lint": 1, "test": 1}
    body = await fetch("graph")
    assert "publish" not in {r["name"] for r in body["status"]["steps"]}
    await finish_job(api, jobs(k8s_emulator)[0])

    assert (await reconcile(reconciler, fetch, "graph")).outcome == "done"
    assert calls.counts == {"docs": 1, "lint": 1, "test": 1, "publish": 1}


async def test_a_handled_failure_runs_its_handler_and_the_run_succeeds(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, calls: Calls
) -> None:
    calls.broken.add("deploy")
    await api.create(
        pipeline(
            "handled",
            [
                work("deploy", retry={"limit": 0}),
                work("verify", needs=["deploy"]),
                work("rollback", needs=[{"step": "deploy", "phase": "Failed"}]),
            ],
        )
    )

    assert (await reconcile(reconciler, fetch, "handled")).outcome == "done"

    body = await fetch("handled")
    assert record(body, "deploy")["phase"] == "Failed"
    assert (record(body, "verify")["phase"], record(body, "verify")["reason"]) == (
        "Skipped",
        "NeedsNotMet",
    )
    assert record(body, "rollback")["phase"] == "Succeeded"
    assert run_of(body)["phase"] == "Succeeded"


async def test_the_api_server_schema_keeps_needs_as_written(api: KubeClient, fetch: Fetch) -> None:
    await api.create(
        pipeline("kept", [work("a"), work("b", needs=["a", {"step": "a", "phase": "Failed"}])])
    )
    stored = await fetch("kept")
    assert stored["spec"]["steps"][1]["needs"] == ["a", {"step": "a", "phase": "Failed"}]


async def test_a_cycle_is_an_invalid_spec_naming_the_cycle(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, calls: Calls
) -> None:
    await api.create(pipeline("loop", [work("a", needs=["b"]), work("b", needs=["a"])]))

    result = await reconcile(reconciler, fetch, "loop")

    assert result.outcome == "invalid"
    assert "the needs form a cycle: a -> b -> a" in ready(await fetch("loop"))["message"]


# -- templates ------------------------------------------------------------------------------


async def test_a_uses_step_runs_the_templates_steps_and_records_its_version(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch
) -> None:
    created = await api.create(
        template(
            "greeting",
            [
                greet("hello", "${ params.who }"),
                greet("again", "${ steps.hello.outputs.who } twice", needs=["hello"]),
            ],
            params=[{"name": "who"}],
        )
    )
    await api.create(
        pipeline(
            "user",
            [
                {"name": "eu", "uses": {"template": "greeting", "params": {"who": "Ann"}}},
                {"name": "us", "uses": {"template": "greeting", "params": {"who": "Bob"}}},
            ],
        )
    )

    assert (await reconcile(reconciler, fetch, "user")).outcome == "done"

    body = await fetch("user")
    assert record(body, "eu-again")["outputs"]["who"] == "Ann twice"
    assert record(body, "us-hello")["outputs"]["who"] == "Bob"
    assert run_of(body)["templates"] == [
        {"name": "greeting", "resourceVersion": created["metadata"]["resourceVersion"]}
    ]


async def test_a_template_edit_that_changes_the_work_starts_the_next_run(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, calls: Calls
) -> None:
    await api.create(template("steps", [work("one")]))
    await api.create(pipeline("follower", [{"name": "t", "uses": {"template": "steps"}}]))
    await reconcile(reconciler, fetch, "follower")
    await api.patch(
        API, "PipelineTemplate", "steps", "default", {"metadata": {"labels": {"team": "ops"}}}
    )
    await reconcile(reconciler, fetch, "follower")
    assert run_of(await fetch("follower"))["number"] == 1  # no change of the work

    await api.patch(
        API, "PipelineTemplate", "steps", "default", {"spec": {"steps": [work("one"), work("two")]}}
    )
    await reconcile(reconciler, fetch, "follower")

    body = await fetch("follower")
    assert (run_of(body)["number"], run_of(body)["trigger"]) == (2, "SpecChanged")
    assert calls.counts == {"t-one": 2, "t-two": 1}


async def test_a_new_default_of_a_template_param_is_a_change_of_the_work(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch
) -> None:
    await api.create(
        template(
            "greet", [greet("hi", "${ params.who }")], params=[{"name": "who", "value": "Ann"}]
        )
    )
    await api.create(pipeline("greeted", [{"name": "t", "uses": {"template": "greet"}}]))
    await reconcile(reconciler, fetch, "greeted")

    await api.patch(
        API,
        "PipelineTemplate",
        "greet",
        "default",
        {"spec": {"params": [{"name": "who", "value": "Bob"}]}},
    )
    await reconcile(reconciler, fetch, "greeted")

    body = await fetch("greeted")
    assert run_of(body)["number"] == 2
    assert record(body, "t-hi")["outputs"]["who"] == "Bob"


async def test_a_missing_template_is_an_invalid_spec_looked_at_again(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch
) -> None:
    await api.create(pipeline("early", [{"name": "t", "uses": {"template": "later"}}]))

    result = await reconcile(reconciler, fetch, "early")

    assert (result.outcome, result.delay) == ("invalid", TEMPLATE_RECHECK)
    assert (
        "no PipelineTemplate 'later' in namespace 'default'"
        in ready(await fetch("early"))["message"]
    )
    await api.create(template("later", [greet("hi", "you")]))
    assert (await reconcile(reconciler, fetch, "early")).outcome == "done"


async def test_an_invalid_template_makes_its_users_invalid(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, k8s_emulator: Emulator
) -> None:
    # The CRD's schema cannot see CEL references: the operator's check does.
    await api.create(template("broken", [greet("hi", "${ params.nobody }")]))
    await api.create(pipeline("victim", [{"name": "t", "uses": {"template": "broken"}}]))

    assert (await reconcile(reconciler, fetch, "victim")).outcome == "invalid"
    message = ready(await fetch("victim"))["message"]
    assert message.startswith("spec: PipelineTemplate 'broken' is invalid: spec.steps[0]")
    assert "no param is named 'nobody'" in message


# -- child pipelines ------------------------------------------------------------------------


async def _settle_children(reconciler: Reconciler, api: KubeClient) -> None:
    """Play the operator for the children: one pass each."""
    for child in await api.list(
        API, "Pipeline", "default", label_selector="kubesteps.dev/parent-run"
    ):
        await reconciler.reconcile(child)


async def test_a_child_from_a_template_runs_and_its_outputs_come_back(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch
) -> None:
    await api.create(
        template("probe", [greet("ping", "${ params.region }")], params=[{"name": "region"}])
    )
    await api.create(
        pipeline(
            "parent",
            [
                {
                    "name": "child",
                    "action": "pipeline",
                    "with": {"template": "probe", "params": {"region": "eu"}},
                },
                greet("after", "${ steps.child.outputs.outputs.ping.who }"),
            ],
        )
    )

    assert (await reconcile(reconciler, fetch, "parent")).outcome == "wait"
    child = await fetch("parent-child-1")
    parent = await fetch("parent")
    assert child["metadata"]["ownerReferences"][0]["uid"] == parent["metadata"]["uid"]
    assert child["metadata"]["annotations"]["kubesteps.dev/depth"] == "1"
    assert child["spec"]["params"] == [{"name": "region", "value": "eu"}]
    await _settle_children(reconciler, api)

    assert (await reconcile(reconciler, fetch, "parent")).outcome == "done"
    body = await fetch("parent")
    assert record(body, "child")["outputs"]["run"] == "parent-child-1-1"
    assert record(body, "after")["outputs"]["who"] == "eu"


async def test_a_failed_child_fails_the_step_and_a_retry_of_the_parent_retries_it(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, calls: Calls
) -> None:
    calls.broken.add("flaky")
    await api.create(
        pipeline(
            "boss",
            [
                {
                    "name": "sub",
                    "action": "pipeline",
                    "retry": {"limit": 0},
                    "with": {"spec": {"steps": [work("flaky", retry={"limit": 0})]}},
                },
            ],
        )
    )
    await reconcile(reconciler, fetch, "boss")
    await _settle_children(reconciler, api)

    failed = await reconcile(reconciler, fetch, "boss")

    assert failed.outcome == "failed"
    sub = record(await fetch("boss"), "sub")
    assert sub["reason"] == "ChildFailed"
    assert sub["message"].startswith("child Pipeline boss-sub-1: run boss-sub-1-1 failed")
    calls.broken.clear()
    await annotate(api, "boss", "kubesteps.dev/retry", "again")
    assert (await reconcile(reconciler, fetch, "boss")).outcome == "wait"
    child = await fetch("boss-sub-1")
    assert child["metadata"]["annotations"]["kubesteps.dev/retry"] == "boss-1-retry-1"
    await _settle_children(reconciler, api)

    assert (await reconcile(reconciler, fetch, "boss")).outcome == "done"
    assert calls.counts == {"flaky": 2}


async def test_a_cancel_of_the_parent_cancels_the_childs_run(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, k8s_emulator: Emulator
) -> None:
    await api.create(
        pipeline(
            "top",
            [
                {
                    "name": "sub",
                    "action": "pipeline",
                    "with": {"spec": {"steps": [job_step("slow")]}},
                },
            ],
        )
    )
    await reconcile(reconciler, fetch, "top")
    await _settle_children(reconciler, api)
    assert jobs(k8s_emulator) == ["top-sub-1-slow-1-1"]
    await annotate(api, "top", "kubesteps.dev/cancel", "stop")

    assert (await reconcile(reconciler, fetch, "top")).outcome == "cancelled"
    child = await fetch("top-sub-1")
    assert child["metadata"]["annotations"]["kubesteps.dev/cancel"] == "top-1-cancelled"
    await _settle_children(reconciler, api)
    assert run_of(await fetch("top-sub-1"))["phase"] == "Cancelled"
    assert jobs(k8s_emulator) == []


async def test_a_referenced_pipeline_runs_once_per_parent_run(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, calls: Calls
) -> None:
    await api.create(pipeline("shared", [work("job")]))
    await reconciler.reconcile(await fetch("shared"))
    await api.create(
        pipeline("caller", [{"name": "call", "action": "pipeline", "with": {"ref": "shared"}}])
    )

    assert (await reconcile(reconciler, fetch, "caller")).outcome == "wait"
    assert (await fetch("shared"))["metadata"]["annotations"]["kubesteps.dev/rerun"] == "caller-1"
    await reconciler.reconcile(await fetch("shared"))

    assert (await reconcile(reconciler, fetch, "caller")).outcome == "done"
    assert calls.counts == {"job": 2}
    assert record(await fetch("caller"), "call")["outputs"]["run"] == "shared-2"
    assert "ownerReferences" not in (await fetch("shared"))["metadata"]


async def test_children_nest_at_most_five_deep(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch
) -> None:
    deep = pipeline(
        "deep",
        [{"name": "again", "action": "pipeline", "with": {"spec": {"steps": [greet("x", "y")]}}}],
    )
    deep["metadata"]["annotations"] = {"kubesteps.dev/depth": "5"}
    await api.create(deep)

    assert (await reconcile(reconciler, fetch, "deep")).outcome == "failed"
    assert "child Pipelines nest at most 5 deep" in record(await fetch("deep"), "again")["message"]
