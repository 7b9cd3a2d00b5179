"""Events land: each occurrence is stored under a name of its own, once, even when the answer
to its create is lost and the client sends it again. (Rate limits and the step Events of a
pass: tests/controller/test_observability.py.)"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from kubesteps.kube.client import Credentials, KubeClient
from kubesteps.kube.events import NAME_LIMIT, EventRecorder, TokenBuckets
from kubesteps.testing import Emulator
from kubesteps.testing.chaos import ChaosProxy, Decision, Fault, ProxiedRequest


@pytest_asyncio.fixture
async def client(k8s_emulator: Emulator) -> AsyncIterator[KubeClient]:
    assert k8s_emulator.url is not None
    async with KubeClient(Credentials(server=k8s_emulator.url, insecure=True)) as c:
        yield c


def unlimited(client: KubeClient) -> EventRecorder:
    return EventRecorder(
        lambda: client, per_object=TokenBuckets(10_000, 1_000), overall=TokenBuckets(10_000, 1_000)
    )


def involved(name: str = "nightly") -> dict[str, Any]:
    return {
        "apiVersion": "kubesteps.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name[:40]}"},
    }


async def test_every_event_is_stored_under_a_name_of_its_own(client: KubeClient) -> None:
    events = unlimited(client)

    for i in range(300):
        assert events.emit(involved(), "StepSucceeded", f"step 's{i}'")
    await events.drain()

    stored = await client.list("v1", "Event", "default")
    names = {e["metadata"]["name"] for e in stored}
    assert (len(stored), len(names), events.sent) == (300, 300, 300)
    assert all(name.startswith("nightly.") for name in names)


async def test_a_long_object_name_still_gives_a_valid_event_name(client: KubeClient) -> None:
    events = unlimited(client)
    long_name = "p" * 240 + "-x.y" + "z" * 9

    assert events.emit(involved(long_name), "StepSucceeded", "step 'a'")
    await events.drain()

    [stored] = await client.list("v1", "Event", "default")
    assert len(stored["metadata"]["name"]) <= NAME_LIMIT
    assert stored["involvedObject"]["name"] == long_name


async def test_an_event_whose_answer_was_lost_is_stored_once_and_counted_as_sent(
    k8s_emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    def lose_the_first_event(request: ProxiedRequest) -> Decision:
        if request.method == "POST" and proxy.record.faults[Fault.LOST_ANSWER] == 0:
            return Decision(Fault.LOST_ANSWER)
        return Decision()

    assert k8s_emulator.url is not None
    proxy = ChaosProxy(k8s_emulator.url, lose_the_first_event)
    async with proxy.serving() as url, KubeClient(Credentials(server=url, insecure=True)) as client:
        events = unlimited(client)
        assert events.emit(involved(), "StepSucceeded", "step 'a'")
        await events.drain()
        stored = await client.list("v1", "Event", "default")
    await proxy.close()

    assert proxy.record.faults[Fault.LOST_ANSWER] == 1
    assert len(stored) == 1
    assert events.sent == 1
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
