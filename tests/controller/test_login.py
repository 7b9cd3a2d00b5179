"""Logging in through the official `kubernetes` client: a kubeconfig whose user is an `exec`
credential plugin (as EKS, GKE and AKS write them), against an emulator that checks tokens.

The plugin is a small Python script printing an ExecCredential with the token it reads from
a file, so a test can rotate the token the way a cloud provider's expires. The operator as a
process logging in through it: tests/controller/test_process.py.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import kopf
import pytest
import yaml

from kubesteps.controller.login import login_via_kubernetes_client
from kubesteps.kube.client import ApiError, Credentials, KubeClient
from kubesteps.testing import Emulator

pytestmark = pytest.mark.slow  # the plugin is a process

PLUGIN = """\
import json, pathlib, sys
token = pathlib.Path(sys.argv[1]).read_text().strip()
calls = pathlib.Path(sys.argv[1] + ".calls")
calls.write_text(str(int(calls.read_text() if calls.exists() else "0") + 1))
print(json.dumps({
    "apiVersion": "client.authentication.k8s.io/v1",
    "kind": "ExecCredential",
    "status": {"token": token},
}))
"""


def exec_kubeconfig(directory: Path, server: str, token: str) -> tuple[Path, Path]:
    """A kubeconfig whose user runs the plugin; the file the plugin reads its token from."""
    plugin = directory / "credential-plugin.py"
    plugin.write_text(PLUGIN)
    token_file = directory / "plugin-token"
    token_file.write_text(token)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "emulator", "cluster": {"server": server}}],
        "users": [
            {
                "name": "plugged",
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1",
                        "command": sys.executable,
                        "args": [str(plugin), str(token_file)],
                        "interactiveMode": "Never",
                    }
                },
            }
        ],
        "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "plugged"}}],
        "current-context": "emulator",
    }
    path = directory / "exec.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path, token_file


def plugin_runs(token_file: Path) -> int:
    calls = token_file.with_name(token_file.name + ".calls")
    return int(calls.read_text()) if calls.exists() else 0


async def login(monkeypatch: pytest.MonkeyPatch, kubeconfig: Path) -> kopf.ConnectionInfo:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    return await asyncio.to_thread(login_via_kubernetes_client)


async def test_the_plugins_token_is_what_the_server_sees(
    k8s_emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert k8s_emulator.url is not None
    k8s_emulator.tokens = {"plugin-token-1"}
    config, token_file = exec_kubeconfig(tmp_path, k8s_emulator.url, "plugin-token-1")

    info = await login(monkeypatch, config)

    assert (info.server, info.token) == (k8s_emulator.url, "plugin-token-1")
    assert plugin_runs(token_file) == 1
    async with KubeClient(Credentials.from_kopf(info)) as client:
        assert (await client.get("v1", "Namespace", "default"))["metadata"]["name"] == "default"


async def test_a_token_the_server_does_not_know_is_refused_with_401(
    k8s_emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert k8s_emulator.url is not None
    k8s_emulator.tokens = {"the-right-one"}
    config, _ = exec_kubeconfig(tmp_path, k8s_emulator.url, "a-wrong-one")

    info = await login(monkeypatch, config)

    async with KubeClient(Credentials.from_kopf(info)) as client:
        with pytest.raises(ApiError) as refused:
            await client.get("v1", "Namespace", "default")
    assert refused.value.status == 401


async def test_a_401_runs_the_plugin_again_and_the_request_goes_through_with_its_new_token(
    k8s_emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert k8s_emulator.url is not None
    k8s_emulator.tokens = {"token-before-rotation"}
    config, token_file = exec_kubeconfig(tmp_path, k8s_emulator.url, "token-before-rotation")
    monkeypatch.setenv("KUBECONFIG", str(config))

    def fresh() -> Credentials:
        return Credentials.from_kopf(login_via_kubernetes_client())

    async with KubeClient(await asyncio.to_thread(fresh), refresh=fresh) as client:
        await client.get("v1", "Namespace", "default")
        # The provider rotated it; the old one is refused.
        token_file.write_text("token-after-rotation")
        k8s_emulator.tokens = {"token-after-rotation"}
        assert (await client.get("v1", "Namespace", "default"))["metadata"]["name"] == "default"
    assert client.credentials.token == "token-after-rotation"
    assert plugin_runs(token_file) == 2


async def test_no_kubeconfig_and_no_service_account_is_one_line_naming_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(kopf.LoginError, match=r"no credentials: not in a cluster .* KUBECONFIG"):
        await login(monkeypatch, tmp_path / "missing.kubeconfig")
