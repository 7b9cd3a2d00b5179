"""YAML loading for every manifest kubesteps reads: libyaml's C loader when PyYAML was
built with it, else PyYAML's pure-Python loader (same results, ~10x slower).

Both are "safe" loaders (plain data: no Python objects). Both report a syntax error as a
``yaml.MarkedYAMLError`` naming the line and column; the C loader has no copy of the text
to quote, so the error shows the file, line and column without the snippet.
"""

from __future__ import annotations

from typing import IO, Any

import yaml

try:
    from yaml import CSafeLoader as _Loader

    C_LOADER = True
except ImportError:  # PyYAML built without libyaml
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

    C_LOADER = False

YAMLError = yaml.YAMLError


def load(text: str | bytes | IO[str] | IO[bytes]) -> Any:
    """The one document of ``text`` (``None`` for an empty one)."""
    return yaml.load(text, Loader=_Loader)


def load_all(text: str | bytes | IO[str] | IO[bytes]) -> list[Any]:
    """Every document of ``text``, in order."""
    return list(yaml.load_all(text, Loader=_Loader))
