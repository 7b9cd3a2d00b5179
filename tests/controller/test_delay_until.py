"""delay.until through a reconcile pass: the time may come from a CEL template."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from kubesteps.controller.reconciler import Reconciler
from kubesteps.kube.client import KubeClient

from .conftest import pipeline


async def test_until_from_a_template_waits_for_the_time_it_computes(
    api: KubeClient, fetch: Any
) -> None:
    now = [datetime(2026, 1, 1, 12, 0, tzinfo=UTC)]
    reconciler = Reconciler(lambda: api, clock=lambda: now[0])
    await api.create(
        pipeline(
            "later",
            [
                {
                    "name": "until-opening",
                    "action": "delay",
                    "with": {"until": '${ timestamp(params.opens) + duration("90s") }'},
                }
            ],
            params=[{"name": "opens", "value": "2026-01-01T12:00:00Z"}],
        )
    )

    result = await reconciler.reconcile(await fetch("later"))
    assert (result.outcome, result.delay) == ("wait", 90)
    step = (await fetch("later"))["status"]["steps"][0]
    assert step["phase"] == "Waiting"
    assert step["message"].startswith("waiting until 2026-01-01T12:01:30Z")
    assert step["nextRunAt"] == "2026-01-01T12:01:30Z"

    now[0] += timedelta(seconds=90)
    result = await reconciler.reconcile(await fetch("later"))
    assert result.outcome == "done"


async def test_a_template_that_gives_no_time_fails_the_step_saying_what_it_gave(
    api: KubeClient, reconciler: Reconciler, fetch: Any
) -> None:
    await api.create(
        pipeline(
            "never",
            [
                {
                    "name": "pause",
                    "action": "delay",
                    "with": {"until": "${ self.metadata.name }"},
                }
            ],
        )
    )

    result = await reconciler.reconcile(await fetch("never"))

    assert result.outcome == "failed"
    step = (await fetch("never"))["status"]["steps"][0]
    assert "with.until: must be an RFC 3339 time" in step["message"]
    assert "got 'never'" in step["message"]
