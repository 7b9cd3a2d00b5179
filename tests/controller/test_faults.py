"""Passes under API faults: the conflict replay's re-read is retried like every other call,
and a pass that still fails is tried again soon, with a backoff, logged in one line."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import kopf
import pytest

from kubesteps.controller.handlers import (
    FAILED_PASS_BACKOFF,
    _Schedule,
    failed_pass,
    quiet_temporary_errors,
)
from kubesteps.controller.operator import Connection, build_registry, settings_hook
from kubesteps.controller.reconciler import Reconciler
from kubesteps.kube.client import ApiError, KubeClient
from kubesteps.kube.conditions import find
from kubesteps.testing import Emulator

from .conftest import API, pipeline, python_step


@pytest.mark.parametrize("status", [429, 503])
async def test_a_failing_re_read_after_a_conflict_is_retried_and_the_pass_succeeds(
    api: KubeClient, k8s_emulator: Emulator, status: int
) -> None:
    await api.create(pipeline("contested", [python_step("greet")]))
    stale = await api.get(API, "Pipeline", "contested", "default")
    assert stale is not None
    # Somebody else writes first: our patch is stale, and the re-read meets a fault.
    await api.patch(
        API,
        "Pipeline",
        "contested",
        "default",
        {"status": {"observedGeneration": 0}},
        subresource="status",
    )
    reread = k8s_emulator.inject(
        verb="get", resource="pipelines", status=status, retry_after=0, times=1
    )

    result = await Reconciler(lambda: api).reconcile(stale)

    assert result.outcome == "done"
    assert reread.hits == 1
    body = k8s_emulator.object("pipelines", "contested", "default")
    assert body is not None
    assert find(body["status"]["conditions"], "Ready")["status"] == "True"  # type: ignore[index]


def test_failed_passes_back_off_exponentially_per_pipeline_up_to_a_cap() -> None:
    body = {"metadata": {"namespace": "default", "name": "p"}}
    schedule, other = _Schedule(), _Schedule()
    error = ApiError(503, "ServiceUnavailable", "try later")

    delays = [failed_pass(body, schedule, error) for _ in range(10)]

    jitter = FAILED_PASS_BACKOFF.jitter.total_seconds()
    for attempt, delay in enumerate(delays[:5]):
        assert 2**attempt <= delay <= 2**attempt + jitter
    assert delays[-1] == FAILED_PASS_BACKOFF.max_delay.total_seconds()
    assert schedule.failures == 10
    assert 1 <= failed_pass(body, other, error) <= 1 + jitter  # another Pipeline starts afresh


@pytest.mark.slow  # waits seconds of real time (backoffs, leases, whole runs)
async def test_a_pass_whose_status_write_fails_is_retried_soon_and_logged_in_one_line(
    api: KubeClient,
    k8s_emulator: Emulator,
    kubeconfig: Path,
    operator_runner: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def quick(settings: kopf.OperatorSettings) -> None:
        settings_hook(settings, {"server_timeout": 30, "client_timeout": 40})

    caplog.set_level(logging.INFO)
    refused = k8s_emulator.inject(
        verb="patch", resource="pipelines", subresource="status", status=503, times=None
    )
    async with operator_runner(
        build_registry(Connection()), wait_for=["pipelines"], settings_hook=quick
    ):
        await api.create(pipeline("unlucky", [python_step("greet")]))
        async with asyncio.timeout(20):
            while True:
                if refused.hits >= 2 * 5:  # two passes, each with all its attempts
                    break
                await asyncio.sleep(0.05)
        k8s_emulator.clear_faults()
        # kopf's own retry would come after 60 s; the pass's backoff is a second or two.
        async with asyncio.timeout(20):
            while True:
                body = k8s_emulator.object("pipelines", "unlucky", "default") or {}
                ready = find((body.get("status") or {}).get("conditions", []), "Ready")
                if ready and ready["status"] == "True":
                    break
                await asyncio.sleep(0.05)

    failures = [r for r in caplog.records if "pass of default/unlucky failed" in r.getMessage()]
    assert len(failures) >= 2
    assert "(1 in a row)" in failures[0].getMessage()
    assert "(2 in a row)" in failures[1].getMessage()
    assert all(r.levelno == logging.WARNING for r in failures)
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []


def test_kopfs_own_lines_about_a_failed_pass_and_a_requeue_are_dropped() -> None:
    quiet = quiet_temporary_errors()

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("kopf.objects", logging.ERROR, __file__, 1, message, (), None)

    failed = record("Handler 'reconcile' failed temporarily: pass failed: 503 Unavailable")
    requeue = record("Handler 'reconcile' failed temporarily: wait: step 'x': waiting")

    # The pass logged both already, in one line each (with the next pass's time).
    assert not quiet.filter(failed)
    assert not quiet.filter(requeue)
