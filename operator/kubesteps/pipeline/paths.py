"""kubectl-style JSONPath expressions (``{.status.phase}``), as ``waitFor`` reads them."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import jsonpath

Query = jsonpath.JSONPath | jsonpath.CompoundJSONPath
EXAMPLE = '{.status.phase} or .status.conditions[?(@.type=="Ready")].status'


@lru_cache(maxsize=1024)
def compile_path(path: str) -> Query:
    """Compile a kubectl-style path: ``{.status.phase}``, ``.status.phase`` or ``$.status.phase``.

    kubectl's braces and leading dot are accepted; inside, the syntax is RFC 9535 JSONPath
    (with the ``?(@.type=="Ready")`` filter form kubectl users write). A path that does not
    compile raises ValueError saying why and how one looks.
    """
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if text.startswith((".", "[")):
        text = "$" + text
    elif not text.startswith("$"):
        text = "$." + text
    try:
        return jsonpath.compile(text)
    except jsonpath.JSONPathError as err:
        problem = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(
            f"{path!r} is not a valid JSONPath ({problem}); write it like {EXAMPLE}"
        ) from None


def as_text(value: Any) -> str:
    """A value as kubectl prints it: strings bare, everything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))
