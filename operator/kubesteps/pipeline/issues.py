"""Problems found in a spec, each with the exact place it was found.

Validators deep inside the model report problems with a location relative to themselves;
raising them as a pydantic ``ValidationError`` lets pydantic prefix the location of the
enclosing fields, so the final path is exact (``spec.steps[1].parallel.steps[0].name``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import UnionType
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError

from kubesteps.pipeline.suggest import did_you_mean

Loc = tuple[str | int, ...]
T = TypeVar("T")


@dataclass(frozen=True)
class Issue:
    """One problem: where it is (a pydantic-style location) and what is wrong."""

    loc: Loc
    message: str


def format_path(loc: Iterable[str | int]) -> str:
    """``('spec', 'steps', 1, 'name')`` -> ``spec.steps[1].name``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def raise_issues(title: str, issues: list[Issue], value: Any) -> None:
    """Raise ``issues`` (if any) as one ValidationError that pydantic will nest correctly."""
    if not issues:
        return
    raise ValidationError.from_exception_data(title, _details(issues, value))


def _details(issues: list[Issue], value: Any) -> list[InitErrorDetails]:
    # The message travels in the context: a template would choke on "${ }" in CEL snippets.
    return [
        InitErrorDetails(
            type=PydanticCustomError("spec", "{message}", {"message": issue.message}),
            loc=issue.loc,
            input=value,
        )
        for issue in issues
    ]


def with_issues(title: str, data: Any, handler: Callable[[Any], T], issues: list[Issue]) -> T:
    """Validate ``data`` with pydantic (``handler``) and report ``issues`` with its errors.

    For a wrap model validator: pydantic runs a model's own checks only once all of its
    fields are valid, so a problem elsewhere would hide them until that is fixed. Checks
    that read the raw data leniently run first, whatever the fields are like, and every
    problem is reported in one go.
    """
    try:
        value = handler(data)
    except ValidationError as error:
        raise ValidationError.from_exception_data(
            title, [*_again(error), *_details(issues, data)]
        ) from None
    raise_issues(title, issues, data)
    return value


def _again(error: ValidationError) -> list[InitErrorDetails]:
    """pydantic's errors, as details a new ValidationError can carry."""
    details: list[InitErrorDetails] = []
    for detail in error.errors(include_url=False):
        ctx = dict(detail.get("ctx") or {})
        if detail["type"] == "spec":
            kind: Any = PydanticCustomError("spec", "{message}", ctx)
        else:
            kind = detail["type"]
            try:  # a built-in error type, re-created from its context
                ValidationError.from_exception_data(
                    "probe", [InitErrorDetails(type=kind, loc=(), input=None, ctx=ctx)]
                )
            except (KeyError, TypeError, ValueError):
                kind = PydanticCustomError("spec", "{message}", {"message": detail["msg"]})
                ctx = {}
        details.append(
            InitErrorDetails(type=kind, loc=detail["loc"], input=detail["input"], ctx=ctx)
        )
    return details


def raw_fields(model: type[BaseModel], data: Any) -> dict[str, Any]:
    """``data`` as written for ``model``, keyed by YAML name; ``{}`` if it is no object.

    Python callers may use the Python names (``for_each``); YAML uses the aliases.
    """
    if isinstance(data, BaseModel):
        return dict(data.model_dump(by_alias=True, exclude_unset=True))
    if not isinstance(data, Mapping):
        return {}
    fields = dict(data)
    for name, field in model.model_fields.items():
        alias = field.alias or name
        if alias != name and name in fields and alias not in fields:
            fields[alias] = fields.pop(name)
    return fields


# --- pydantic errors in words -----------------------------------------------------------------

_JSON_TYPES: dict[type, str] = {
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "an object",
    type(None): "null",
}

_EXPECTED_TYPES: dict[str, str] = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "bool_type": "a boolean (true or false)",
    "dict_type": "an object",
    "list_type": "a list",
    "tuple_type": "a list",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "timedelta_type": "a duration such as 30s",
}


