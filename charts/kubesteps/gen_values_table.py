"""Generate the chart's configuration table in docs/install.md and README.md from values.yaml.

The comment block directly above a key in values.yaml is that key's description. A commented
key is one row (its whole value is the default, even when it is a mapping); an uncommented
mapping is a section whose keys are listed one by one; an uncommented value is an error, so
every setting ends up documented.

    .venv/bin/python charts/kubesteps/gen_values_table.py          # rewrite both documents
    .venv/bin/python charts/kubesteps/gen_values_table.py --check  # exit 1 if it is stale
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CHART_DIR = Path(__file__).resolve().parent
VALUES_FILE = CHART_DIR / "values.yaml"
DOC_FILE = CHART_DIR.parent.parent / "docs" / "install.md"
README_FILE = CHART_DIR.parent.parent / "README.md"
DOC_FILES = (DOC_FILE, README_FILE)
START_MARKER = "<!-- values-table:start -->"
END_MARKER = "<!-- values-table:end -->"
REGENERATE = ".venv/bin/python charts/kubesteps/gen_values_table.py"

_KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][A-Za-z0-9_]*):(?:\s|$)")
_COMMENT_LINE = re.compile(r"^ *#(?P<text>.*)$")


class ValuesDocError(Exception):
    """values.yaml cannot be turned into a table (e.g. a setting has no description)."""


@dataclass(frozen=True)
class Row:
    key: str
    default: Any
    description: str


def _lookup(values: Any, path: tuple[str, ...]) -> tuple[bool, Any]:
    node = values
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def collect_rows(text: str) -> list[Row]:
    """Rows for values.yaml's text, in file order."""
    values = yaml.safe_load(text) or {}
    rows: list[Row] = []
    # The keys enclosing the current line: (indent, key, whether that key is already a row).
    stack: list[tuple[int, str, bool]] = []
    comment: list[str] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if match := _COMMENT_LINE.match(line):
            comment.append(match["text"].strip())
            continue
        key_match = _KEY_LINE.match(line)
        if key_match is None:
            # A blank line detaches a comment from the key below it; list items and
            # continuation lines belong to a key already handled.
            comment = []
            continue
        indent, key = len(key_match["indent"]), key_match["key"]
        while stack and stack[-1][0] >= indent:
            stack.pop()
        description, comment = " ".join(comment).strip(), []
        inside_row = any(is_row for _, _, is_row in stack)
        path = (*(k for _, k, _ in stack), key)
        stack.append((indent, key, bool(description)))
        found, value = _lookup(values, path)
        if inside_row or not found:
            # A key inside a documented value (e.g. resources.requests) or inside a list.
            continue
        dotted = ".".join(path)
        if description:
            rows.append(Row(dotted, value, description))
        elif not (isinstance(value, dict) and value):
            raise ValuesDocError(
                f"values.yaml line {lineno}: `{dotted}` has no description; "
                "write a comment directly above it"
            )
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_table(rows: list[Row]) -> str:
    lines = ["| Key | Default | Description |", "|---|---|---|"]
    for row in rows:
        default = json.dumps(row.default, separators=(", ", ": "))
        lines.append(f"| `{row.key}` | `{_cell(default)}` | {_cell(row.description)} |")
    return "\n".join(lines)


def splice(document: str, table: str, name: str = DOC_FILE.name) -> str:
    """The document with the text between the markers replaced by the table."""
    start, end = document.find(START_MARKER), document.find(END_MARKER)
    if start < 0 or end < start:
        raise ValuesDocError(
            f"{name} needs the markers {START_MARKER} and {END_MARKER}, in that order"
        )
    return f"{document[: start + len(START_MARKER)]}\n{table}\n{document[end:]}"


def expected_document(path: Path = DOC_FILE) -> str:
    table = render_table(collect_rows(VALUES_FILE.read_text()))
    return splice(path.read_text(), table, path.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether it is stale")
    args = parser.parse_args(argv)
    try:
        expected = {path: expected_document(path) for path in DOC_FILES}
    except ValuesDocError as exc:
        print(exc, file=sys.stderr)
        return 2
    stale = [path for path, text in expected.items() if text != path.read_text()]
    if args.check:
        for path in stale:
            print(f"{path} is stale; regenerate it with `{REGENERATE}`", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.write_text(expected[path])
    return 0


if __name__ == "__main__":
    sys.exit(main())
