"""Durations as people read them in messages: Go/Kubernetes style (``1h30m``, ``45s``, ``250ms``).

The engine writes durations into step messages (a timeout, how long a step ran); the spec
layer parses the same language (``kubesteps.pipeline.durations``), so what a message says
can be pasted back into a spec.
"""

from __future__ import annotations

from datetime import timedelta

# Units a duration may use, in microseconds. Go also knows ns and us; a timedelta cannot
# hold nanoseconds, and sub-millisecond timing has no use in a pipeline.
UNITS: dict[str, int] = {"h": 3_600_000_000, "m": 60_000_000, "s": 1_000_000, "ms": 1_000}


def format_duration(value: timedelta) -> str:
    """The canonical string for ``value``: ``1h30m``, ``45s``, ``1.5s``, ``250ms`` or ``0``."""
    micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    if micros < 0:
        raise ValueError(f"cannot format a negative duration ({value})")
    if micros == 0:
        return "0"
    if micros < 1_000_000 and micros % 1_000 == 0:
        return f"{micros // 1_000}ms"
    hours, micros = divmod(micros, UNITS["h"])
    minutes, micros = divmod(micros, UNITS["m"])
    seconds, micros = divmod(micros, UNITS["s"])
    parts = []
    if hours:
        parts.append(f"{hours}h")
    if minutes:
        parts.append(f"{minutes}m")
    if seconds or micros:
        fraction = f".{micros:06d}".rstrip("0") if micros else ""
        parts.append(f"{seconds}{fraction}s")
    return "".join(parts)


def format_elapsed(seconds: float | timedelta) -> str:
    """A measured time, rounded for a message: whole seconds from 1s up, else milliseconds.

    ``603.2`` gives ``10m3s``, ``0.0104`` gives ``10ms``; never a Python ``timedelta``.
    """
    value = seconds.total_seconds() if isinstance(seconds, timedelta) else float(seconds)
    value = max(0.0, value)
    if value >= 1.0:
        return format_duration(timedelta(seconds=round(value)))
    millis = round(value * 1000)
    return format_duration(timedelta(milliseconds=millis)) if millis else "0"
