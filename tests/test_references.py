"""Every document a test or the code points to (``docs/testing.md``, ``README.md`` ...) is in
the repository: nothing refers to notes that only existed where the code was written."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCUMENT = re.compile(r"(?<![\w/.-])((?:[\w-]+/)*[\w-]+\.md)\b")


def test_every_document_named_in_the_tests_and_the_code_exists() -> None:
    missing = []
    for source in sorted([*(ROOT / "tests").rglob("*.py"), *(ROOT / "operator").rglob("*.py")]):
        for line_number, line in enumerate(source.read_text().splitlines(), 1):
            for name in DOCUMENT.findall(line):
                if "://" in line or any((base / name).exists() for base in (ROOT, ROOT / "docs")):
                    continue
                missing.append(f"{source.relative_to(ROOT)}:{line_number}: {name}")
    assert missing == []
