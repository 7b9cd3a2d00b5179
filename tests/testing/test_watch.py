"""Watch streams: resumption from a resourceVersion, expiry, bookmarks, timeouts, selectors."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest_asyncio

from kubesteps.testing import Emulator

from .widgets import WIDGET_CRD, WIDGETS, widget


async def events(response: aiohttp.ClientResponse, count: int) -> list[dict[str, Any]]:
    received = []
    while len(received) < count:
        line = await asyncio.wait_for(response.content.readline(), timeout=5)
        assert line, f"the stream ended after {received}"
        received.append(json.loads(line))
    return received


async def rest_of_stream(response: aiohttp.ClientResponse) -> list[dict[str, Any]]:
    return [json.loads(line) async for line in response.content if line.strip()]


def summary(received: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["type"], e["object"]["metadata"].get("name", "")) for e in received]


async def create(http: aiohttp.ClientSession, name: str, **labels: str) -> dict[str, Any]:
    body = widget(name)
    body["metadata"]["labels"] = labels
    response = await http.post(WIDGETS, json=body)
    assert response.status == 201
    return dict(await response.json())


async def test_watch_without_a_version_starts_with_existing_objects(
    http: aiohttp.ClientSession,
) -> None:
    await create(http, "old")
    async with http.get(WIDGETS, params={"watch": "true"}) as response:
        first = await events(response, 1)
        await create(http, "new")
        second = await events(response, 1)
    assert summary(first + second) == [("ADDED", "old"), ("ADDED", "new")]


async def test_watch_from_a_version_replays_only_later_events(
    http: aiohttp.ClientSession,
) -> None:
    await create(http, "old")
    listing = await (await http.get(WIDGETS)).json()
    await http.patch(
        f"{WIDGETS}/old",
        json={"spec": {"mode": "slow"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    await create(http, "new")
    params = {"watch": "true", "resourceVersion": listing["metadata"]["resourceVersion"]}
    async with http.get(WIDGETS, params=params) as response:
        received = await events(response, 2)
    assert summary(received) == [("MODIFIED", "old"), ("ADDED", "new")]


async def test_watch_from_the_current_version_sends_nothing_old(
    http: aiohttp.ClientSession,
) -> None:
    created = await create(http, "old")
    params = {
        "watch": "true",
        "resourceVersion": created["metadata"]["resourceVersion"],
        "timeoutSeconds": "1",
    }
    async with http.get(WIDGETS, params=params) as response:
        assert await rest_of_stream(response) == []


async def test_deletions_are_streamed(http: aiohttp.ClientSession) -> None:
    created = await create(http, "w")
    params = {"watch": "true", "resourceVersion": created["metadata"]["resourceVersion"]}
    async with http.get(WIDGETS, params=params) as response:
        await http.delete(f"{WIDGETS}/w")
        received = await events(response, 1)
    assert summary(received) == [("DELETED", "w")]


@pytest_asyncio.fixture
async def short_history() -> AsyncIterator[aiohttp.ClientSession]:
    emulator = Emulator(history_size=2)
    emulator.register_crd(copy.deepcopy(WIDGET_CRD))
    async with emulator.serving() as url, aiohttp.ClientSession(base_url=url) as http:
        yield http


async def test_a_too_old_version_answers_410_expired(short_history: aiohttp.ClientSession) -> None:
    http = short_history
    first = await create(http, "a")
    for name in ("b", "c", "d"):
        await create(http, name)
    params = {"watch": "true", "resourceVersion": first["metadata"]["resourceVersion"]}
    async with http.get(WIDGETS, params=params) as response:
        received = await rest_of_stream(response)
    assert [event["type"] for event in received] == ["ERROR"]
    status = received[0]["object"]
    assert (status["kind"], status["code"], status["reason"]) == ("Status", 410, "Expired")
    assert "too old resource version" in status["message"]


async def test_a_version_within_the_history_still_resumes(
    short_history: aiohttp.ClientSession,
) -> None:
    http = short_history
    for name in ("a", "b"):
        await create(http, name)
    third = await create(http, "c")
    await create(http, "d")
    params = {"watch": "true", "resourceVersion": third["metadata"]["resourceVersion"]}
    async with http.get(WIDGETS, params=params) as response:
        assert summary(await events(response, 1)) == [("ADDED", "d")]


async def test_a_version_from_before_the_kind_was_served_answers_410(
    http: aiohttp.ClientSession, emulator: Emulator
) -> None:
    # As a real server's watch cache, which starts from a list when the CRD is established:
    # revision 1 (the first namespace) is older than the Widget CRD.
    created = await create(http, "w")
    served_from = emulator.store.revision - 1  # the CRD's own write, just before the create
    params = {"watch": "true", "resourceVersion": "1"}
    async with http.get(WIDGETS, params=params) as response:
        (error,) = await rest_of_stream(response)
    assert error["type"] == "ERROR"
    assert (error["object"]["code"], error["object"]["reason"]) == (410, "Expired")
    assert error["object"]["message"] == f"too old resource version: 1 ({served_from})"
    params = {"watch": "true", "resourceVersion": str(served_from), "timeoutSeconds": "1"}
    async with http.get(WIDGETS, params=params) as response:
        assert summary(await rest_of_stream(response)) == [("ADDED", "w")]
    assert created["metadata"]["resourceVersion"] == str(served_from + 1)


async def test_bookmarks_are_sent_when_allowed(
    http: aiohttp.ClientSession, emulator: Emulator
) -> None:
    emulator.bookmark_interval = 0.05
    created = await create(http, "w")
    params = {
        "watch": "true",
        "allowWatchBookmarks": "true",
        "resourceVersion": created["metadata"]["resourceVersion"],
    }
    async with http.get(WIDGETS, params=params) as response:
        bookmark = (await events(response, 1))[0]
    assert bookmark["type"] == "BOOKMARK"
    assert bookmark["object"]["kind"] == "Widget"
    assert bookmark["object"]["metadata"]["resourceVersion"] == str(emulator.store.revision)


async def test_no_bookmarks_unless_allowed(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    emulator.bookmark_interval = 0.05
    created = await create(http, "w")
    params = {
        "watch": "true",
        "timeoutSeconds": "1",
        "resourceVersion": created["metadata"]["resourceVersion"],
    }
    async with http.get(WIDGETS, params=params) as response:
        assert await rest_of_stream(response) == []


async def test_timeout_seconds_ends_the_stream(http: aiohttp.ClientSession) -> None:
    async with http.get(WIDGETS, params={"watch": "true", "timeoutSeconds": "1"}) as response:
        received = await asyncio.wait_for(rest_of_stream(response), timeout=10)
    assert received == []


async def test_initial_events_end_with_a_bookmark(http: aiohttp.ClientSession) -> None:
    await create(http, "w")
    params = {
        "watch": "true",
        "sendInitialEvents": "true",
        "allowWatchBookmarks": "true",
        "resourceVersionMatch": "NotOlderThan",
    }
    async with http.get(WIDGETS, params=params) as response:
        added, bookmark = await events(response, 2)
    assert added["type"] == "ADDED"
    assert bookmark["type"] == "BOOKMARK"
    annotations = bookmark["object"]["metadata"]["annotations"]
    assert annotations == {"k8s.io/initial-events-end": "true"}


async def test_objects_leaving_a_label_selection_are_seen_as_deleted(
    http: aiohttp.ClientSession,
) -> None:
    created = await create(http, "w", team="red")
    params = {
        "watch": "true",
        "labelSelector": "team=red",
        "resourceVersion": created["metadata"]["resourceVersion"],
    }
    async with http.get(WIDGETS, params=params) as response:
        patched = await http.patch(
            f"{WIDGETS}/w",
            json={"metadata": {"labels": {"team": "blue"}}},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        await create(http, "other", team="blue")
        await create(http, "match", team="red")
        received = await events(response, 2)
    assert summary(received) == [("DELETED", "w"), ("ADDED", "match")]
    # As kube-apiserver's watch cache sends it: the object as it was, at the new revision.
    gone = received[0]["object"]["metadata"]
    assert gone["labels"] == {"team": "red"}
    assert gone["resourceVersion"] == (await patched.json())["metadata"]["resourceVersion"]


async def test_a_field_selector_watches_one_object(http: aiohttp.ClientSession) -> None:
    await create(http, "a")
    await create(http, "b")
    params = {"watch": "true", "fieldSelector": "metadata.name=b"}
    async with http.get(WIDGETS, params=params) as response:
        await http.delete(f"{WIDGETS}/a")
        await http.delete(f"{WIDGETS}/b")
        received = await events(response, 2)
    assert summary(received) == [("ADDED", "b"), ("DELETED", "b")]


async def test_a_namespaced_watch_ignores_other_namespaces(
    http: aiohttp.ClientSession,
) -> None:
    await http.post("/api/v1/namespaces", json={"metadata": {"name": "other"}})
    async with http.get(WIDGETS, params={"watch": "true"}) as response:
        await http.post("/apis/example.dev/v1/namespaces/other/widgets", json=widget("x"))
        await create(http, "mine")
        received = await events(response, 1)
    assert summary(received) == [("ADDED", "mine")]


async def test_a_watch_is_counted_while_open(
    http: aiohttp.ClientSession, emulator: Emulator
) -> None:
    assert emulator.watches("widgets") == 0
    async with http.get(WIDGETS, params={"watch": "true"}):
        await asyncio.wait_for(emulator.wait_for_watch("widgets"), timeout=5)
        assert emulator.watches("widgets.example.dev") == 1
