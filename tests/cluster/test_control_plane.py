"""The control plane's own promises: a clean stop, and a failed start that says why and
leaves nothing running."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kubesteps.testing.control_plane import ControlPlane, ControlPlaneError


def processes_in(workdir: Path) -> list[str]:
    """Command lines of live processes that mention ``workdir`` (ours all do)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().split()[2]
        except OSError:
            continue
        if str(workdir) in line and state != "Z":
            found.append(line)
    return found


def test_a_stop_leaves_no_process_behind(control_plane: ControlPlane, tmp_path: Path) -> None:
    plane = ControlPlane.start(control_plane.assets, tmp_path / "cp", controller_manager=False)
    assert plane.running() == ["etcd", "kube-apiserver"]
    assert processes_in(tmp_path), "the processes run with their files in the workdir"
    assert plane.request("GET", "/version")["gitVersion"] == "v1.37.2"

    plane.stop()

    assert plane.running() == []
    assert processes_in(tmp_path) == []
    assert set(plane.logs()) == {"etcd", "kube-apiserver"}
    assert all(log.stat().st_size > 0 for log in plane.logs().values())


def test_a_server_that_cannot_start_says_why_and_leaves_nothing(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    with pytest.raises(ControlPlaneError) as failed:
        ControlPlane.start(
            control_plane.assets,
            tmp_path / "cp",
            controller_manager=False,
            apiserver_args=["--no-such-flag"],
        )

    assert "kube-apiserver exited with 1 before it was ready" in str(failed.value)
    assert "unknown flag: --no-such-flag" in str(failed.value)
    assert processes_in(tmp_path) == []
    assert os.path.getsize(tmp_path / "cp" / "logs" / "etcd.log") > 0  # kept for reading
