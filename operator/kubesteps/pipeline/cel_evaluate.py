"""CEL evaluated: a compiled expression run with plain-Python variables (``evaluate``, and the
``when`` and ``forEach.items`` forms that check the result's type), and the conversions
between plain-Python and CEL values."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, cast

from celpy import celtypes
from celpy.evaluation import CELEvalError

from kubesteps.pipeline.cel_compile import CelError, CelSyntaxError, compile_expression
from kubesteps.pipeline.durations import format_duration


class CelEvaluationError(CelError):
    """The expression compiled but failed at run time, or gave a value of the wrong type."""


def evaluate(source: str, variables: Mapping[str, Any], *, path: str = "") -> Any:
    """Evaluate ``source`` with plain-Python ``variables``; returns a plain-Python value."""
    try:
        compiled = compile_expression(source)
    except CelSyntaxError as error:
        error.path = path
        raise
    activation = {name: to_cel(value) for name, value in variables.items()}
    try:
        result = compiled.program.evaluate(activation)
    except CELEvalError as error:
        raise CelEvaluationError(
            _describe_eval_error(error), expression=source, path=path
        ) from error
    except Exception as error:  # celpy surfaces some type clashes as bare Python errors
        raise CelEvaluationError(
            f"evaluation failed: {error}", expression=source, path=path
        ) from error
    if isinstance(result, CELEvalError):
        raise CelEvaluationError(_describe_eval_error(result), expression=source, path=path)
    return to_python(result, expression=source, path=path)


def _describe_eval_error(error: CELEvalError) -> str:
    text = str(error.args[0]) if error.args else "evaluation failed"
    # celpy appends a dump of the whole activation to undeclared references: noise for users.
    return text.split(" (in activation", 1)[0]


def evaluate_predicate(source: str, variables: Mapping[str, Any], *, path: str = "") -> bool:
    """Evaluate a ``when`` predicate; anything but a boolean result is an error."""
    value = evaluate(source, variables, path=path)
    if not isinstance(value, bool):
        raise CelEvaluationError(
            f"a predicate must give true or false, got {_type_name(value)} {value!r}",
            expression=source,
            path=path,
        )
    return value


def evaluate_list(source: str, variables: Mapping[str, Any], *, path: str = "") -> list[Any]:
    """Evaluate a ``forEach.items`` expression; anything but a list is an error."""
    value = evaluate(source, variables, path=path)
    if not isinstance(value, list):
        raise CelEvaluationError(
            f"forEach.items must give a list, got {_type_name(value)}",
            expression=source,
            path=path,
        )
    return value


_CEL_VALUES = (
    celtypes.BoolType,
    celtypes.IntType,
    celtypes.UintType,
    celtypes.DoubleType,
    celtypes.StringType,
    celtypes.BytesType,
    celtypes.MapType,
    celtypes.ListType,
    celtypes.TimestampType,
    celtypes.DurationType,
)


def to_cel(value: Any) -> celtypes.Value:
    """A plain-Python value (JSON-like, plus datetime/timedelta) as a CEL value.

    A value that already is a CEL value is passed through: callers that evaluate many
    expressions over the same large variables convert them once.
    """
    if isinstance(value, _CEL_VALUES):
        return value
    if isinstance(value, bool):
        return celtypes.BoolType(value)
    if isinstance(value, int):
        return celtypes.IntType(value)
    if isinstance(value, float):
        return celtypes.DoubleType(value)
    if isinstance(value, str):
        return celtypes.StringType(value)
    if value is None:
        return None
    if isinstance(value, Mapping):
        return celtypes.MapType({to_cel(key): to_cel(item) for key, item in value.items()})
    if isinstance(value, list | tuple):
        return celtypes.ListType([to_cel(item) for item in value])
    if isinstance(value, datetime):
        return celtypes.TimestampType(value)
    if isinstance(value, timedelta):
        return celtypes.DurationType(value)
    raise TypeError(f"cannot pass a {type(value).__name__} to CEL")


def to_python(value: Any, *, expression: str = "", path: str = "") -> Any:
    """A CEL value as plain Python: bool, int, float, str, None, list, dict.

    Timestamps become RFC 3339 strings and durations Go-style strings, as in YAML.
    """
    if value is None:
        return None
    if isinstance(value, celtypes.BoolType | bool):
        return bool(value)
    if isinstance(value, celtypes.IntType | celtypes.UintType | int):
        return int(value)
    if isinstance(value, celtypes.DoubleType | float):
        return float(value)
    if isinstance(value, celtypes.StringType | str):
        return str(value)
    if isinstance(value, celtypes.MapType | dict):
        return {
            to_python(key, expression=expression, path=path): to_python(
                item, expression=expression, path=path
            )
            for key, item in cast(Mapping[Any, Any], value).items()
        }
    if isinstance(value, celtypes.ListType | list):
        return [to_python(item, expression=expression, path=path) for item in value]
    if isinstance(value, celtypes.TimestampType):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, celtypes.DurationType) and value >= timedelta(0):
        return format_duration(value)
    raise CelEvaluationError(
        f"the result is a {type(value).__name__}, which has no YAML form; "
        "convert it with string() or int()",
        expression=expression,
        path=path,
    )


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "bool",
        int: "int",
        float: "double",
        str: "string",
        list: "list",
        dict: "map",
    }.get(type(value), type(value).__name__)
