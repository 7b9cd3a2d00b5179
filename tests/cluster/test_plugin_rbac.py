"""`kubectl kubesteps` as a user with real RBAC on a real API server: bob may read Pipelines
in one namespace and nothing else. What he may do works; what the server refuses him is
said in one line naming the verb, the resource and the namespace, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kubesteps.testing.control_plane import ControlPlane

from .conftest import bob_may_read_pipelines, get_pipeline

SCRIPTS = Path(sys.executable).parent  # kubectl-kubesteps, where pip put it


def bob(cp: ControlPlane, *args: str) -> subprocess.CompletedProcess[str]:
    """The real kubectl as bob, finding the plugin on PATH."""
    env = {**cp.env("bob"), "PATH": os.pathsep.join([str(SCRIPTS), os.environ["PATH"]])}
    env.pop("KUBESTEPS_DEBUG", None)
    return subprocess.run(
        [str(cp.assets.kubectl), "kubesteps", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def readable(control_plane: ControlPlane, namespace: str) -> str:
    """``namespace`` with a Pipeline bob may get, list and watch, and do nothing else to."""
    bob_may_read_pipelines(control_plane, namespace)
    return namespace


def test_bob_reads_what_he_may_and_is_told_in_one_line_what_he_may_not(
    control_plane: ControlPlane, readable: str
) -> None:
    ns = readable
    listed = bob(control_plane, "get", "-n", ns)
    assert listed.returncode == 0, listed.stderr
    assert "hello" in listed.stdout

    suspend = bob(control_plane, "suspend", "hello", "-n", ns)
    assert suspend.returncode != 0
    lines = suspend.stderr.splitlines()
    assert len(lines) == 1, suspend.stderr
    assert lines[0].startswith(
        f"kubesteps: error: you may not patch pipelines in namespace {ns} (the server said:"
    ), suspend.stderr
    assert 'User "bob" cannot patch resource "pipelines"' in lines[0]
    assert not get_pipeline(control_plane, ns, "hello")["spec"].get("suspend")

    elsewhere = bob(control_plane, "get", "-n", "default")
    assert elsewhere.returncode != 0
    assert elsewhere.stderr.startswith(
        "kubesteps: error: you may not list pipelines in namespace default"
    ), elsewhere.stderr
    assert "Traceback" not in suspend.stderr + elsewhere.stderr
