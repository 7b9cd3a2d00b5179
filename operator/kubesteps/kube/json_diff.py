"""JSON patches (RFC 6902) computed from two documents: the operations that turn A into B.

A status write sends only what changed. A merge patch (RFC 7386) cannot do that for a list:
it replaces the list whole, so one step's new phase would resend every step record and
every condition. A JSON patch reaches into a list by index, so the write is as small as
the change. ``json_diff`` produces one; the caller compares its size with the merge patch
and sends the smaller (and only with a ``resourceVersion`` guard: indexes are positions
in the version that was read).

The diff is structural and greedy, not minimal: objects are compared key by key, lists
index by index over their common length, then grown with ``add .../-`` or shrunk by
removing from the end. Wherever that comes out larger than replacing the value outright,
the value is replaced.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

JSON = Any
Operation = dict[str, Any]


def pointer(*tokens: str | int) -> str:
    """The JSON pointer (RFC 6901) of a path: ``pointer("a/b", 0)`` is ``/a~1b/0``."""
    return "".join("/" + str(t).replace("~", "~0").replace("/", "~1") for t in tokens)


def json_diff(old: JSON, new: JSON, path: str = "") -> list[Operation]:
    """Operations that turn ``old`` into ``new``; ``path`` is the pointer both sit at."""
    if _same(old, new):
        return []
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        ops = _object_diff(old, new, path)
    elif _is_list(old) and _is_list(new):
        ops = _list_diff(old, new, path)
    else:
        return [{"op": "replace", "path": path, "value": new}]
    if not path:
        return ops
    whole: list[Operation] = [{"op": "replace", "path": path, "value": new}]
    return whole if size(whole) <= size(ops) else ops


def size(body: JSON) -> int:
    """Bytes of a patch body as the client sends it (compact JSON)."""
    return len(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode())


def _object_diff(old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> list[Operation]:
    ops: list[Operation] = [
        {"op": "remove", "path": path + pointer(key)} for key in old if key not in new
    ]
    for key, value in new.items():
        here = path + pointer(key)
        if key not in old:
            ops.append({"op": "add", "path": here, "value": value})
        else:
            ops.extend(json_diff(old[key], value, here))
    return ops


def _list_diff(old: Sequence[Any], new: Sequence[Any], path: str) -> list[Operation]:
    common = min(len(old), len(new))
    ops: list[Operation] = []
    for index in range(common):
        ops.extend(json_diff(old[index], new[index], path + pointer(index)))
    # Removals from the end first, so no index shifts under a later operation.
    ops.extend(
        {"op": "remove", "path": path + pointer(index)}
        for index in range(len(old) - 1, common - 1, -1)
    )
    ops.extend({"op": "add", "path": path + "/-", "value": value} for value in new[common:])
    return ops


def _same(old: JSON, new: JSON) -> bool:
    """Equal as JSON: Python's ``==`` (fast, in C) first, then a walk that tells ``true``
    from ``1``, which Python holds equal."""
    if old is new:
        return True
    if old != new:
        return False
    return _strictly_same(old, new)


def _strictly_same(old: JSON, new: JSON) -> bool:
    kind = type(old)
    if kind is not type(new):
        return _is_number(old) and _is_number(new)
    if kind is dict:
        return all(_strictly_same(value, new[key]) for key, value in old.items())
    if kind is list or kind is tuple:
        return all(_strictly_same(a, b) for a, b in zip(old, new, strict=True))
    return True


def _is_number(value: JSON) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_list(value: JSON) -> bool:
    return isinstance(value, list | tuple)
