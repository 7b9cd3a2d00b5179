"""spec.mutex through the running operator (kopf) on the emulator: two Pipelines that
share a mutex run one after the other; deleting the holder lets the next one go."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from kubesteps.kube.client import KubeClient
from kubesteps.kube.conditions import find

from .conftest import API, pipeline
from .test_operator import operator, settled

__all__ = ["operator"]

Fetch = Callable[[str], Any]


def deploy(name: str, duration: str) -> dict[str, Any]:
    return pipeline(
        name,
        [{"name": "roll-out", "action": "delay", "with": {"duration": duration}}],
        mutex="deploy-prod",
    )


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.mark.slow  # waits seconds of real time (backoffs, leases, whole runs)
@pytest.mark.usefixtures("operator")
async def test_two_pipelines_sharing_a_mutex_run_one_after_the_other(
    api: KubeClient, fetch: Fetch
) -> None:
    await api.create(deploy("web", "2s"))
    await settled(fetch, "web", "Waiting")  # its delay: it holds the mutex before api asks
    await api.create(deploy("api", "1s"))

    waiting = await settled(fetch, "api", "MutexHeld")
    message = find(waiting["status"]["conditions"], "Ready")["message"]  # type: ignore[index]
    assert message == "waiting for mutex 'deploy-prod', held by pipeline 'web' (run web-1)"
    web = await settled(fetch, "web", "Succeeded")
    api_done = await settled(fetch, "api", "Succeeded", within=30)

    first, second = web["status"]["steps"][0], api_done["status"]["steps"][0]
    assert _time(second["startedAt"]) >= _time(first["finishedAt"])


@pytest.mark.slow  # waits seconds of real time (backoffs, leases, whole runs)
@pytest.mark.usefixtures("operator")
async def test_deleting_the_holder_lets_the_next_run_take_the_mutex(
    api: KubeClient, fetch: Fetch
) -> None:
    await api.create(deploy("web", "1h"))
    await settled(fetch, "web", "Waiting")
    await api.create(deploy("api", "1s"))
    await settled(fetch, "api", "MutexHeld")

    await api.delete(API, "Pipeline", "web", "default")

    await settled(fetch, "api", "Succeeded", within=30)
    lease = await api.get(
        "coordination.k8s.io/v1", "Lease", "kubesteps-mutex-deploy-prod", "default"
    )
    assert lease is not None
    assert not lease["spec"].get("holderIdentity")  # and released once api's run settled
