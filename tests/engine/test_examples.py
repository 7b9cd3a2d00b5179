"""Every example runs: the engine demo and each file in examples/library/ exit with 0."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path
from subprocess import PIPE

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
LIBRARY = sorted((EXAMPLES / "library").glob("*.py"))


def test_the_library_examples_are_found() -> None:
    assert len(LIBRARY) >= 5


@pytest.mark.parametrize("script", [*LIBRARY, EXAMPLES / "engine_demo.py"], ids=lambda p: p.name)
@pytest.mark.slow
async def test_example_runs_and_exits_with_0(script: Path, tmp_path: Path) -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable, str(script), stdout=PIPE, stderr=PIPE, cwd=tmp_path
    )
    out, err = await asyncio.wait_for(child.communicate(), timeout=60)
    assert child.returncode == 0, f"{script.name} failed:\n{out.decode()}\n{err.decode()}"
    assert out.strip(), f"{script.name} printed nothing"
    # A program that configured no logging gets none of the library's log records (the
    # crash in errors_and_retries.py once printed the engine's traceback).
    assert "Traceback" not in err.decode(), err.decode()


def test_every_code_block_in_the_engine_docs_is_an_excerpt_of_a_library_example() -> None:
    # The examples run in CI, so the docs' code cannot drift from what works.
    docs = (EXAMPLES.parent / "docs" / "engine.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", docs, flags=re.S)
    sources = [path.read_text(encoding="utf-8") for path in LIBRARY]
    assert blocks
    orphans = [block for block in blocks if not any(block in source for source in sources)]
    assert orphans == []
