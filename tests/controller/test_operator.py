"""The operator end to end: kopf runs our handlers against the emulator over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import kopf
import pytest
import pytest_asyncio

from kubesteps.controller.operator import Connection, build_registry, settings_hook
from kubesteps.kube.client import KubeClient
from kubesteps.kube.conditions import find
from kubesteps.testing import Emulator

from .conftest import API, pipeline, python_step

Fetch = Callable[[str], Any]


def quick(settings: kopf.OperatorSettings) -> None:
    settings_hook(settings, {"server_timeout": 30, "client_timeout": 40})


@pytest_asyncio.fixture
async def operator(
    api: KubeClient, k8s_emulator: Emulator, kubeconfig: Path, operator_runner: Any
) -> AsyncIterator[None]:
    registry = build_registry(Connection())
    async with operator_runner(registry, wait_for=["pipelines"], settings_hook=quick):
        yield


async def settled(fetch: Fetch, name: str, reason: str, within: float = 20) -> dict[str, Any]:
    """Poll until the Ready condition has ``reason`` for the current generation."""
    async with asyncio.timeout(within):
        while True:
            body = await fetch(name)
            ready = find((body.get("status") or {}).get("conditions", []), "Ready")
            current = body["metadata"]["generation"]
            if ready and ready["reason"] == reason and ready["observedGeneration"] == current:
                return dict(body)
            await asyncio.sleep(0.05)


@pytest.mark.usefixtures("operator")
async def test_the_operator_makes_a_new_pipeline_ready(api: KubeClient, fetch: Fetch) -> None:
    await api.create(pipeline("hello", [python_step("greet", condition="Greeted")]))

    body = await settled(fetch, "hello", "Succeeded")

    assert find(body["status"]["conditions"], "Greeted")["status"] == "True"  # type: ignore[index]
    # No finalizer: a Pipeline can be deleted whether or not the operator runs.
    assert not body["metadata"].get("finalizers")


@pytest.mark.usefixtures("operator")
async def test_a_waiting_step_is_picked_up_again_after_its_delay(
    api: KubeClient, fetch: Fetch
) -> None:
    await api.create(
        pipeline(
            "later",
            [
                {"name": "pause", "action": "delay", "with": {"duration": "1s"}},
                python_step("after"),
            ],
        )
    )

    body = await settled(fetch, "later", "Succeeded", within=15)

    assert [s["phase"] for s in body["status"]["steps"]] == ["Succeeded", "Succeeded"]


@pytest.mark.usefixtures("operator")
async def test_an_invalid_pipeline_does_not_hold_up_the_others(
    api: KubeClient, fetch: Fetch
) -> None:
    await api.create(
        pipeline(
            "bad",
            [
                {
                    "name": "oops",
                    "when": ["steps.missing.phase == 'Succeeded'"],
                    "action": "delay",
                    "with": {"duration": "1s"},
                },
            ],
        )
    )
    await api.create(pipeline("good", [python_step("fine")]))

    bad = await settled(fetch, "bad", "InvalidSpec")
    await settled(fetch, "good", "Succeeded")

    message = find(bad["status"]["conditions"], "Ready")["message"]  # type: ignore[index]
    assert "spec.steps[0].when[0]" in message
    assert "missing" in message


@pytest.mark.usefixtures("operator")
async def test_a_spec_change_is_reconciled_and_waited_for_afresh(
    api: KubeClient, fetch: Fetch
) -> None:
    await api.create(pipeline("changing", [python_step("greet")]))
    await settled(fetch, "changing", "Succeeded")

    await api.patch(
        API,
        "Pipeline",
        "changing",
        "default",
        {
            "spec": {
                "steps": [
                    python_step("greet"),
                    {"name": "pause", "action": "delay", "with": {"duration": "1s"}},
                ]
            }
        },
    )

    body = await settled(fetch, "changing", "Succeeded", within=15)
    assert body["status"]["observedGeneration"] == 2
    assert {s["name"]: s["run"] for s in body["status"]["steps"]} == {"greet": 2, "pause": 2}
    assert body["status"]["history"][0]["phase"] == "Succeeded"


@pytest.mark.usefixtures("operator")
async def test_an_approval_step_waits_for_its_annotation(api: KubeClient, fetch: Fetch) -> None:
    await api.create(
        pipeline(
            "gated",
            [
                {"name": "gate", "action": "approval", "with": {"message": "ship it?"}},
                python_step("ship"),
            ],
        )
    )
    waiting = await settled(fetch, "gated", "Waiting")
    assert "kubesteps.dev/approve.gate" in find(waiting["status"]["conditions"], "Ready")["message"]  # type: ignore[index]

    await api.patch(
        API,
        "Pipeline",
        "gated",
        "default",
        {"metadata": {"annotations": {"kubesteps.dev/approve.gate": "alice"}}},
    )

    body = await settled(fetch, "gated", "Succeeded", within=15)
    gate = next(s for s in body["status"]["steps"] if s["name"] == "gate")
    assert gate["outputs"]["approvedBy"] == "alice"


async def test_a_spec_change_during_a_long_wait_keeps_its_own_next_pass(
    api: KubeClient, fetch: Fetch, operator: None
) -> None:
    await api.create(
        pipeline(
            "long-wait",
            [
                {"name": "pause", "action": "delay", "with": {"duration": "1h"}},
            ],
        )
    )
    await settled(fetch, "long-wait", "Waiting")

    # kopf now holds its retry back for an hour; the new spec must not wait that long.
    await api.patch(
        API,
        "Pipeline",
        "long-wait",
        "default",
        {
            "spec": {
                "steps": [
                    {"name": "pause", "action": "delay", "with": {"duration": "1s"}},
                    python_step("after"),
                ]
            }
        },
    )

    body = await settled(fetch, "long-wait", "Succeeded", within=15)
    assert [s["name"] for s in body["status"]["steps"]] == ["pause", "after"]


async def test_a_deleted_pipeline_stops_counting_in_the_metrics(
    api: KubeClient,
    k8s_emulator: Emulator,
    kubeconfig: Path,
    operator_runner: Any,
    fetch: Fetch,
) -> None:
    from kubesteps.telemetry.metrics import OperatorMetrics

    metrics = OperatorMetrics()
    registry = build_registry(Connection(metrics=metrics))
    async with operator_runner(registry, wait_for=["pipelines"], settings_hook=quick):
        await api.create(pipeline("short-lived", [python_step("one")]))
        await settled(fetch, "short-lived", "Succeeded")
        assert 'kubesteps_pipelines{ready="True",reason="Succeeded"} 1.0' in metrics.render()

        await api.delete(API, "Pipeline", "short-lived", "default")
        async with asyncio.timeout(10):
            while True:
                if 'reason="Succeeded"} 1.0' not in metrics.render():
                    break
                await asyncio.sleep(0.05)
