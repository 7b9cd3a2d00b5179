"""The fault-injecting proxy: what each fault does to a request, and a seed that fixes them."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
import pytest_asyncio

from kubesteps.testing import Emulator
from kubesteps.testing.chaos import (
    ChaosProxy,
    Decision,
    Fault,
    FaultRates,
    ProxiedRequest,
    SeededPlan,
)

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
Plan = Callable[[ProxiedRequest], Decision]


class Scripted:
    """A plan that gives each request the next decision of a list (then none)."""

    def __init__(self, *decisions: Decision) -> None:
        self.decisions = list(decisions)
        self.seen: list[ProxiedRequest] = []

    def __call__(self, request: ProxiedRequest) -> Decision:
        self.seen.append(request)
        return self.decisions.pop(0) if self.decisions else Decision()


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


def config_map(name: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {}}


@pytest.mark.parametrize(
    ("decision", "status", "reason"),
    [
        (Decision(Fault.CONFLICT, status=409), 409, "Conflict"),
        (Decision(Fault.THROTTLE, status=429), 429, "TooManyRequests"),
        (Decision(Fault.SERVER_ERROR, status=503), 503, "ServiceUnavailable"),
    ],
)
async def test_a_refused_request_gets_a_status_and_is_not_applied(
    k8s_emulator: Emulator,
    http: aiohttp.ClientSession,
    decision: Decision,
    status: int,
    reason: str,
) -> None:
    assert k8s_emulator.url is not None
    proxy = ChaosProxy(k8s_emulator.url, Scripted(decision))
    async with proxy.serving() as url:
        response = await http.post(
            url + CONFIGMAPS,
            json=config_map("refused"),
            headers={"Authorization": "Bearer echo-me"},
        )
        body = await response.json()
    await proxy.close()

    assert (response.status, body["reason"], body["code"]) == (status, reason, status)
    assert k8s_emulator.object("configmaps", "refused", "default") is None
    assert proxy.record.faults == {decision.fault: 1}
    if status == 429:
        assert response.headers["Retry-After"] == "1"
    if status == 503:  # a careless server: the request's headers come back in the message
        assert "Authorization: Bearer echo-me" in body["message"]


async def test_a_lost_answer_is_applied_and_the_connection_dropped(
    k8s_emulator: Emulator, http: aiohttp.ClientSession
) -> None:
    assert k8s_emulator.url is not None
    proxy = ChaosProxy(k8s_emulator.url, Scripted(Decision(Fault.LOST_ANSWER)))
    async with proxy.serving() as url:
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await http.post(url + CONFIGMAPS, json=config_map("applied"))
    await proxy.close()

    assert k8s_emulator.object("configmaps", "applied", "default") is not None


async def test_requests_without_a_fault_pass_through_with_their_answers(
    k8s_emulator: Emulator, http: aiohttp.ClientSession
) -> None:
    assert k8s_emulator.url is not None
    plan = Scripted()
    proxy = ChaosProxy(k8s_emulator.url, plan)
    async with proxy.serving("replica-a") as url:
        created = await http.post(url + CONFIGMAPS, json=config_map("through"))
        missing = await http.get(url + CONFIGMAPS + "/nope")
    await proxy.close()

    assert created.status == 201
    assert (await created.json())["metadata"]["name"] == "through"
    assert missing.status == 404
    assert [(r.label, r.method, r.write) for r in plan.seen] == [
        ("replica-a", "POST", True),
        ("replica-a", "GET", False),
    ]


async def test_a_watch_is_cut_after_its_lifetime_with_410_gone_and_a_list_after_it_counts(
    k8s_emulator: Emulator, http: aiohttp.ClientSession
) -> None:
    assert k8s_emulator.url is not None
    proxy = ChaosProxy(k8s_emulator.url, Scripted(Decision(Fault.WATCH_GONE, lifetime=0.3)))
    async with proxy.serving("op") as url:
        async with http.get(url + CONFIGMAPS, params={"watch": "true"}) as watch:
            lines = [json.loads(line) async for line in watch.content]
        assert sum(proxy.record.awaiting_relist.values()) == 1
        await http.get(url + CONFIGMAPS)  # the client lists again, as it must
    await proxy.close()

    assert lines[-1]["type"] == "ERROR"
    assert (lines[-1]["object"]["code"], lines[-1]["object"]["reason"]) == (410, "Expired")
    assert proxy.record.faults == {Fault.WATCH_GONE: 1}
    assert proxy.record.relisted == 1
    assert sum(proxy.record.awaiting_relist.values()) == 0


def request(
    method: str = "PATCH",
    path: str = "/api/v1/namespaces/default/configmaps/x",
    body: bytes = b'{"metadata": {"resourceVersion": "7"}}',
) -> ProxiedRequest:
    return ProxiedRequest("op", method, path, {}, body)


def test_the_same_seed_makes_the_same_requests_fail_whatever_else_happens_between() -> None:
    rates = FaultRates(conflict=0.3, throttle=0.2, server_error=0.2, lost_answer=0.2)
    first, second = SeededPlan(5, rates), SeededPlan(5, rates)

    alone = [first(request()) for _ in range(50)]
    interleaved = []
    for _ in range(50):
        second(request(method="GET", path="/api/v1/namespaces"))  # other traffic between
        interleaved.append(second(request()))

    assert alone == interleaved
    assert {d.fault for d in alone} >= {Fault.CONFLICT, Fault.THROTTLE, Fault.SERVER_ERROR}
    assert [SeededPlan(6, rates)(request()) for _ in range(50)] != alone


def test_only_conditional_writes_get_conflicts_and_only_writes_lose_answers() -> None:
    everything = FaultRates(conflict=1.0, throttle=0.0, server_error=0.0, lost_answer=1.0)
    plan = SeededPlan(1, everything)

    assert plan(request()).fault is Fault.CONFLICT
    assert plan(request(body=b'{"data": {}}')).fault is Fault.LOST_ANSWER
    assert plan(request(method="GET", body=b"")).fault is None


def test_a_disabled_plan_lets_everything_through_at_once() -> None:
    plan = SeededPlan(1, FaultRates(throttle=1.0, server_error=0.0, lost_answer=0.0))
    plan.enabled = False
    assert plan(request(method="GET", body=b"")) == Decision()


@pytest.mark.parametrize(
    ("rates", "message"),
    [
        ({"throttle": 1.5}, "FaultRates.throttle must be a probability in 0..1, got 1.5"),
        (
            {"throttle": 0.5, "server_error": 0.4, "lost_answer": 0.2},
            "throttle + server_error + lost_answer must not exceed 1",
        ),
        ({"watch_lifetime": (5.0, 1.0)}, "FaultRates.watch_lifetime must be (low, high)"),
        ({"latency": -1.0}, "FaultRates.latency and retry_after must be >= 0"),
    ],
)
def test_impossible_rates_are_refused_naming_the_field(
    rates: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        FaultRates(**rates)  # type: ignore[arg-type]
