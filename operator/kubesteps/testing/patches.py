"""The three patch formats a Kubernetes API server accepts on PATCH requests.

- JSON merge patch (RFC 7386): objects merge recursively, ``null`` deletes, lists replace.
- JSON patch (RFC 6902): a list of operations; a failed ``test`` is a 422, as kopf expects;
  as on kube-apiserver, ``replace`` of a missing member of an object adds it.
- Strategic merge patch: the real server merges lists by a per-field key taken from the
  built-in types' Go tags. The emulator approximates it: lists whose items all carry a
  ``name`` merge by name (containers, env, volumes, ports with names...), other lists
  replace, and the ``$patch``/``$setElementOrder``/``$retainKeys``/``$deleteFromPrimitiveList``
  directives are understood or dropped so they never leak into stored objects.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from kubesteps.kube.merge import merge_patch
from kubesteps.testing.status_errors import ApiError

__all__ = ["merge_patch", "strategic_merge_patch"]

JSON = Any


def strategic_merge_patch(target: JSON, patch: JSON) -> JSON:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.partition("/")[2]
            if isinstance(result.get(field), list) and isinstance(value, list):
                result[field] = [item for item in result[field] if item not in value]
        elif key.startswith("$"):
            continue  # ordering and retainKeys hints: a merge without them is close enough
        elif value is None or (isinstance(value, dict) and value.get("$patch") == "delete"):
            result.pop(key, None)
        elif isinstance(value, list):
            result[key] = _merge_named_lists(result.get(key), value)
        else:
            result[key] = strategic_merge_patch(result.get(key), value)
    return result


def _merge_named_lists(target: JSON, patch: list[Any]) -> list[Any]:
    keyed = all(isinstance(item, dict) and "name" in item for item in patch)
    if not keyed or not isinstance(target, list):
        return [strategic_merge_patch(None, item) for item in patch]
    if not all(isinstance(item, dict) and "name" in item for item in target):
        return [strategic_merge_patch(None, item) for item in patch]
    merged: list[Any] = list(target)
    positions = {item["name"]: index for index, item in enumerate(merged)}
    deleted: set[str] = set()
    for item in patch:
        name = item["name"]
        if item.get("$patch") == "delete":
            deleted.add(name)
        elif name in positions:
            merged[positions[name]] = strategic_merge_patch(merged[positions[name]], item)
        else:
            positions[name] = len(merged)
            merged.append(strategic_merge_patch(None, item))
    return [item for item in merged if item["name"] not in deleted]


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise ApiError(
            "BadRequest", f"invalid JSON pointer {path!r}: must be empty or start with /"
        )
    if path == "":
        return []
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _index(container: list[Any], token: str, path: str, *, insert: bool) -> int:
    if insert and token == "-":
        return len(container)
    if not token.isdigit():
        raise ApiError("Invalid", f"JSON patch path {path}: {token!r} is not a list index")
    index = int(token)
    if index > len(container) or (not insert and index == len(container)):
        raise ApiError("Invalid", f"JSON patch path {path}: index {index} is out of range")
    return index


def _parent(doc: JSON, parts: list[str], path: str) -> JSON:
    node = doc
    for token in parts[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, path, insert=False)]
        else:
            raise ApiError("Invalid", f"JSON patch path {path}: {token!r} does not exist")
    return node


def _get(doc: JSON, path: str) -> JSON:
    parts = _pointer(path)
    if not parts:
        return doc
    parent = _parent(doc, parts, path)
    token = parts[-1]
    if isinstance(parent, dict) and token in parent:
        return parent[token]
    if isinstance(parent, list):
        return parent[_index(parent, token, path, insert=False)]
    raise ApiError("Invalid", f"JSON patch path {path}: {token!r} does not exist")


def _remove(doc: JSON, path: str) -> JSON:
    parts = _pointer(path)
    if not parts:
        raise ApiError("Invalid", "JSON patch cannot remove the whole document")
    parent = _parent(doc, parts, path)
    token = parts[-1]
    if isinstance(parent, dict) and token in parent:
        return parent.pop(token)
    if isinstance(parent, list):
        return parent.pop(_index(parent, token, path, insert=False))
    raise ApiError("Invalid", f"JSON patch remove {path}: {token!r} does not exist")


def _add(doc: JSON, path: str, value: JSON, *, replace: bool) -> JSON:
    parts = _pointer(path)
    if not parts:
        return copy.deepcopy(value)
    parent = _parent(doc, parts, path)
    token = parts[-1]
    if isinstance(parent, dict):
        # A replace of a missing member of an object adds it: kube-apiserver's JSON patch
        # library does so (only a missing parent, or a list index out of range, fails).
        parent[token] = copy.deepcopy(value)
    elif isinstance(parent, list):
        index = _index(parent, token, path, insert=not replace)
        if replace:
            parent[index] = copy.deepcopy(value)
        else:
            parent.insert(index, copy.deepcopy(value))
    else:
        raise ApiError("Invalid", f"JSON patch path {path}: the parent is not an object or list")
    return doc


def json_patch(target: JSON, operations: JSON) -> JSON:
    if not isinstance(operations, list):
        raise ApiError("BadRequest", "a JSON patch must be a list of operations")
    doc = copy.deepcopy(target)
    for number, operation in enumerate(operations):
        if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
            raise ApiError("BadRequest", f"JSON patch operation #{number} needs 'op' and 'path'")
        op, path = operation["op"], operation["path"]
        if op in ("add", "replace", "test") and "value" not in operation:
            raise ApiError("BadRequest", f"JSON patch operation #{number} ({op}) needs 'value'")
        if op in ("move", "copy") and "from" not in operation:
            raise ApiError("BadRequest", f"JSON patch operation #{number} ({op}) needs 'from'")
        if op == "add":
            doc = _add(doc, path, operation["value"], replace=False)
        elif op == "replace":
            doc = _add(doc, path, operation["value"], replace=True)
        elif op == "remove":
            _remove(doc, path)
        elif op == "move":
            doc = _add(doc, path, _remove(doc, operation["from"]), replace=False)
        elif op == "copy":
            doc = _add(doc, path, _get(doc, operation["from"]), replace=False)
        elif op == "test":
            try:
                actual = _get(doc, path)
            except ApiError:
                actual = None  # a missing member tests equal to null, as kube-apiserver does
            if actual != operation["value"]:
                raise ApiError(
                    "Invalid",
                    f"the JSON patch test at {path} failed: expected"
                    f" {json.dumps(operation['value'])}, found {json.dumps(actual)}",
                )
        else:
            raise ApiError(
                "BadRequest",
                f"JSON patch operation #{number} has unknown op {op!r}; allowed: add, remove,"
                " replace, move, copy, test",
            )
    return doc
