"""The retry policy of every API call: throttling, server errors and lost answers are sent
again (after the server's Retry-After when it gives one); conflicts and refusals never.

Faults come from the emulator's injection (a refused request is not applied) and, for an
answer lost after the write, from the chaos proxy in front of it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from kubesteps.kube.api_retry import MAX_RETRY_AFTER
from kubesteps.kube.client import ApiError, Credentials, KubeClient
from kubesteps.testing import Emulator
from kubesteps.testing.chaos import ChaosProxy, Decision, Fault, ProxiedRequest

CONFIGMAPS = "configmaps"


class Sleeps(list[float]):
    """Records the waits the policy asks for instead of waiting them."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest_asyncio.fixture
async def client(k8s_emulator: Emulator, sleeps: Sleeps) -> AsyncIterator[KubeClient]:
    assert k8s_emulator.url is not None
    async with KubeClient(Credentials(server=k8s_emulator.url, insecure=True), sleep=sleeps) as c:
        yield c


def config_map(name: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
        "data": {},
    }


async def test_throttling_is_retried_after_the_servers_retry_after(
    client: KubeClient, k8s_emulator: Emulator, sleeps: Sleeps
) -> None:
    await client.create(config_map("busy"))
    k8s_emulator.inject(verb="get", resource=CONFIGMAPS, status=429, retry_after=7, times=2)

    assert await client.get("v1", "ConfigMap", "busy", "default") is not None
    assert sleeps == [7.0, 7.0]


async def test_a_very_long_retry_after_is_waited_only_up_to_the_cap(
    client: KubeClient, k8s_emulator: Emulator, sleeps: Sleeps
) -> None:
    k8s_emulator.inject(verb="create", resource=CONFIGMAPS, status=429, retry_after=600)

    await client.create(config_map("patient"))

    assert sleeps == [MAX_RETRY_AFTER]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_server_errors_are_retried_with_growing_waits_until_the_attempts_run_out(
    client: KubeClient, k8s_emulator: Emulator, sleeps: Sleeps, status: int
) -> None:
    fault = k8s_emulator.inject(verb="list", resource=CONFIGMAPS, status=status, times=None)

    with pytest.raises(ApiError) as raised:
        await client.list("v1", "ConfigMap", "default")

    assert raised.value.status == status
    assert fault.hits == client.attempts == 5
    assert len(sleeps) == 4
    assert sleeps[0] < sleeps[-1] <= 5.0


async def test_a_conflict_is_never_retried(
    client: KubeClient, k8s_emulator: Emulator, sleeps: Sleeps
) -> None:
    created = await client.create(config_map("contested"))
    await client.patch("v1", "ConfigMap", "contested", "default", {"data": {"a": "1"}})
    k8s_emulator.requests.reset()

    stale = {
        "metadata": {"resourceVersion": created["metadata"]["resourceVersion"]},
        "data": {"a": "2"},
    }
    with pytest.raises(ApiError) as raised:
        await client.patch("v1", "ConfigMap", "contested", "default", stale)

    assert (raised.value.status, raised.value.reason) == (409, "Conflict")
    assert k8s_emulator.requests.count("patch") == 1
    assert sleeps == []


@pytest.mark.parametrize("status", [400, 403, 422, 501])
async def test_a_refusal_is_never_retried(
    client: KubeClient, k8s_emulator: Emulator, sleeps: Sleeps, status: int
) -> None:
    fault = k8s_emulator.inject(verb="create", resource=CONFIGMAPS, status=status, times=None)

    with pytest.raises(ApiError):
        await client.create(config_map("refused"))

    assert fault.hits == 1
    assert sleeps == []


async def test_an_answer_lost_after_the_write_is_sent_again_and_meets_its_first_attempt(
    k8s_emulator: Emulator, sleeps: Sleeps
) -> None:
    lost: list[str] = []

    def lose_the_first_create(request: ProxiedRequest) -> Decision:
        if request.method == "POST" and not lost:
            lost.append(request.path)
            return Decision(Fault.LOST_ANSWER)
        return Decision()

    assert k8s_emulator.url is not None
    proxy = ChaosProxy(k8s_emulator.url, lose_the_first_create)
    async with (
        proxy.serving() as url,
        KubeClient(Credentials(server=url, insecure=True), sleep=sleeps) as client,
    ):
        with pytest.raises(ApiError) as raised:
            await client.create(config_map("once"))
    await proxy.close()

    # The first attempt was stored; the second finds it. Callers that name their objects
    # (Events, Jobs, Leases) read this as "stored"; apply patches on top.
    assert (raised.value.status, raised.value.reason) == (409, "AlreadyExists")
    assert k8s_emulator.object(CONFIGMAPS, "once", "default") is not None
    assert proxy.record.faults[Fault.LOST_ANSWER] == 1
    assert len(sleeps) == 1


async def test_a_single_attempt_can_be_asked_for(
    client: KubeClient, k8s_emulator: Emulator, sleeps: Sleeps
) -> None:
    fault = k8s_emulator.inject(verb="get", resource=CONFIGMAPS, status=503, times=None)

    with pytest.raises(ApiError):
        await client.request("GET", "/api/v1/namespaces/default/configmaps/x", retry=False)

    assert fault.hits == 1
    assert sleeps == []
