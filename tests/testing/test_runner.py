"""A real kopf operator, run by ``run_operator``, against the emulator."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import kopf
import pytest

from kubesteps.testing import Emulator

from .widgets import WIDGETS, widget


def _registry() -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.create("example.dev", "v1", "widgets", registry=registry)
    def mark_ready(patch: kopf.Patch, **_: Any) -> None:
        patch.status["conditions"] = [{"type": "Ready", "status": "True", "reason": "Created"}]

    return registry


async def _wait_ready(http: aiohttp.ClientSession, name: str) -> dict[str, Any]:
    while True:
        body = await (await http.get(f"{WIDGETS}/{name}")).json()
        if body.get("status", {}).get("conditions"):
            return body
        await asyncio.sleep(0.05)


async def _wait_gone(http: aiohttp.ClientSession, name: str) -> None:
    while True:
        if (await http.get(f"{WIDGETS}/{name}")).status == 404:
            return
        await asyncio.sleep(0.05)


async def test_handler_status_patch_lands_on_the_object(
    emulator: Emulator, http: aiohttp.ClientSession, operator_runner: Any
) -> None:
    async with operator_runner(_registry(), wait_for=["widgets.example.dev"]):
        await http.post(WIDGETS, json=widget("w1"))
        body = await asyncio.wait_for(_wait_ready(http, "w1"), timeout=20)
    assert body["status"]["conditions"][0]["type"] == "Ready"
    assert emulator.requests.count("patch", "widgets.example.dev/status") >= 1


async def test_injected_status_fault_is_retried_and_not_applied_twice(
    emulator: Emulator, http: aiohttp.ClientSession, operator_runner: Any
) -> None:
    fault = emulator.inject(verb="patch", resource="widgets", subresource="status", status=500)
    async with operator_runner(_registry(), wait_for=["widgets"]):
        await http.post(WIDGETS, json=widget("w2"))
        body = await asyncio.wait_for(_wait_ready(http, "w2"), timeout=20)
    assert fault.hits == 1
    assert body["status"]["conditions"][0]["reason"] == "Created"


async def test_deletion_runs_the_delete_handler_through_the_finalizer(
    emulator: Emulator, http: aiohttp.ClientSession, operator_runner: Any
) -> None:
    deleted: list[str] = []
    registry = _registry()

    @kopf.on.delete("example.dev", "v1", "widgets", registry=registry)
    def forget(name: str, **_: Any) -> None:
        deleted.append(name)

    async with operator_runner(registry, wait_for=["widgets"]):
        await http.post(WIDGETS, json=widget("w3"))
        body = await asyncio.wait_for(_wait_ready(http, "w3"), timeout=20)
        assert body["metadata"]["finalizers"] == ["kopf.zalando.org/KopfFinalizerMarker"]
        await http.delete(f"{WIDGETS}/w3")
        await asyncio.wait_for(_wait_gone(http, "w3"), timeout=20)
    assert deleted == ["w3"]


async def test_objects_existing_before_the_operator_are_handled_once(
    emulator: Emulator, http: aiohttp.ClientSession, operator_runner: Any
) -> None:
    await http.post(WIDGETS, json=widget("early"))
    async with operator_runner(_registry(), wait_for=["widgets"]):
        await asyncio.wait_for(_wait_ready(http, "early"), timeout=20)
    assert emulator.requests.count("patch", "widgets.example.dev/status") == 1


async def test_startup_times_out_naming_the_unwatched_resource(
    emulator: Emulator, operator_runner: Any
) -> None:
    with pytest.raises(TimeoutError, match="no watch yet on: gadgets"):
        async with operator_runner(_registry(), wait_for=["gadgets"], startup_timeout=1):
            pass
