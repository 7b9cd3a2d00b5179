"""Go/Kubernetes-style duration strings (``500ms``, ``30s``, ``1h30m``) to ``timedelta`` and back.

The parser works on integers (microseconds) so that ``format_duration`` and
``parse_duration`` round-trip exactly; floats would lose the last digit of long durations.
"""

from __future__ import annotations

import re
from datetime import timedelta

from kubesteps.engine import elapsed as _engine_durations
from kubesteps.engine.elapsed import UNITS

__all__ = [
    "DURATION_PATTERN",
    "MAX_DURATION",
    "POSITIVE_DURATION_PATTERN",
    "DurationError",
    "format_duration",
    "parse_duration",
]

# The same language as a regular expression (RE2-compatible, for the CRD schema).
DURATION_PATTERN = r"^(0|([0-9]+(\.[0-9]+)?(ms|h|m|s))+)$"

# The durations above 0: at least one term has a non-zero digit. A pattern rather than a CEL
# rule, because the API server multiplies a CEL rule's cost by every place it can apply to,
# and a duration sits in every step at every nesting level: as CEL, these rules alone
# exceeded the CRD's cost budget several times over (kube-apiserver refused the CRD).
_TERM_PATTERN = r"[0-9]+(\.[0-9]+)?(ms|h|m|s)"
_NON_ZERO_TERM_PATTERN = r"([0-9]*[1-9][0-9]*(\.[0-9]+)?|[0-9]+\.[0-9]*[1-9][0-9]*)(ms|h|m|s)"
POSITIVE_DURATION_PATTERN = rf"^({_TERM_PATTERN})*{_NON_ZERO_TERM_PATTERN}({_TERM_PATTERN})*$"

# Large enough for any sane timeout, small enough that timedelta never overflows.
MAX_DURATION = timedelta(days=365)

_TERM = re.compile(r"(?P<number>[0-9]*(?:\.[0-9]*)?)(?P<unit>[^0-9.]*)")
_ALLOWED = "a number followed by a unit (h, m, s or ms), repeated: e.g. 500ms, 30s, 1h30m"


_MAX_MICROS = MAX_DURATION // timedelta(microseconds=1)


class DurationError(ValueError):
    """A duration string that cannot be parsed; the message says what is wrong and why."""


def parse_duration(text: str) -> timedelta:
    """Parse a Go-style duration (``1h30m``, ``1.5s``, ``250ms``, ``0``) to a timedelta."""
    if not isinstance(text, str):
        raise DurationError(f"a duration must be a string like '30s', got {type(text).__name__}")
    if text == "0":
        return timedelta(0)
    if not text:
        raise DurationError(f"empty duration; expected {_ALLOWED}")
    if text.startswith("-"):
        raise DurationError(f"negative duration {text!r}; durations must be 0 or positive")
    micros = 0
    position = 0
    while position < len(text):
        match = _TERM.match(text, position)
        assert match is not None  # the pattern can match the empty string, so it always matches
        number, unit = match.group("number"), match.group("unit")
        if not number or number == ".":
            raise DurationError(
                f"invalid duration {text!r}: expected a number at position {position}; "
                f"expected {_ALLOWED}"
            )
        if not unit:
            raise DurationError(
                f"invalid duration {text!r}: missing unit after {number!r}; "
                "use h, m, s or ms (e.g. '30s')"
            )
        if unit not in UNITS:
            raise DurationError(
                f"invalid duration {text!r}: unknown unit {unit!r}; use h, m, s or ms"
            )
        micros += _to_micros(text, number, UNITS[unit])
        position = match.end()
    # (checked before a timedelta is made: one of over 999,999,999 days cannot be)
    if micros > _MAX_MICROS:
        raise DurationError(f"duration {text!r} is too long; at most 8760h (365 days)")
    return timedelta(microseconds=micros)


def _to_micros(text: str, number: str, scale: int) -> int:
    whole, _, fraction = number.partition(".")
    if number.startswith(".") or number.endswith("."):
        raise DurationError(
            f"invalid duration {text!r}: {number!r} needs digits on both sides of the '.'"
        )
    if len(whole) > 12:
        raise DurationError(f"duration {text!r} is too long; at most 8760h (365 days)")
    fraction_micros = 0
    if fraction:
        # scale / 10**len(fraction) must stay integral, or precision below 1us is asked for.
        numerator = int(fraction) * scale
        denominator = 10 ** len(fraction)
        if numerator % denominator:
            raise DurationError(
                f"invalid duration {text!r}: {number!r} is more precise than a microsecond"
            )
        fraction_micros = numerator // denominator
    return int(whole) * scale + fraction_micros


def format_duration(value: timedelta) -> str:
    """The canonical string for ``value``: ``1h30m``, ``45s``, ``1.5s``, ``250ms`` or ``0``."""
    try:
        return _engine_durations.format_duration(value)
    except ValueError as error:
        raise DurationError(str(error)) from None
