"""Fixtures for the CLI's tests: the emulator serving Pipelines, the real kubectl with the
plugin on its PATH, and snapshots."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml

from kubesteps.kube.client import Credentials, KubeClient
from kubesteps.testing import Emulator

from ..conftest import cluster_assets

ROOT = Path(__file__).resolve().parents[2]
CRD = yaml.safe_load((ROOT / "crds" / "pipelines.kubesteps.dev.yaml").read_text())
API = "kubesteps.dev/v1alpha1"
SNAPSHOTS = Path(__file__).parent / "snapshots"
# Where `pip install` put kubectl-kubesteps and kubectl_complete-kubesteps.
SCRIPTS = Path(sys.executable).parent
UPDATE = bool(os.environ.get("KUBESTEPS_UPDATE_SNAPSHOTS"))


def snapshot(name: str, text: str) -> None:
    """``text`` equals the stored snapshot (KUBESTEPS_UPDATE_SNAPSHOTS=1 rewrites it)."""
    path = SNAPSHOTS / name
    if UPDATE or not path.exists():
        path.write_text(text)
        if not UPDATE:
            pytest.fail(f"snapshot {name} did not exist: written, check it in", pytrace=False)
    assert text == path.read_text(), f"{name} changed (KUBESTEPS_UPDATE_SNAPSHOTS=1 rewrites)"


@pytest.fixture(scope="session")
def kubectl_binary() -> Path:
    """The real kubectl built for this machine (make cluster-bin), not the one on PATH;
    TEST_ASSET_KUBECTL names one directly (no control plane needed for these tests)."""
    given = os.environ.get("TEST_ASSET_KUBECTL")
    return Path(given) if given else cluster_assets().kubectl


@pytest_asyncio.fixture
async def api(k8s_emulator: Emulator) -> AsyncIterator[KubeClient]:
    k8s_emulator.register_crd(CRD)
    assert k8s_emulator.url is not None
    async with KubeClient(Credentials(server=k8s_emulator.url, insecure=True)) as client:
        yield client


@dataclass
class Done:
    code: int
    out: str
    err: str


Kubectl = Callable[..., Awaitable[Done]]


@pytest.fixture
def kubectl(kubectl_binary: Path, kubeconfig: Path, tmp_path: Path, api: KubeClient) -> Kubectl:
    """``await kubectl("kubesteps", "get")``: the real kubectl, which finds the plugin on
    PATH (the venv's scripts) and runs it; no terminal, so no colour."""

    async def run(*args: str, env: dict[str, str] | None = None, seconds: float = 60) -> Done:
        environment = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "HOME": str(tmp_path),
            "PATH": os.pathsep.join([str(SCRIPTS), str(kubectl_binary.parent), "/usr/bin", "/bin"]),
            **(env or {}),
        }
        environment.pop("KUBESTEPS_DEBUG", None)
        process = await asyncio.create_subprocess_exec(
            str(kubectl_binary),
            *args,
            env=environment,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL,
        )
        async with asyncio.timeout(seconds):
            out, err = await process.communicate()
        assert process.returncode is not None
        return Done(process.returncode, out.decode(), err.decode())

    return run


def manifest(name: str) -> dict[str, Any]:
    """The (first) Pipeline of an example file."""
    documents = yaml.safe_load_all((ROOT / "examples" / name).read_text())
    return next(dict(d) for d in documents if isinstance(d, dict) and d.get("kind") == "Pipeline")
