"""No credential the operator resolved reaches a sink: the status (messages, conditions,
outputs), Events, kopf's progress annotations, or the logs (tests/telemetry/test_redaction.py
and the operator process in test_process.py).

The source here redacts nothing on purpose: a python step that puts a registered value into
its outputs and its error, as a careless action would. Every sink must still hold it back.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kopf
import pytest

from kubesteps.actions.registry import register_python, unregister_python
from kubesteps.controller.operator import Connection, build_registry, settings_hook
from kubesteps.kube.client import KubeClient
from kubesteps.kube.conditions import find
from kubesteps.kube.events import EventRecorder
from kubesteps.kube.status_writer import ObjectRef, StatusWriter
from kubesteps.telemetry.redaction import MARK, redactor
from kubesteps.testing import Emulator

from .conftest import API, pipeline

SECRET = "ctl-Redact-9f8e7d6c"
FORMS = (SECRET, base64.b64encode(SECRET.encode()).decode())


@pytest.fixture(autouse=True)
def careless_actions() -> Iterator[None]:
    """The value as the http action would have registered it, and two python actions that
    hand it on unredacted: one in its outputs, one in its error."""
    redactor().register(SECRET)

    def tell(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
        return {"said": f"token {SECRET}", "encoded": FORMS[1]}

    def spill(ctx: Any, args: dict[str, Any]) -> None:
        raise RuntimeError(f"the server answered 500: Authorization: Bearer {SECRET}")

    register_python("test.redaction.tell", tell)
    register_python("test.redaction.spill", spill)
    yield
    unregister_python("test.redaction.tell")
    unregister_python("test.redaction.spill")


def leaks(document: Any) -> list[str]:
    text = json.dumps(document)
    return [form for form in FORMS if form in text]


async def test_no_sink_of_a_running_operator_holds_a_resolved_credential(
    api: KubeClient, k8s_emulator: Emulator, kubeconfig: Path, operator_runner: Any
) -> None:
    def quick(settings: kopf.OperatorSettings) -> None:
        settings_hook(settings, {"server_timeout": 30, "client_timeout": 40})

    async with operator_runner(
        build_registry(Connection()), wait_for=["pipelines"], settings_hook=quick
    ):
        await api.create(
            pipeline(
                "careless",
                [
                    {
                        "name": "tell",
                        "action": "python",
                        "condition": "Told",
                        "with": {"function": "test.redaction.tell"},
                    },
                    # Retried after a minute: kopf keeps the pass's message in its progress
                    # annotation meanwhile.
                    {
                        "name": "spill",
                        "action": "python",
                        "condition": "Spilled",
                        "retry": {"limit": 3, "backoff": {"initial": "60s"}},
                        "with": {"function": "test.redaction.spill"},
                    },
                ],
            )
        )
        async with asyncio.timeout(20):
            while True:
                body = k8s_emulator.object("pipelines", "careless", "default") or {}
                ready = find((body.get("status") or {}).get("conditions", []), "Ready")
                events = await api.list("v1", "Event", "default")
                progress = {
                    key: value
                    for key, value in (body.get("metadata", {}).get("annotations") or {}).items()
                    if key.startswith("kopf.zalando.org/reconcile")
                }
                if (
                    ready
                    and ready["reason"] == "Retrying"
                    and progress
                    and any(e["reason"] == "StepRetrying" for e in events)
                ):
                    break
                await asyncio.sleep(0.05)

    status = body["status"]
    tell, spill = status["steps"]
    assert tell["outputs"] == {"said": f"token {MARK}", "encoded": MARK}
    assert spill["message"].endswith(f"Authorization: {MARK}")
    assert MARK in find(status["conditions"], "Spilled")["message"]  # type: ignore[index]
    assert MARK in find(status["conditions"], "Ready")["message"]  # type: ignore[index]
    assert leaks(status) == []

    assert any(MARK in value for value in progress.values()), progress
    assert leaks(body["metadata"]) == []

    [retrying] = [e for e in events if e["reason"] == "StepRetrying"]
    assert f"Authorization: {MARK}" in retrying["message"]
    assert leaks(events) == []


async def test_the_status_writer_redacts_every_string_it_writes(
    api: KubeClient, k8s_emulator: Emulator
) -> None:
    created = await api.create(
        pipeline("written", [{"name": "a", "action": "delay", "with": {"duration": "1s"}}])
    )
    writer = StatusWriter(api, ObjectRef.of(created))

    await writer.patch(
        {
            "steps": [
                {
                    "name": "a",
                    "phase": "Failed",
                    "reason": "Failed",
                    "attempts": 1,
                    "generation": 1,
                    "message": f"saw {SECRET}",
                    "outputs": {"copy": FORMS[1], "nested": [SECRET]},
                }
            ]
        },
        None,
    )

    stored = k8s_emulator.object("pipelines", "written", "default")
    assert stored is not None
    [record] = stored["status"]["steps"]
    assert (record["message"], record["outputs"]) == (
        f"saw {MARK}",
        {"copy": MARK, "nested": [MARK]},
    )


async def test_the_event_recorder_redacts_messages_before_they_are_posted(
    api: KubeClient,
) -> None:
    events = EventRecorder(lambda: api)
    involved = {
        "apiVersion": API,
        "kind": "Pipeline",
        "metadata": {"name": "told", "namespace": "default", "uid": "u-told"},
    }

    assert events.emit(involved, "StepFailed", f"step 'x': echoed {SECRET}", warning=True)
    await events.drain()

    [stored] = await api.list("v1", "Event", "default")
    assert stored["message"] == f"step 'x': echoed {MARK}"
