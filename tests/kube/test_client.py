"""The API client against the emulator: kinds resolved by discovery, verbs, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from kubesteps.kube.client import ApiError, Credentials, KubeClient
from kubesteps.testing import Emulator


@pytest_asyncio.fixture
async def client(k8s_emulator: Emulator) -> AsyncIterator[KubeClient]:
    assert k8s_emulator.url is not None
    async with KubeClient(Credentials(server=k8s_emulator.url, insecure=True)) as c:
        yield c


async def no_sleep(_: float) -> None:
    """Retries without the waits (the waits asked for are what the tests look at)."""


def config_map(name: str, **data: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
        "data": data,
    }


async def test_kinds_are_resolved_through_discovery(client: KubeClient) -> None:
    jobs = await client.resource("batch/v1", "Job")
    namespaces = await client.resource("v1", "Namespace")

    assert (jobs.plural, jobs.namespaced) == ("jobs", True)
    assert jobs.path("ns", "x") == "/apis/batch/v1/namespaces/ns/jobs/x"
    assert (namespaces.plural, namespaces.namespaced) == ("namespaces", False)
    assert namespaces.path("ignored", "x") == "/api/v1/namespaces/x"


async def test_an_unknown_kind_is_a_not_found_naming_it(client: KubeClient) -> None:
    with pytest.raises(ApiError, match="Widget") as raised:
        await client.resource("v1", "Widget")
    assert raised.value.status == 404


async def test_get_of_a_missing_object_is_none(client: KubeClient) -> None:
    assert await client.get("v1", "ConfigMap", "nope", "default") is None


async def test_apply_creates_then_patches(client: KubeClient) -> None:
    created = await client.apply(config_map("settings", greeting="hello"))
    patched = await client.apply(config_map("settings", greeting="hi", extra="yes"))

    assert created["metadata"]["uid"] == patched["metadata"]["uid"]
    assert patched["data"] == {"greeting": "hi", "extra": "yes"}


async def test_list_filters_by_label_selector(client: KubeClient) -> None:
    labelled = config_map("a")
    labelled["metadata"]["labels"] = {"team": "x"}  # type: ignore[index]
    await client.create(labelled)
    await client.create(config_map("b"))

    found = await client.list("v1", "ConfigMap", "default", label_selector="team=x")

    assert [o["metadata"]["name"] for o in found] == ["a"]


async def test_delete_reports_whether_something_was_deleted(client: KubeClient) -> None:
    await client.create(config_map("gone"))

    assert await client.delete("v1", "ConfigMap", "gone", "default")
    assert not await client.delete("v1", "ConfigMap", "gone", "default")


async def test_errors_carry_status_reason_and_retry_after(k8s_emulator: Emulator) -> None:
    k8s_emulator.inject(verb="get", resource="configmaps", status=429, retry_after=7)
    assert k8s_emulator.url is not None
    credentials = Credentials(server=k8s_emulator.url, insecure=True)

    async with KubeClient(credentials, attempts=1) as once:
        with pytest.raises(ApiError) as raised:
            await once.get("v1", "ConfigMap", "x", "default")

    error = raised.value
    assert (error.status, error.reason, error.retry_after) == (429, "TooManyRequests", 7)
    assert error.transient


async def test_a_conflict_on_create_is_already_exists(client: KubeClient) -> None:
    await client.create(config_map("twice"))

    with pytest.raises(ApiError) as raised:
        await client.create(config_map("twice"))

    assert (raised.value.status, raised.value.reason) == (409, "AlreadyExists")


async def test_failed_requests_are_reported_to_the_error_hook(k8s_emulator: Emulator) -> None:
    seen: list[tuple[str, int | None]] = []
    assert k8s_emulator.url is not None
    async with KubeClient(
        Credentials(server=k8s_emulator.url, insecure=True),
        attempts=2,
        sleep=no_sleep,
        on_error=lambda verb, code: seen.append((verb, code)),
    ) as client:
        k8s_emulator.inject(verb="patch", resource="configmaps", status=500, times=None)
        await client.create(config_map("hooked"))
        with pytest.raises(ApiError):
            await client.patch("v1", "ConfigMap", "hooked", "default", {"data": {"a": "b"}})

    assert seen == [("patch", 500), ("patch", 500)]
