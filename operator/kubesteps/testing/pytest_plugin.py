"""pytest fixtures for testing against the Kubernetes API emulator.

Enable them in a ``conftest.py``::

    pytest_plugins = ["kubesteps.testing.pytest_plugin"]
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import kopf
import pytest
import pytest_asyncio

from kubesteps.testing.emulator import Emulator
from kubesteps.testing.kubeconfig import write_kubeconfig
from kubesteps.testing.operator_runner import OperatorRun, run_operator

OperatorRunner = Callable[..., AbstractAsyncContextManager[OperatorRun]]


@pytest_asyncio.fixture
async def k8s_emulator() -> AsyncIterator[Emulator]:
    """A fresh emulator serving on 127.0.0.1 on a free port (``k8s_emulator.url``)."""
    emulator = Emulator()
    async with emulator.serving():
        yield emulator


@pytest.fixture
def kubeconfig(k8s_emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A kubeconfig file for the emulator; ``KUBECONFIG`` points at it during the test."""
    assert k8s_emulator.url is not None
    path = write_kubeconfig(tmp_path / "kubeconfig", k8s_emulator.url)
    monkeypatch.setenv("KUBECONFIG", str(path))
    return path


@pytest.fixture
def operator_runner(k8s_emulator: Emulator) -> OperatorRunner:
    """``async with operator_runner(registry, wait_for=["pipelines"]):`` runs kopf meanwhile."""

    def runner(
        registry: kopf.OperatorRegistry, **kwargs: Any
    ) -> AbstractAsyncContextManager[OperatorRun]:
        return run_operator(registry, k8s_emulator, **kwargs)

    return runner
