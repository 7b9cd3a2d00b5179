"""`kubesteps ui` as a command: what it prints, which namespace it shows, one-line errors."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from click.testing import CliRunner

from kubesteps.cli import main
from kubesteps.kube.client import KubeClient
from kubesteps.testing import Emulator
from kubesteps.testing.kubeconfig import write_kubeconfig

from .conftest import delay, pipeline

pytestmark = pytest.mark.slow  # starts `kubesteps ui`
KUBESTEPS = str(Path(sys.executable).parent / "kubesteps")


@contextlib.asynccontextmanager
async def started(*args: str) -> AsyncIterator[tuple[str, str]]:
    """`kubesteps ui ARGS` running; its URL and the line after it."""
    process = await asyncio.create_subprocess_exec(
        KUBESTEPS, "ui", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(30):
            first = (await process.stdout.readline()).decode()
            second = (await process.stdout.readline()).decode()
        found = re.fullmatch(r"kubesteps ui: (http://127\.0\.0\.1:[0-9]+/\?token=[\w-]+)\n", first)
        assert found is not None, first
        yield found.group(1), second
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        await process.wait()


async def test_it_shows_the_namespace_of_the_kubeconfig_context(
    k8s_emulator: Emulator, api: KubeClient, tmp_path: Path
) -> None:
    assert k8s_emulator.url is not None
    await api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ops"}})
    await api.create(pipeline("here", [delay("a", 1)], namespace="ops"))
    await api.create(pipeline("elsewhere", [delay("a", 1)]))
    config = write_kubeconfig(tmp_path / "config", k8s_emulator.url, namespace="ops")
    async with (
        started("--kubeconfig", str(config)) as (url, second),
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
    ):
        assert second == (
            f"(Pipelines of namespace ops on {k8s_emulator.url}, context emulator;"
            " Ctrl-C stops it)\n"
        )
        async with http.get(url) as page:  # the token becomes a cookie (of an IP: unsafe)
            assert page.status == 200
        async with http.get(url.split("/?")[0] + "/api/pipelines") as response:
            body = await response.json()
    assert [row["name"] for row in body["items"]] == ["here"]
    async with started("--kubeconfig", str(config), "-n", "default") as (url, second):
        assert "namespace default" in second
    async with started("--kubeconfig", str(config), "-A") as (url, second):
        assert "all namespaces" in second


def test_errors_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config either
    result = runner.invoke(main, ["ui"])
    assert result.exit_code == 1
    assert result.output == (
        "Error: no kubeconfig found (looked at --kubeconfig, $KUBECONFIG and"
        " ~/.kube/config): point --kubeconfig at one\n"
    )
    config = write_kubeconfig(tmp_path / "config", "http://127.0.0.1:9")
    result = runner.invoke(main, ["ui", "--kubeconfig", str(config), "--context", "prod"])
    assert result.exit_code == 1
    assert result.output == (
        "Error: context 'prod' is not in the kubeconfig (contexts: emulator)\n"
    )
    result = runner.invoke(main, ["ui", "-A", "-n", "ops"])
    assert result.exit_code == 2
    assert "--all-namespaces and --namespace exclude each other" in result.output


def test_a_busy_port_is_said_in_one_line(tmp_path: Path) -> None:
    config = write_kubeconfig(tmp_path / "config", "http://127.0.0.1:9")  # never reached
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(main, ["ui", "--kubeconfig", str(config), "--port", str(port)])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: port {port} on 127.0.0.1 is in use: pick another with"
        " --port, or --port 0 for a free one\n"
    )
