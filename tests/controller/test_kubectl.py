"""What users run: the real kubectl against the emulator while the operator reconciles."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Any

import kopf
import yaml

from kubesteps.controller.operator import Connection, build_registry, settings_hook
from kubesteps.kube.client import KubeClient

from .conftest import API, ROOT

KUBECTL = shutil.which("kubectl")


def quick(settings: kopf.OperatorSettings) -> None:
    settings_hook(settings, {"server_timeout": 30, "client_timeout": 40})


async def kubectl(kubeconfig: Path, *args: str, check: bool = True) -> str:
    assert KUBECTL is not None, "these tests need kubectl on PATH (every CI machine has it)"
    process = await asyncio.create_subprocess_exec(
        KUBECTL, *args, env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    text = output.decode()
    if check:
        assert process.returncode == 0, f"kubectl {' '.join(args)} failed:\n{text}"
    return text


async def test_apply_wait_and_get_show_the_pipeline_ready(
    api: KubeClient, kubeconfig: Path, operator_runner: Any
) -> None:
    async with operator_runner(build_registry(Connection()), wait_for=["pipelines"],
                               settings_hook=quick):
        out = await kubectl(kubeconfig, "apply", "--validate=false",
                            "-f", str(ROOT / "examples" / "hello.yaml"))
        assert "pipeline.kubesteps.dev/hello created" in out
        await kubectl(kubeconfig, "wait", "--for=condition=Ready", "pipeline/hello",
                      "--timeout=30s")
        table = await kubectl(kubeconfig, "get", "pipelines")

    header, row = table.strip().splitlines()
    assert header.split() == ["NAME", "READY", "REASON", "RUN", "STEP", "AGE"]
    assert row.split()[:4] == ["hello", "True", "Succeeded", "1"]
    conditions = yaml.safe_load(await kubectl(
        kubeconfig, "get", "pipeline", "hello", "-o", "jsonpath={.status.conditions}"))
    assert {c["type"]: c["status"] for c in conditions} == {
        "Ready": "True", "Reconciling": "False", "Stalled": "False", "Greeted": "True",
    }


async def test_a_second_wait_after_a_spec_change_ignores_the_stale_condition(
    api: KubeClient, kubeconfig: Path, operator_runner: Any, tmp_path: Path
) -> None:
    manifest = yaml.safe_load((ROOT / "examples" / "hello.yaml").read_text())
    path = tmp_path / "hello.yaml"
    path.write_text(yaml.safe_dump(manifest))
    registry = build_registry(Connection())
    async with operator_runner(registry, wait_for=["pipelines"], settings_hook=quick):
        await kubectl(kubeconfig, "apply", "--validate=false", "-f", str(path))
        await kubectl(kubeconfig, "wait", "--for=condition=Ready", "pipeline/hello",
                      "--timeout=30s")

    # The operator is down while the spec changes: Ready stays True, for generation 1.
    manifest["spec"]["steps"][0]["with"]["duration"] = "1s"
    path.write_text(yaml.safe_dump(manifest))
    out = await kubectl(kubeconfig, "apply", "--validate=false", "-f", str(path))
    assert "configured" in out
    waiter = asyncio.create_task(kubectl(
        kubeconfig, "wait", "--for=condition=Ready", "pipeline/hello", "--timeout=60s"))
    await asyncio.sleep(2)
    assert not waiter.done(), "kubectl wait returned on the condition of the old generation"

    async with operator_runner(registry, wait_for=["pipelines"], settings_hook=quick):
        await asyncio.wait_for(waiter, timeout=60)
    body = await api.get(API, "Pipeline", "hello", "default")
    assert body is not None
    assert body["metadata"]["generation"] == 2
    assert body["status"]["observedGeneration"] == 2
