"""Fixtures of the UI tests: the emulator serving Pipelines, the operator, `kubesteps ui`
(in process for the server tests, as the real command for the browser tests) and Chromium."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import kopf
import pytest
import pytest_asyncio
import yaml

from kubesteps.actions.registry import register_python, unregister_python
from kubesteps.controller.operator import Connection, build_registry, settings_hook
from kubesteps.kube.client import Credentials, KubeClient
from kubesteps.testing import Emulator
from kubesteps.ui.server import Settings, serving

from .browser import Browser, playwright_home

REPO = Path(__file__).resolve().parents[2]
CRD = yaml.safe_load((REPO / "crds" / "pipelines.kubesteps.dev.yaml").read_text())
API = "kubesteps.dev/v1alpha1"
# Screenshots of the browser tests: kept after the run (a CI artifact), git-ignored.
ARTIFACTS = Path(os.environ.get("KUBESTEPS_UI_ARTIFACTS", REPO / ".artifacts" / "ui"))


def pipeline(
    name: str, steps: list[dict[str, Any]], namespace: str = "default", **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Pipeline",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"steps": steps, **spec},
    }


def delay(name: str, seconds: float) -> dict[str, Any]:
    return {"name": name, "action": "delay", "with": {"duration": f"{int(seconds * 1000)}ms"}}


def flaky(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "action": "python",
        "with": {"function": "test.ui.flaky", "args": {}},
        **extra,
    }


def approval(name: str) -> dict[str, Any]:
    return {"name": name, "action": "approval", "with": {"message": "ship it?"}}


class Flaky:
    """A python action that fails for the steps named in ``broken``."""

    def __init__(self) -> None:
        self.broken: set[str] = set()
        self.calls: dict[str, int] = {}

    def __call__(self, ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
        self.calls[ctx.name] = self.calls.get(ctx.name, 0) + 1
        if ctx.name in self.broken:
            raise RuntimeError(f"{ctx.name} is broken on purpose")
        return {"calls": self.calls[ctx.name]}


@pytest.fixture
def broken() -> Iterator[Flaky]:
    action = Flaky()
    register_python("test.ui.flaky", action)
    yield action
    unregister_python("test.ui.flaky")


@pytest_asyncio.fixture
async def api(k8s_emulator: Emulator) -> AsyncIterator[KubeClient]:
    k8s_emulator.register_crd(CRD)
    assert k8s_emulator.url is not None
    async with KubeClient(Credentials(server=k8s_emulator.url, insecure=True)) as client:
        yield client


def _quick(settings: kopf.OperatorSettings) -> None:
    settings_hook(settings, {"server_timeout": 30, "client_timeout": 40})


@pytest_asyncio.fixture
async def operator(
    api: KubeClient, kubeconfig: Path, operator_runner: Any, broken: Flaky
) -> AsyncIterator[None]:
    async with operator_runner(
        build_registry(Connection()), wait_for=["pipelines"], settings_hook=_quick
    ):
        yield


async def get(api: KubeClient, name: str, namespace: str = "default") -> dict[str, Any]:
    body = await api.get(API, "Pipeline", name, namespace)
    assert body is not None, f"Pipeline {namespace}/{name} is gone"
    return body


async def run_phase(api: KubeClient, name: str, phase: str, within: float = 30) -> dict[str, Any]:
    async with asyncio.timeout(within):
        while True:
            body = await get(api, name)
            if ((body.get("status") or {}).get("run") or {}).get("phase") == phase:
                return body
            await asyncio.sleep(0.05)


@dataclass
class Ui:
    """A serving `kubesteps ui`: its URL with the token, and the parts of it."""

    url: str
    settings: Settings

    @property
    def base(self) -> str:
        return self.url.split("/?", 1)[0]

    @property
    def token(self) -> str:
        return self.settings.token

    @property
    def origin(self) -> dict[str, str]:
        return {"Origin": self.base}

    def auth(self, **headers: str) -> dict[str, str]:
        return {"X-Kubesteps-Token": self.token, **headers}


@pytest_asyncio.fixture
async def ui(api: KubeClient) -> AsyncIterator[Ui]:
    """The UI server in this process, for every namespace, as the emulator's user."""
    settings = Settings(namespace=None)
    async with serving(api, settings) as url:
        yield Ui(url, settings)


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # No cookie jar: each request says itself how it is authorized.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        yield session


@pytest_asyncio.fixture
async def ui_command(kubeconfig: Path, api: KubeClient) -> AsyncIterator[str]:
    """`kubesteps ui -A` as the user runs it, with the emulator's kubeconfig; its URL."""
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "kubesteps"),
        "ui",
        "--port",
        "0",
        "-A",
        "--kubeconfig",
        str(kubeconfig),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        async with asyncio.timeout(30):
            line = (await process.stdout.readline()).decode()
        found = re.search(r"http://127\.0\.0\.1:[0-9]+/\?token=\S+", line)
        if found is None:
            raise AssertionError(
                f"kubesteps ui printed {line!r}; stderr: {(await process.stderr.read()).decode()}"
            )
        yield found.group(0)
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        await process.wait()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    """Headless Chromium for the session (installed by ensure-browser.sh when missing)."""
    started = Browser(playwright_home())
    try:
        yield started
    finally:
        started.close()


@pytest_asyncio.fixture
async def browser(chromium: Browser) -> Browser:
    """The session's Chromium in a fresh context (no cookies, no page) for this test."""
    await chromium.fresh()
    return chromium
