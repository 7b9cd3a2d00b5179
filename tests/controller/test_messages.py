"""What a person reads on a Pipeline: Ready's reason and message, and the STEP column."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kopf
import pytest

from kubesteps.controller.operator import Connection, build_registry, settings_hook
from kubesteps.controller.reconciler import Reconciler
from kubesteps.kube.client import KubeClient
from kubesteps.kube.conditions import find

from .conftest import pipeline, python_step
from .test_kubectl import kubectl

Fetch = Callable[[str], Any]
MISSING = {"function": "tests.controller.not_installed"}


def ready(body: dict[str, Any]) -> dict[str, Any]:
    found = find(body["status"].get("conditions", []), "Ready")
    assert found is not None
    return dict(found)


async def test_a_run_that_went_on_past_a_failed_step_succeeds_with_errors_naming_it(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch
) -> None:
    await api.create(
        pipeline(
            "soft",
            [
                {
                    "name": "optional",
                    "action": "python",
                    "with": MISSING,
                    "continueOnError": True,
                    "retry": {"limit": 0},
                },
                python_step("after"),
            ],
        )
    )

    result = await reconciler.reconcile(await fetch("soft"))

    assert result.outcome == "done"
    body = await fetch("soft")
    condition = ready(body)
    assert (condition["status"], condition["reason"]) == ("True", "SucceededWithErrors")
    assert condition["message"] == (
        "all steps are done, but step 'optional' failed (continueOnError let the run go on) "
        "(1 failed, 1 succeeded)"
    )
    run = body["status"]["run"]
    assert (run["phase"], run["reason"]) == ("Succeeded", "SucceededWithErrors")
    # A later pass (a resync) keeps saying so.
    await reconciler.reconcile(await fetch("soft"))
    assert ready(await fetch("soft"))["reason"] == "SucceededWithErrors"


@pytest.mark.slow
async def test_kubectl_wait_for_ready_returns_for_a_run_that_succeeded_with_errors(
    api: KubeClient, kubeconfig: Path, operator_runner: Any
) -> None:
    def quick(settings: kopf.OperatorSettings) -> None:
        settings_hook(settings, {"server_timeout": 30, "client_timeout": 40})

    async with operator_runner(
        build_registry(Connection()), wait_for=["pipelines"], settings_hook=quick
    ):
        await api.create(
            pipeline(
                "soft",
                [
                    {
                        "name": "optional",
                        "action": "python",
                        "with": MISSING,
                        "continueOnError": True,
                        "retry": {"limit": 0},
                    },
                ],
            )
        )
        out = await kubectl(
            kubeconfig, "wait", "--for=condition=Ready", "pipeline/soft", "--timeout=30s"
        )
    assert out.strip() == "pipeline.kubesteps.dev/soft condition met"


async def test_a_message_that_names_its_step_is_not_prefixed_with_it_again(
    api: KubeClient, fetch: Fetch
) -> None:
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    reconciler = Reconciler(lambda: api, clock=lambda: now[0])
    await api.create(
        pipeline(
            "slow",
            [
                {
                    "name": "pause",
                    "action": "approval",
                    "with": {},
                    "timeout": "2m",
                    "retry": {"limit": 0},
                },
            ],
        )
    )
    await reconciler.reconcile(await fetch("slow"))
    now[0] += timedelta(minutes=3)

    await reconciler.reconcile(await fetch("slow"))

    message = ready(await fetch("slow"))["message"]
    assert message.startswith("step 'pause' timed out after 2m (the attempt ran 3m)")
    assert "step 'pause': step 'pause'" not in message


async def test_the_step_column_shows_the_group_while_its_sub_steps_take_turns(
    api: KubeClient, fetch: Fetch
) -> None:
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    reconciler = Reconciler(lambda: api, clock=lambda: now[0])
    await api.create(
        pipeline(
            "fan",
            [
                python_step("first"),
                {
                    "name": "regions",
                    "forEach": {
                        "items": "['5s', '7s', '9s']",
                        "step": {"action": "delay", "with": {"duration": "${ item }"}},
                    },
                },
                {
                    "name": "both",
                    "parallel": {
                        "steps": [
                            {"name": "left", "action": "delay", "with": {"duration": "2s"}},
                            {
                                "name": "right",
                                "group": {
                                    "steps": [
                                        {
                                            "name": "inner",
                                            "action": "delay",
                                            "with": {"duration": "3s"},
                                        }
                                    ]
                                },
                            },
                        ]
                    },
                },
            ],
        )
    )

    shown = []
    for _ in range(8):
        await reconciler.reconcile(await fetch("fan"))
        shown.append((await fetch("fan"))["status"].get("currentStep"))
        now[0] += timedelta(seconds=2)

    assert shown == ["regions"] * 5 + ["both", "both", ""]


async def test_a_foreach_sub_step_records_the_item_it_runs_for(
    api: KubeClient, reconciler: Reconciler, fetch: Fetch
) -> None:
    long = "x" * 100
    await api.create(
        pipeline(
            "fan",
            [
                {
                    "name": "regions",
                    "forEach": {
                        "items": f"['eu-west-1', {{'zone': 'b', 'n': 2}}, '{long}']",
                        "step": {
                            "action": "python",
                            "with": {"function": "kubesteps.examples.greet"},
                        },
                    },
                }
            ],
        )
    )

    await reconciler.reconcile(await fetch("fan"))

    records = {r["name"]: r for r in (await fetch("fan"))["status"]["steps"]}
    assert records["regions-0"]["item"] == "eu-west-1"
    assert records["regions-1"]["item"] == '{"n":2,"zone":"b"}'
    assert records["regions-2"]["item"] == "x" * 63 + "…"
    assert "item" not in records["regions"]
