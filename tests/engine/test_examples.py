"""Every example runs: the engine demo and each file in examples/library/ exit with 0."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from subprocess import PIPE

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
LIBRARY = sorted((EXAMPLES / "library").glob("*.py"))


def test_the_library_examples_are_found() -> None:
    assert len(LIBRARY) >= 5


@pytest.mark.parametrize("script", [*LIBRARY, EXAMPLES / "engine_demo.py"], ids=lambda p: p.name)
async def test_example_runs_and_exits_with_0(script: Path, tmp_path: Path) -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable, str(script), stdout=PIPE, stderr=PIPE, cwd=tmp_path
    )
    out, err = await asyncio.wait_for(child.communicate(), timeout=60)
    assert child.returncode == 0, f"{script.name} failed:\n{out.decode()}\n{err.decode()}"
    assert out.strip(), f"{script.name} printed nothing"
