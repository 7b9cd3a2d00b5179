"""docs/testing.md shows code that CI runs."""

from __future__ import annotations

import re
from pathlib import Path

HERE = Path(__file__).resolve().parent


def test_the_pytest_quick_start_in_the_docs_is_the_one_ci_runs() -> None:
    docs = (HERE.parents[1] / "docs" / "testing.md").read_text()
    blocks = [b.strip() for b in re.findall(r"```python\n(.*?)```", docs, flags=re.S)]
    assert (HERE / "test_docs_quickstart.py").read_text().strip() in blocks
