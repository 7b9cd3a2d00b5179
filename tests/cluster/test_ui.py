"""`kubesteps ui` as a user with real RBAC on a real API server: bob may read Pipelines in
one namespace and nothing else; the UI shows what he may see and says, in words, what the
server refused him (a verb, another namespace, Events)."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from kubesteps.testing.control_plane import ControlPlane

from .conftest import KUBESTEPS, bob_may_read_pipelines, get_pipeline


def call(base: str, token: str, method: str, path: str) -> tuple[int, Any]:
    request = urllib.request.Request(
        base + path,
        method=method,
        data=b"{}" if method == "POST" else None,
        headers={"X-Kubesteps-Token": token, "Origin": base, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def bob_ui(control_plane: ControlPlane, namespace: str) -> Iterator[tuple[str, str]]:
    """bob may get, list and watch Pipelines in ``namespace``, no more; his `kubesteps ui`."""
    bob_may_read_pipelines(control_plane, namespace)
    process = subprocess.Popen(
        [
            str(KUBESTEPS),
            "ui",
            "--kubeconfig",
            str(control_plane.users["bob"].kubeconfig),
            "-n",
            namespace,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    try:
        line = process.stdout.readline()
        found = re.search(r"(http://127\.0\.0\.1:[0-9]+)/\?token=([\w-]+)", line)
        assert found is not None, (line, process.stderr)
        yield found.group(1), found.group(2)
    finally:
        process.terminate()
        process.wait(10)


def test_the_ui_shows_bob_what_he_may_read_and_says_what_he_may_not_do(
    control_plane: ControlPlane, namespace: str, bob_ui: tuple[str, str]
) -> None:
    base, token = bob_ui
    status, body = call(base, token, "GET", "/api/pipelines")
    assert status == 200, body
    assert [row["name"] for row in body["items"]] == ["hello"]
    status, body = call(base, token, "GET", f"/api/pipelines/{namespace}/hello")
    assert (status, body["name"]) == (200, "hello")

    status, body = call(base, token, "POST", f"/api/pipelines/{namespace}/hello/suspend")
    assert status == 403
    assert body["error"].startswith(
        f"you may not patch pipelines in namespace {namespace} (the server said: "
    ), body
    assert 'User "bob" cannot patch resource "pipelines"' in body["error"]
    assert not get_pipeline(control_plane, namespace, "hello")["spec"].get("suspend")

    status, body = call(base, token, "GET", "/api/pipelines?namespace=default")
    assert status == 403
    assert body["error"].startswith("you may not list pipelines in namespace default"), body
    status, body = call(base, token, "GET", f"/api/pipelines/{namespace}/hello/events")
    assert status == 403
    assert body["error"].startswith(f"you may not list events in namespace {namespace}"), body
