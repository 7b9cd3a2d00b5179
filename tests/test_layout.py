"""The package's layout: every module name is used once, so a name in a traceback, a log
line or a review says which file it is."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "operator" / "kubesteps"


def test_no_two_modules_share_a_name() -> None:
    where: dict[str, list[str]] = defaultdict(list)
    for module in PACKAGE.rglob("*.py"):
        if module.name not in ("__init__.py", "__main__.py"):
            where[module.name].append(str(module.parent.relative_to(PACKAGE)))
    assert {name: places for name, places in where.items() if len(places) > 1} == {}
