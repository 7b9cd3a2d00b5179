"""spec.mutex through reconcile passes on the emulator: one run holds a named Lease at a
time, the others wait in line (Ready reason MutexHeld) in order of arrival; the Lease goes
free when the run settles, is cancelled, its Pipeline is deleted, or by expiry."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubesteps.controller.mutex import QUEUE_ANNOTATION, Mutexes
from kubesteps.controller.reconciler import Reconciler
from kubesteps.kube.client import KubeClient
from kubesteps.kube.conditions import find

from .conftest import API, pipeline

LEASE = "kubesteps-mutex-deploy"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def reconciler(api: KubeClient, clock: Clock) -> Reconciler:
    return Reconciler(lambda: api, clock=clock, mutexes=Mutexes(clock=clock, lease_duration=60))


def deploy(name: str, mutex: Any = "deploy", seconds: int = 10) -> dict[str, Any]:
    return pipeline(
        name,
        [{"name": "roll-out", "action": "delay", "with": {"duration": f"{seconds}s"}}],
        mutex=mutex,
    )


Fetch = Callable[[str], Any]


async def ready(fetch: Fetch, name: str) -> dict[str, Any]:
    found = find((await fetch(name))["status"]["conditions"], "Ready")
    assert found is not None
    return dict(found)


async def lease(api: KubeClient, name: str = LEASE) -> dict[str, Any]:
    found = await api.get("coordination.k8s.io/v1", "Lease", name, "default")
    assert found is not None, f"no Lease {name}"
    return found


def holder(found: dict[str, Any]) -> str | None:
    return (found.get("spec") or {}).get("holderIdentity")


def queue(found: dict[str, Any]) -> list[str]:
    return [
        entry["pipeline"]
        for entry in json.loads(found["metadata"]["annotations"][QUEUE_ANNOTATION])
    ]


async def test_one_run_holds_the_mutex_and_the_other_waits_naming_the_holder(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, clock: Clock
) -> None:
    await api.create(deploy("blue"))
    await api.create(deploy("green"))

    first = await reconciler.reconcile(await fetch("blue"))
    second = await reconciler.reconcile(await fetch("green"))

    assert first.outcome == "wait"  # its delay step
    assert holder(await lease(api)) == "blue/blue-1"
    assert (second.outcome, second.delay) == ("wait", 5.0)
    waiting = await ready(fetch, "green")
    assert (waiting["status"], waiting["reason"]) == ("False", "MutexHeld")
    assert waiting["message"].startswith(
        "waiting for mutex 'deploy', held by pipeline 'blue' (run blue-1)"
    )
    assert (await fetch("green"))["status"].get("steps", []) == []  # nothing ran
    assert queue(await lease(api)) == ["green"]

    clock.advance(10)
    assert (await reconciler.reconcile(await fetch("blue"))).outcome == "done"
    assert holder(await lease(api)) is None  # released on settling

    taken = await reconciler.reconcile(await fetch("green"))
    assert taken.outcome == "wait"  # now its own delay step
    assert holder(await lease(api)) == "green/green-1"
    assert queue(await lease(api)) == []


async def test_waiting_runs_take_the_mutex_in_order_of_arrival(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, clock: Clock
) -> None:
    for name in ("one", "two", "three"):
        await api.create(deploy(name))
    await reconciler.reconcile(await fetch("one"))
    await reconciler.reconcile(await fetch("three"))  # asks first
    await reconciler.reconcile(await fetch("two"))
    assert (await ready(fetch, "two"))["message"].endswith("; 1 run ahead in line")
    clock.advance(10)
    await reconciler.reconcile(await fetch("one"))

    # "two" asks first once it is free, yet "three" came first: "two" still waits.
    await reconciler.reconcile(await fetch("two"))
    assert (await ready(fetch, "two"))["reason"] == "MutexHeld"
    assert (await ready(fetch, "two"))[
        "message"
    ] == "waiting for mutex 'deploy'; 1 run ahead in line"
    await reconciler.reconcile(await fetch("three"))
    assert holder(await lease(api)) == "three/three-1"


async def test_a_cancelled_run_lets_go_of_the_mutex(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch
) -> None:
    await api.create(deploy("blue", seconds=3600))
    await reconciler.reconcile(await fetch("blue"))
    assert holder(await lease(api)) == "blue/blue-1"

    await api.patch(
        API,
        "Pipeline",
        "blue",
        "default",
        {"metadata": {"annotations": {"kubesteps.dev/cancel": "now"}}},
    )
    assert (await reconciler.reconcile(await fetch("blue"))).outcome == "cancelled"

    assert holder(await lease(api)) is None


async def test_a_cancelled_waiter_leaves_the_line(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch
) -> None:
    await api.create(deploy("blue", seconds=3600))
    await api.create(deploy("green"))
    await reconciler.reconcile(await fetch("blue"))
    await reconciler.reconcile(await fetch("green"))
    assert queue(await lease(api)) == ["green"]

    await api.patch(
        API,
        "Pipeline",
        "green",
        "default",
        {"metadata": {"annotations": {"kubesteps.dev/cancel": "now"}}},
    )
    await reconciler.reconcile(await fetch("green"))

    assert queue(await lease(api)) == []
    assert holder(await lease(api)) == "blue/blue-1"


async def test_a_held_mutex_expires_when_its_holder_stops_renewing_it(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, clock: Clock
) -> None:
    await api.create(deploy("blue", seconds=3600))
    await api.create(deploy("green"))
    held = await reconciler.reconcile(await fetch("blue"))
    assert held.delay == 20  # a third of the lease, not the hour of its delay step
    await reconciler.reconcile(await fetch("green"))

    clock.advance(59)  # the holder's operator is down: no renewal, but not expired yet
    await reconciler.reconcile(await fetch("green"))
    assert (await ready(fetch, "green"))["reason"] == "MutexHeld"

    clock.advance(2)
    await reconciler.reconcile(await fetch("green"))
    assert holder(await lease(api)) == "green/green-1"
    # The holder comes back: it queues like anyone else.
    await reconciler.reconcile(await fetch("blue"))
    assert (await ready(fetch, "blue"))["message"].startswith(
        "waiting for mutex 'deploy', held by pipeline 'green' (run green-1)"
    )


async def test_the_holder_renews_its_lease_on_its_passes(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, clock: Clock
) -> None:
    await api.create(deploy("blue", seconds=3600))
    await api.create(deploy("green"))
    await reconciler.reconcile(await fetch("blue"))
    for _ in range(4):  # 80 s in all, more than the lease's 60
        clock.advance(20)
        await reconciler.reconcile(await fetch("blue"))
        await reconciler.reconcile(await fetch("green"))

    assert holder(await lease(api)) == "blue/blue-1"
    assert (await ready(fetch, "green"))["reason"] == "MutexHeld"


async def test_a_deleted_holder_frees_the_mutex(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch
) -> None:
    await api.create(deploy("blue", seconds=3600))
    await api.create(deploy("green"))
    await reconciler.reconcile(await fetch("blue"))
    await reconciler.reconcile(await fetch("green"))

    # Deleted while no operator watched (the DELETED event releases it otherwise).
    await api.delete(API, "Pipeline", "blue", "default")
    await reconciler.reconcile(await fetch("green"))

    assert holder(await lease(api)) == "green/green-1"


async def test_deletion_releases_the_mutex_and_leaves_the_line(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch
) -> None:
    await api.create(deploy("blue", seconds=3600))
    await api.create(deploy("green", seconds=3600))
    await reconciler.reconcile(await fetch("blue"))
    await reconciler.reconcile(await fetch("green"))

    await reconciler.release_mutexes(await fetch("green"))  # what the DELETED event does
    assert queue(await lease(api)) == []
    await reconciler.release_mutexes(await fetch("blue"))
    assert holder(await lease(api)) is None


async def test_a_run_takes_several_mutexes_in_order_and_keeps_those_it_has(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch, clock: Clock
) -> None:
    await api.create(deploy("web-rollout", mutex="web", seconds=3600))
    await api.create(deploy("release", mutex=["web", "db"]))  # taken as db, then web
    await reconciler.reconcile(await fetch("web-rollout"))

    await reconciler.reconcile(await fetch("release"))

    assert (await ready(fetch, "release"))["message"].startswith(
        "waiting for mutex 'web', held by pipeline 'web-rollout'"
    )
    assert holder(await lease(api, "kubesteps-mutex-db")) == "release/release-1"


async def test_a_new_run_lets_go_of_what_the_superseded_run_held(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch
) -> None:
    await api.create(deploy("blue", seconds=3600))
    await reconciler.reconcile(await fetch("blue"))
    await api.patch(
        API,
        "Pipeline",
        "blue",
        "default",
        {"spec": {"steps": [{"name": "roll-out", "action": "delay", "with": {"duration": "2h"}}]}},
    )

    await reconciler.reconcile(await fetch("blue"))

    assert holder(await lease(api)) == "blue/blue-2"


async def test_changing_only_the_mutex_starts_no_new_run(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch
) -> None:
    await api.create(deploy("blue", seconds=3600))
    await reconciler.reconcile(await fetch("blue"))
    await api.patch(API, "Pipeline", "blue", "default", {"spec": {"mutex": ["deploy", "db"]}})

    await reconciler.reconcile(await fetch("blue"))

    assert (await fetch("blue"))["status"]["run"]["number"] == 1
    assert holder(await lease(api, "kubesteps-mutex-db")) == "blue/blue-1"
