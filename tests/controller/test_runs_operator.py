"""Runs through the running operator: kopf reacts to spec edits and verb annotations.

The pass-by-pass rules (with an injected clock) are in test_runs.py; these check that the
same day-2 operations work end to end, as a user does them with `kubectl annotate`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kubesteps.actions.registry import register_python, unregister_python
from kubesteps.controller.operator import Connection, build_registry
from kubesteps.controller.reconciler import Reconciler
from kubesteps.kube.client import KubeClient
from kubesteps.testing import Emulator

from .conftest import API, pipeline
from .test_operator import operator, quick, settled
from .test_runs import JOB, Calls

__all__ = ["operator"]

Fetch = Callable[[str], Any]


@pytest.fixture
def calls() -> Iterator[Calls]:
    """The counting action of test_runs.py, under a name of its own."""
    counter = Calls()
    register_python("test.runs.op", counter)
    yield counter
    unregister_python("test.runs.op")


def work(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "action": "python", "with": {"function": "test.runs.op"}, **extra}


async def annotate(api: KubeClient, name: str, key: str, value: str) -> None:
    await api.patch(API, "Pipeline", name, "default", {"metadata": {"annotations": {key: value}}})


async def job_names(api: KubeClient) -> list[str]:
    return sorted(j["metadata"]["name"] for j in await api.list("batch/v1", "Job", "default"))


async def until(check: Callable[[], Any], within: float = 15) -> Any:
    async with asyncio.timeout(within):
        while True:
            value = await check()
            if value:
                return value
            await asyncio.sleep(0.05)


async def phase_is(fetch: Fetch, name: str, phase: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        body = await fetch(name)
        run = (body.get("status") or {}).get("run") or {}
        return dict(body) if run.get("phase") == phase else None

    result: dict[str, Any] = await until(check)
    return result


@pytest.mark.usefixtures("operator")
async def test_suspending_mid_run_and_resuming_runs_exactly_one_job(
    api: KubeClient, fetch: Fetch, calls: Calls
) -> None:
    await api.create(
        pipeline(
            "nightly",
            [
                work("prepare"),
                {"name": "build", "action": "job", "with": JOB},
                work("publish"),
            ],
        )
    )
    await settled(fetch, "nightly", "Waiting")
    assert await job_names(api) == ["nightly-build-1-1"]

    await api.patch(API, "Pipeline", "nightly", "default", {"spec": {"suspend": True}})
    await settled(fetch, "nightly", "Suspended")
    await api.patch(
        "batch/v1",
        "Job",
        "nightly-build-1-1",
        "default",
        {
            "status": {
                "succeeded": 1,
                "conditions": [{"type": "Complete", "status": "True"}],
            }
        },
        subresource="status",
    )
    await api.patch(API, "Pipeline", "nightly", "default", {"spec": {"suspend": False}})

    body = await settled(fetch, "nightly", "Succeeded")
    assert body["status"]["run"]["number"] == 1
    assert await job_names(api) == ["nightly-build-1-1"]
    assert calls.counts == {"prepare": 1, "publish": 1}


@pytest.mark.usefixtures("operator")
async def test_an_approval_then_a_spec_edit_makes_the_new_run_wait_again(
    api: KubeClient, fetch: Fetch, calls: Calls
) -> None:
    gate = {"name": "gate", "action": "approval", "with": {"message": "ship?"}}
    await api.create(pipeline("release", [gate, work("ship")]))
    await settled(fetch, "release", "Waiting")
    await annotate(api, "release", "kubesteps.dev/approve.gate", "alice")
    approved = await settled(fetch, "release", "Succeeded")
    assert "kubesteps.dev/approve.gate" not in (approved["metadata"].get("annotations") or {})

    await api.patch(
        API,
        "Pipeline",
        "release",
        "default",
        {"spec": {"steps": [gate, work("ship", condition="Shipped")]}},
    )

    waiting = await settled(fetch, "release", "Waiting")
    assert waiting["status"]["run"]["id"] == "release-2"
    assert waiting["status"]["currentStep"] == "gate"
    assert calls.counts == {"ship": 1}


@pytest.mark.usefixtures("operator")
async def test_a_retry_annotation_reruns_only_what_failed(
    api: KubeClient, fetch: Fetch, calls: Calls
) -> None:
    await api.create(pipeline("flaky", [work("one"), work("two", retry={"limit": 0})]))
    calls.broken.add("two")
    await settled(fetch, "flaky", "Failed")
    calls.broken.clear()

    await annotate(api, "flaky", "kubesteps.dev/retry", "first")

    body = await settled(fetch, "flaky", "Succeeded")
    # `one` succeeded, and its success was recorded: it never runs again. `two` failed once
    # (more often if a write of that failure was lost under load: a failure not recorded is
    # tried again), then succeeded once after the retry.
    assert calls.counts["one"] == 1
    assert calls.counts["two"] >= 2
    two = next(s for s in body["status"]["steps"] if s["name"] == "two")
    assert (two["phase"], two["attempts"]) == ("Succeeded", 1)
    assert (body["status"]["run"]["number"], body["status"]["run"]["retries"]) == (1, 1)


@pytest.mark.usefixtures("operator")
async def test_cancel_during_a_job_deletes_it_and_the_run_ends_cancelled(
    api: KubeClient, fetch: Fetch, calls: Calls
) -> None:
    await api.create(
        pipeline("stoppable", [{"name": "build", "action": "job", "with": JOB}, work("after")])
    )
    await settled(fetch, "stoppable", "Waiting")
    assert await job_names(api) == ["stoppable-build-1-1"]

    await annotate(api, "stoppable", "kubesteps.dev/cancel", "now")

    body = await settled(fetch, "stoppable", "Cancelled")
    assert body["status"]["run"]["phase"] == "Cancelled"
    assert await job_names(api) == []
    assert calls.counts == {}


@pytest.mark.slow  # waits seconds of real time (backoffs, leases, whole runs)
async def test_a_verb_acted_on_before_a_restart_is_not_acted_on_again(
    api: KubeClient,
    fetch: Fetch,
    calls: Calls,
    k8s_emulator: Emulator,
    kubeconfig: Path,
    operator_runner: Any,
) -> None:
    await api.create(pipeline("once", [work("one")]))
    async with operator_runner(
        build_registry(Connection()), wait_for=["pipelines"], settings_hook=quick
    ):
        await settled(fetch, "once", "Succeeded")
    await annotate(api, "once", "kubesteps.dev/rerun", "token-1")
    # The operator acts on the rerun and dies before the annotation is removed.
    k8s_emulator.inject(
        verb="patch", resource="pipelines", subresource=None, status=503, times=None
    )  # for the whole pass: the API client retries one refusal
    await Reconciler(lambda: api).reconcile(await fetch("once"))
    k8s_emulator.clear_faults()
    assert (await fetch("once"))["metadata"]["annotations"]["kubesteps.dev/rerun"] == "token-1"
    assert calls.counts == {"one": 2}

    async with operator_runner(
        build_registry(Connection()), wait_for=["pipelines"], settings_hook=quick
    ):

        async def removed() -> bool:
            annotations = (await fetch("once"))["metadata"].get("annotations") or {}
            return "kubesteps.dev/rerun" not in annotations

        await until(removed)

    body = await fetch("once")
    assert body["status"]["run"]["number"] == 2
    assert calls.counts == {"one": 2}
