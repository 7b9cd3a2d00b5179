"""Real clients against the emulator: kubectl, kubernetes-asyncio, and the standalone CLI."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from kubernetes_asyncio import client, config

from kubesteps.testing import Emulator

from .widgets import WIDGET_CRD, WIDGETS, widget

pytestmark = pytest.mark.slow  # each test starts processes

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


@pytest.fixture
def kubectl(kubeconfig: Path, tmp_path: Path) -> Any:
    """Run kubectl against the emulator, with its caches and home in the test's tmp dir."""
    env = {**os.environ, "HOME": str(tmp_path), "KUBECONFIG": str(kubeconfig)}

    async def run(*args: str, check: bool = True) -> str:
        process = await asyncio.create_subprocess_exec(
            KUBECTL,
            f"--cache-dir={tmp_path / 'cache'}",
            *args,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
        if check:
            assert process.returncode == 0, f"kubectl {' '.join(args)}: {err.decode()}"
        return out.decode() + err.decode()

    return run


@pytest.fixture
def manifest(tmp_path: Path, emulator: Emulator) -> Path:
    path = tmp_path / "widget.yaml"
    path.write_text(yaml.safe_dump(widget("demo", size=2)))
    return path


async def test_kubectl_applies_creates_then_configures(kubectl: Any, manifest: Path) -> None:
    assert "widget.example.dev/demo created" in await kubectl(
        "apply", "--validate=false", "-f", str(manifest)
    )
    edited = yaml.safe_dump(widget("demo", size=2, mode="slow"))
    await asyncio.to_thread(manifest.write_text, edited)
    assert "widget.example.dev/demo configured" in await kubectl(
        "apply", "--validate=false", "-f", str(manifest)
    )
    obj = json.loads(await kubectl("get", "widget", "demo", "-o", "json"))
    assert obj["spec"] == {"size": 2, "mode": "slow"}
    assert obj["metadata"]["generation"] == 2


async def test_kubectl_lists_by_short_name(kubectl: Any, manifest: Path) -> None:
    await kubectl("apply", "--validate=false", "-f", str(manifest))
    listing = json.loads(await kubectl("get", "wd", "-o", "json"))
    assert [item["metadata"]["name"] for item in listing["items"]] == ["demo"]


async def test_kubectl_waits_for_a_condition_set_through_the_status(
    kubectl: Any,
    manifest: Path,
) -> None:
    await kubectl("apply", "--validate=false", "-f", str(manifest))
    waiting = asyncio.create_task(
        kubectl("wait", "--for=condition=Ready", "widget/demo", "--timeout=30s")
    )
    status = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    await kubectl(
        "patch", "widget", "demo", "--subresource=status", "--type=merge", "-p", json.dumps(status)
    )
    assert "condition met" in await waiting


async def test_kubectl_deletes(kubectl: Any, manifest: Path, emulator: Emulator) -> None:
    await kubectl("apply", "--validate=false", "-f", str(manifest))
    assert 'widget.example.dev "demo" deleted' in await kubectl("delete", "-f", str(manifest))
    assert emulator.object("widgets", "demo", "default") is None


async def test_kubectl_reports_schema_violations(kubectl: Any, manifest: Path) -> None:
    await asyncio.to_thread(manifest.write_text, yaml.safe_dump(widget("demo", size=9)))
    output = await kubectl("apply", "--validate=false", "-f", str(manifest), check=False)
    assert "spec.size in body should be less than or equal to 5" in output


async def test_kubectl_registers_a_crd_from_a_manifest(
    kubectl: Any, tmp_path: Path, k8s_emulator: Emulator
) -> None:
    path = tmp_path / "crd.yaml"
    path.write_text(yaml.safe_dump(WIDGET_CRD))
    await kubectl("apply", "--validate=false", "-f", str(path))
    assert "widgets" in await kubectl("api-resources", "--api-group=example.dev")


async def test_kubernetes_asyncio_client_works(emulator: Emulator, kubeconfig: Path) -> None:
    await config.load_kube_config(config_file=str(kubeconfig))
    async with client.ApiClient() as api:
        custom = client.CustomObjectsApi(api)
        await custom.create_namespaced_custom_object(
            "example.dev", "v1", "default", "widgets", widget("w")
        )
        # The client labels a dict body as a JSON patch unless told otherwise; a real server
        # refuses that too, so say what it is.
        await custom.patch_namespaced_custom_object_status(
            "example.dev",
            "v1",
            "default",
            "widgets",
            "w",
            {"status": {"phase": "Done"}},
            _content_type="application/merge-patch+json",
        )
        listing = await custom.list_namespaced_custom_object(
            "example.dev", "v1", "default", "widgets"
        )
        namespaces = await client.CoreV1Api(api).list_namespace()
    assert listing["items"][0]["status"] == {"phase": "Done"}
    assert "default" in [ns.metadata.name for ns in namespaces.items]


async def test_the_standalone_emulator_serves_until_stopped(tmp_path: Path) -> None:
    crd = tmp_path / "crd.yaml"
    crd.write_text(yaml.safe_dump(WIDGET_CRD))
    kubeconfig = tmp_path / "kubeconfig"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kubesteps.testing",
        "--port",
        "0",
        "--crd",
        str(crd),
        "--kubeconfig",
        str(kubeconfig),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), timeout=30)).decode()
        url = line.strip().rpartition(" ")[2]
        async with aiohttp.ClientSession(base_url=url) as http:
            response = await http.post(WIDGETS, json=widget("w"))
        assert response.status == 201
        assert yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"] == url
    finally:
        process.terminate()
        await process.wait()
