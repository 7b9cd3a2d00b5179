"""Fixtures for controller tests: the emulator serving the real Pipeline and PipelineTemplate
CRDs, and a client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml

from kubesteps.controller.reconciler import Reconciler
from kubesteps.kube.client import Credentials, KubeClient
from kubesteps.testing import Emulator

ROOT = Path(__file__).resolve().parents[2]
CRD = yaml.safe_load((ROOT / "crds" / "pipelines.kubesteps.dev.yaml").read_text())
TEMPLATE_CRD = yaml.safe_load((ROOT / "crds" / "pipelinetemplates.kubesteps.dev.yaml").read_text())
API = "kubesteps.dev/v1alpha1"


def pipeline(name: str, steps: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Pipeline",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"steps": steps, **spec},
    }


def python_step(
    name: str, function: str = "kubesteps.examples.greet", **extra: Any
) -> dict[str, Any]:
    return {"name": name, "action": "python", "with": {"function": function, "args": {}}, **extra}


@pytest_asyncio.fixture
async def api(k8s_emulator: Emulator) -> AsyncIterator[KubeClient]:
    """A client of an emulator that serves Pipelines (validated against the real CRD)."""
    k8s_emulator.register_crd(CRD)
    k8s_emulator.register_crd(TEMPLATE_CRD)
    assert k8s_emulator.url is not None
    async with KubeClient(Credentials(server=k8s_emulator.url, insecure=True)) as client:
        yield client


@pytest.fixture
def reconciler(api: KubeClient) -> Reconciler:
    return Reconciler(lambda: api)


@pytest.fixture
def fetch(api: KubeClient) -> Callable[[str], Any]:
    async def get(name: str) -> dict[str, Any]:
        body = await api.get(API, "Pipeline", name, "default")
        assert body is not None, f"pipeline {name} is gone"
        return body

    return get
