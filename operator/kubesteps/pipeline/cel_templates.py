"""``${ }`` templates in ``with`` values: strings that interpolate CEL expressions.

A string that is exactly ``${ expr }`` becomes the expression's value, with its type;
``${ expr }`` inside a longer string is interpolated as text; ``$${`` is a literal ``${``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from kubesteps.pipeline.cel_compile import CelError
from kubesteps.pipeline.cel_evaluate import evaluate
from kubesteps.pipeline.issues import Loc, format_path


class TemplateError(CelError):
    """A ``${`` without its closing ``}``."""


@dataclass(frozen=True)
class _Piece:
    text: str
    is_expression: bool


def parse_template(text: str, *, path: str = "") -> list[_Piece]:
    """Split a string into literal text and ``${ }`` expressions (braces and quotes aware)."""
    pieces: list[_Piece] = []
    literal: list[str] = []
    position = 0
    while position < len(text):
        if text.startswith("$${", position):
            literal.append("${")
            position += 3
        elif text.startswith("${", position):
            end = _closing_brace(text, position + 2)
            if end < 0:
                raise TemplateError(
                    f"'${{' at position {position} has no closing '}}'",
                    expression=text,
                    path=path,
                )
            if literal:
                pieces.append(_Piece("".join(literal), is_expression=False))
                literal = []
            pieces.append(_Piece(text[position + 2 : end].strip(), is_expression=True))
            position = end + 1
        else:
            literal.append(text[position])
            position += 1
    if literal:
        pieces.append(_Piece("".join(literal), is_expression=False))
    return pieces


def _closing_brace(text: str, start: int) -> int:
    depth = 0
    quote = ""
    position = start
    while position < len(text):
        char = text[position]
        if quote:
            if char == "\\":
                position += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            if depth == 0:
                return position
            depth -= 1
        position += 1
    return -1


def has_template(value: Any) -> bool:
    """Whether a string uses ``${ }`` (a literal ``$${`` does not count)."""
    return isinstance(value, str) and "${" in value.replace("$${", "")


def template_expressions(value: Any, loc: Loc = ()) -> Iterator[tuple[Loc, str]]:
    """Every ``${ }`` expression inside ``value`` (recursively), with where it was found.

    Raises TemplateError for an unterminated ``${``.
    """
    if isinstance(value, str):
        if has_template(value):
            for piece in parse_template(value, path=format_path(loc)):
                if piece.is_expression:
                    yield loc, piece.text
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from template_expressions(item, (*loc, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from template_expressions(item, (*loc, index))


def render(value: Any, variables: Mapping[str, Any], *, path: str = "") -> Any:
    """Replace every ``${ }`` in ``value`` (recursively) using ``variables``."""
    if isinstance(value, str):
        if not has_template(value) and "$${" not in value:
            return value
        pieces = parse_template(value, path=path)
        if len(pieces) == 1 and pieces[0].is_expression:
            return evaluate(pieces[0].text, variables, path=path)
        return "".join(
            _as_text(evaluate(piece.text, variables, path=path))
            if piece.is_expression
            else piece.text
            for piece in pieces
        )
    if isinstance(value, Mapping):
        return {
            key: render(item, variables, path=f"{path}.{key}" if path else str(key))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [
            render(item, variables, path=f"{path}[{index}]") for index, item in enumerate(value)
        ]
    return value


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    # JSON spelling keeps true/false/null and nested values readable and unambiguous.
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)
