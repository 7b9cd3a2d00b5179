"""The coverage floor (pyproject.toml, [tool.coverage.report] fail_under) that `make test`
enforces only ever goes up: no commit may lower it below what an earlier one set."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def floor(pyproject: str) -> float:
    report = tomllib.loads(pyproject).get("tool", {}).get("coverage", {}).get("report", {})
    return float(report.get("fail_under", 0))


@pytest.mark.slow  # git is a process
def test_the_coverage_floor_never_goes_down() -> None:
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: there is no history to compare the floor with")
    commits = subprocess.run(
        [git, "log", "--first-parent", "--format=%H", "-n", "200", "--", "pyproject.toml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    earlier = {}
    for commit in commits:
        shown = subprocess.run(
            [git, "show", f"{commit}:pyproject.toml"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if shown.returncode == 0:
            earlier[commit[:10]] = floor(shown.stdout)
    now = floor((ROOT / "pyproject.toml").read_text())
    higher = {commit: value for commit, value in earlier.items() if value > now}
    assert higher == {}, (
        f"fail_under is {now} but earlier commits set it higher: {higher}; raise coverage "
        "instead of lowering the floor"
    )