def describe_value(value: Any) -> str:
    """``'abc'`` -> ``a string ('abc')``, for "must be X, got Y" messages."""
    kind = _JSON_TYPES.get(type(value), type(value).__name__)
    if isinstance(value, dict | list):
        return kind
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    return kind if value is None else f"{kind} ({shown})"


def issues_from_validation_error(
    error: ValidationError,
    *,
    prefix: Loc = (),
    allowed_fields: Callable[[Loc], list[str] | None] | None = None,
    pattern_descriptions: Mapping[str, str] | None = None,
) -> list[Issue]:
    """Turn pydantic's errors into Issues with readable messages.

    ``allowed_fields(loc)`` names the fields known at ``loc`` (for unknown-field errors).
    """
    issues = []
    for detail in error.errors(include_url=False):
        loc = tuple(part for part in detail["loc"] if part != "[key]")
        message = _describe(detail, loc, allowed_fields, pattern_descriptions or {})
        issue = Issue((*prefix, *loc), message)
        if issue not in issues:
            issues.append(issue)
    return issues


def _describe(
    detail: ErrorDetails,
    loc: Loc,
    allowed_fields: Callable[[Loc], list[str] | None] | None,
    patterns: Mapping[str, str],
) -> str:
    kind = detail["type"]
    ctx = detail.get("ctx", {})
    value = detail.get("input")
    if kind == "spec":
        return str(ctx["message"])
    if kind == "value_error":
        return str(ctx.get("error", detail["msg"]))
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return unknown_field(
            str(loc[-1]) if loc else "", allowed_fields(loc[:-1]) if allowed_fields else None
        )
    if kind in _EXPECTED_TYPES:
        return f"must be {_EXPECTED_TYPES[kind]}, got {describe_value(value)}"
    if kind == "literal_error":
        expected = str(ctx.get("expected"))
        choice = "one of " if " or " in expected else ""
        hint = (
            did_you_mean(value, re.findall(r"'([^']*)'", expected))
            if isinstance(value, str)
            else ""
        )
        return f"must be {choice}{expected}; got {describe_value(value)}{hint}"
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        wanted = patterns.get(pattern, f"match the pattern {pattern}")
        return f"must be {wanted}; got {value!r}"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters long, got {len(str(value))}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} items, got {ctx.get('actual_length')}"
    if kind == "too_short":
        minimum = ctx.get("min_length")
        return f"must have at least {minimum} item{'s' if minimum != 1 else ''}"
    bounds = {
        "greater_than_equal": ("at least", "ge"),
        "less_than_equal": ("at most", "le"),
        "greater_than": ("greater than", "gt"),
        "less_than": ("less than", "lt"),
    }
    if kind in bounds:
        words, key = bounds[kind]
        return f"must be {words} {ctx.get(key)}, got {value!r}"
    return str(detail["msg"])


def unknown_field(name: str, known: list[str] | None) -> str:
    """``unknown field 'retires' — did you mean 'retry'?``, or the fields allowed there."""
    hint = did_you_mean(name, known or [])
    if hint:
        return f"unknown field {name!r}{hint}"
    listed = f"; allowed fields here: {', '.join(known)}" if known else ""
    return f"unknown field {name!r}{listed}"


def fields_at(model: type[BaseModel], loc: Loc) -> list[str] | None:
    """The YAML field names of the model found at ``loc`` inside ``model``, if any."""
    current: Any = model
    for part in loc:
        current = _inside(_unwrap(current), part)
        if current is None:
            return None
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [field.alias or name for name, field in current.model_fields.items()]
    return None


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated[...] and `| None` so only the interesting type is left."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, UnionType):
            members = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _inside(annotation: Any, part: str | int) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, field in annotation.model_fields.items():
            if part in (name, field.alias):
                return field.annotation
        return None
    origin = get_origin(annotation)
    args = get_args(annotation)
    if isinstance(part, int) and origin in (list, tuple) and args:
        return args[0]
    if isinstance(part, str) and origin is dict and len(args) == 2:
        return args[1]
    return None
