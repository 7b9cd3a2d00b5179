"""Fixtures for the action tests: a fake clock, an API client on the emulator, and ``ActionRun``,
which runs one action as the body of one step of a real ``StepsEngine``, pass after pass.

``pytest_plugins`` only works in the top-level conftest (not ours to own), so the plugin's
emulator fixture is imported by name instead.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio

from kubesteps.actions.base import ActionContext, Outputs
from kubesteps.actions.registry import run_action
from kubesteps.engine import (
    MemoryStateKeeper,
    Outcome,
    RetryPolicy,
    SimpleStep,
    StepContext,
    StepsEngine,
    StepState,
)
from kubesteps.kube.client import Credentials, KubeClient
from kubesteps.pipeline.runs import Run
from kubesteps.testing import Emulator
from kubesteps.testing.pytest_plugin import k8s_emulator

__all__ = ["k8s_emulator"]

START = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
PIPELINE_UID = "0b7c5a3e-7d51-4c1e-9d0a-5f1f2a9b6c11"


class FakeClock:
    """A clock that only moves when a test says so."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def pipeline_object(
    name: str = "demo",
    namespace: str = "default",
    *,
    generation: int = 1,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A Pipeline as the operator would hand it to a pass."""
    return {
        "apiVersion": "kubesteps.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": PIPELINE_UID,
            "generation": generation,
            "annotations": dict(annotations or {}),
        },
        "spec": {},
    }


def run_of(number: int = 1, *, retries: int = 0, pipeline: str = "demo") -> Run:
    """A run of the Pipeline, as the reconciler hands it to the actions."""
    return Run(
        pipeline=pipeline,
        number=number,
        trigger="Created",
        phase="Running",
        spec_hash="0" * 16,
        started_at=START,
        retries=retries,
    )


class ActionRun:
    """One step, ``step``, whose body is ``run_action(ctx, action, with_)``.

    ``with_``, ``pipeline`` and ``extras`` may be changed between passes, as a new spec,
    annotation or operator state would. ``call`` replaces ``run_action`` (to run an action
    object that is not the built-in one). The retry policy has no jitter, so retry delays
    are exact.
    """

    def __init__(
        self,
        action: str,
        with_: Mapping[str, Any],
        *,
        kube: KubeClient | None,
        clock: FakeClock,
        pipeline: dict[str, Any] | None = None,
        step: str = "s",
        retry: RetryPolicy | None = None,
        call: Callable[[ActionContext], Awaitable[Outputs]] | None = None,
        timeout: timedelta | None = None,
        run: Run | None = None,
    ) -> None:
        self.action = action
        self.with_ = dict(with_)
        self.pipeline = pipeline if pipeline is not None else pipeline_object()
        self.extras: dict[str, Any] = {}
        self.run = run
        self.step = step
        self.clock = clock
        self.kube = kube
        self.call = call
        self.keeper = MemoryStateKeeper()
        self.engine = StepsEngine(
            [SimpleStep(name=step, run=self._body, timeout=timeout)],
            keeper=self.keeper,
            clock=clock,
            rng=random.Random(1),
            retry=retry or RetryPolicy(limit=3, initial=timedelta(seconds=2), jitter=timedelta(0)),
        )

    async def _body(self, ctx: StepContext) -> Outputs:
        action_ctx = ActionContext(
            step=ctx,
            pipeline=self.pipeline,
            kube=self.kube,
            clock=self.clock,
            extras=self.extras,
            run=self.run,
        )
        if self.call is not None:
            return await self.call(action_ctx)
        return await run_action(action_ctx, self.action, self.with_)

    async def once(self) -> Outcome:
        """One reconcile pass."""
        return await self.engine.run()

    @property
    def state(self) -> StepState:
        return self.keeper.states[self.step]

    @property
    def statuses(self) -> list[str]:
        """Every status the step went through, in order."""
        return [s.status.value for s in self.keeper.transitions if s.name == self.step]


RunFactory = Callable[..., ActionRun]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest_asyncio.fixture
async def kube(k8s_emulator: Emulator) -> AsyncIterator[KubeClient]:
    """A client that tries each request once: an injected fault reaches the action as it
    would once the client's own retries (tests/kube/test_client_retry.py) are used up."""
    assert k8s_emulator.url is not None
    credentials = Credentials(server=k8s_emulator.url, insecure=True)
    async with KubeClient(credentials, attempts=1) as client:
        yield client


@pytest.fixture
def make_run(kube: KubeClient, clock: FakeClock) -> RunFactory:
    """``make_run("delay", {"duration": "30s"})``: an ActionRun on the emulator and fake clock."""

    def build(action: str, with_: Mapping[str, Any], **options: Any) -> ActionRun:
        options.setdefault("kube", kube)
        return ActionRun(action, with_, clock=clock, **options)

    return build
