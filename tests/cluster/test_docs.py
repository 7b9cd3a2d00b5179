"""docs/testing.md's example of the control plane outside pytest runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kubesteps.testing.control_plane import ControlPlane

from .conftest import REPO

WORKDIR = "/tmp/kubesteps-control-plane"


def test_the_control_plane_example_in_the_docs_runs(
    control_plane: ControlPlane,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    docs = (REPO / "docs" / "testing.md").read_text()
    (block,) = [
        b
        for b in re.findall(r"```python\n(.*?)```", docs, flags=re.S)
        if "ControlPlane.start(Assets.find()" in b
    ]
    assert WORKDIR in block
    # Its own control plane, from the binaries the session's one uses.
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(control_plane.assets.kube_apiserver.parent))
    monkeypatch.chdir(REPO)

    exec(compile(block.replace(WORKDIR, str(tmp_path / "cp")), "docs/testing.md", "exec"), {})

    assert "Username    alice" in capsys.readouterr().out
