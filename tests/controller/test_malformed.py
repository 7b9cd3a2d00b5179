"""Every malformed Pipeline of the table, sent to the emulator with the operator running.

Each is refused by the API server (the CRD schema) or reported by the operator as
``Ready=False/InvalidSpec`` with a message naming the field, and the operator keeps
serving: a valid Pipeline created after all of them still becomes Ready.
"""

from __future__ import annotations

import asyncio
import copy
import re
from pathlib import Path
from typing import Any

import kopf
import pytest

from kubesteps.controller.operator import Connection, build_registry, settings_hook
from kubesteps.kube.client import ApiError, KubeClient
from kubesteps.kube.conditions import find
from tests.pipeline.malformed import MALFORMED, Malformed

from .conftest import API, pipeline, python_step

# Objects that are not Pipelines of our version cannot be sent to the Pipelines endpoint.
_NOT_POSTABLE = {
    "wrong-api-version",
    "wrong-kind",
    "metadata-without-name",
    "kind-one-edit-away",
    "api-version-with-a-typo",
}


def quick(settings: kopf.OperatorSettings) -> None:
    settings_hook(settings, {"server_timeout": 30, "client_timeout": 40})


def _named(case: Malformed) -> dict[str, Any]:
    manifest = copy.deepcopy(case.manifest)
    manifest["metadata"]["name"] = re.sub(r"[^a-z0-9-]", "-", case.id.lower())[:63].strip("-")
    return manifest


async def _send(api: KubeClient, manifest: dict[str, Any]) -> ApiError | None:
    """Create as `kubectl apply` with server-side field validation does (Strict)."""
    path = "/apis/kubesteps.dev/v1alpha1/namespaces/default/pipelines"
    try:
        await api.request("POST", path, body=manifest, params={"fieldValidation": "Strict"})
    except ApiError as error:
        return error
    return None


async def _invalid_spec_message(api: KubeClient, name: str) -> str:
    async with asyncio.timeout(20):
        while True:
            body = await api.get(API, "Pipeline", name, "default")
            assert body is not None
            ready = find((body.get("status") or {}).get("conditions", []), "Ready")
            if ready is not None:
                assert ready["reason"] == "InvalidSpec", f"{name}: {ready}"
                assert ready["status"] == "False"
                return str(ready["message"])
            await asyncio.sleep(0.05)


@pytest.mark.slow  # waits seconds of real time (backoffs, leases, whole runs)
async def test_every_malformed_pipeline_is_refused_or_reported_and_nothing_crashes(
    api: KubeClient, kubeconfig: Path, operator_runner: Any
) -> None:
    cases = [c for c in MALFORMED if c.id not in _NOT_POSTABLE]
    assert len(cases) >= 30
    refused: dict[str, ApiError] = {}
    reported: list[Malformed] = []
    async with operator_runner(
        build_registry(Connection()), wait_for=["pipelines"], settings_hook=quick
    ):
        for case in cases:
            error = await _send(api, _named(case))
            if error is None:
                reported.append(case)
            else:
                refused[case.id] = error

        for case in reported:
            message = await _invalid_spec_message(api, _named(case)["metadata"]["name"])
            assert case.validate.path in message, f"{case.id}: {message}"
            assert case.validate.message in message, f"{case.id}: {message}"

        await api.create(pipeline("still-serving", [python_step("fine")]))
        async with asyncio.timeout(20):
            while True:
                body = await api.get(API, "Pipeline", "still-serving", "default")
                ready = find(((body or {}).get("status") or {}).get("conditions", []), "Ready")
                if ready is not None and ready["status"] == "True":
                    break
                await asyncio.sleep(0.05)

    for case_id, error in refused.items():
        case = next(c for c in cases if c.id == case_id)
        assert error.status in (400, 422), f"{case_id}: {error}"
        assert case.schema is not None, f"{case_id} was refused by the API server: {error}"
    # Both gates are exercised: the API server's schema and the operator's own checks.
    assert refused
    assert reported
