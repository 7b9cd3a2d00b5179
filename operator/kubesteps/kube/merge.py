"""JSON merge patches (RFC 7386): apply one, and compute the one that turns A into B.

A merge patch merges objects key by key, replaces lists and deletes a key given as
``null``. A writer that sends only the new value of a nested object would leave behind
the keys it dropped; ``merge_diff`` writes those as ``null``.
"""

from __future__ import annotations

import copy
from typing import Any

JSON = Any


def merge_patch(target: JSON, patch: JSON) -> JSON:
    """``target`` with ``patch`` merged in (neither is changed)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def merge_diff(old: JSON, new: JSON) -> JSON:
    """The merge patch that turns ``old`` into ``new`` (for objects; anything else is
    replaced whole). ``new`` must hold no ``null``: a merge patch cannot store one."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        if key not in old or old[key] != value:
            patch[key] = merge_diff(old.get(key), value)
    return patch
