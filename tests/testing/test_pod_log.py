"""``pods/<name>/log``: the text a test wrote with ``Emulator.write_pod_log``, over HTTP."""

from __future__ import annotations

import asyncio

import aiohttp

from kubesteps.testing import Emulator

PODS = "/api/v1/namespaces/default/pods"


async def make_pod(http: aiohttp.ClientSession, name: str) -> None:
    body = {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
    response = await http.post(PODS, json=body)
    assert response.status == 201, await response.text()


async def test_a_pods_log_is_the_text_written(
    emulator: Emulator, http: aiohttp.ClientSession
) -> None:
    await make_pod(http, "p")
    emulator.write_pod_log("default", "p", "one\n")
    emulator.write_pod_log("default", "p", "two\n")
    response = await http.get(f"{PODS}/p/log")
    assert response.status == 200
    assert response.content_type == "text/plain"
    assert await response.text() == "one\ntwo\n"


async def test_the_log_of_a_missing_pod_is_not_found(http: aiohttp.ClientSession) -> None:
    response = await http.get(f"{PODS}/gone/log")
    assert response.status == 404
    assert (await response.json())["reason"] == "NotFound"


async def test_following_a_log_streams_writes_until_done(
    emulator: Emulator, http: aiohttp.ClientSession
) -> None:
    await make_pod(http, "p")
    emulator.write_pod_log("default", "p", "first\n", done=False)
    async with http.get(f"{PODS}/p/log", params={"follow": "true"}) as response:
        assert await response.content.readline() == b"first\n"
        emulator.write_pod_log("default", "p", "second\n", done=False)
        assert await response.content.readline() == b"second\n"
        emulator.write_pod_log("default", "p", "last\n")
        async with asyncio.timeout(5):
            assert await response.content.read() == b"last\n"  # and the stream ended


async def test_discovery_lists_the_log_subresource(http: aiohttp.ClientSession) -> None:
    names = {r["name"] for r in (await (await http.get("/api/v1")).json())["resources"]}
    assert "pods/log" in names
