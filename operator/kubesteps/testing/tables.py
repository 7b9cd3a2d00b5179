"""Server-side printing: the ``Table`` answers ``kubectl get`` asks for.

kubectl asks for ``application/json;as=Table;g=meta.k8s.io;v=v1``; a real API server
answers with rows whose cells come from a CRD's ``additionalPrinterColumns`` (JSONPath),
and that is how `kubectl get pipelines` shows Ready, Reason and Step. Date columns are
rendered as ages ("5m"), as the API server does. Built-in kinds get Name and Age (a string
column there), and ConfigMaps, Secrets and Namespaces their own columns (Data, Type, Status).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jsonpath

Obj = dict[str, Any]


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    type: str
    json_path: str
    description: str = ""
    priority: int = 0
    format: str = ""
    # A built-in kind's column computed in Go rather than by JSONPath (``Data``: a count).
    compute: Callable[[Obj], Any] | None = None
    age: bool = False  # the cell is an age ("5m") whatever the type says

    @classmethod
    def parse(cls, column: Obj) -> PrinterColumn:
        return cls(
            name=column["name"],
            type=column.get("type", "string"),
            json_path=column["jsonPath"],
            description=column.get("description", ""),
            priority=int(column.get("priority", 0)),
            format=column.get("format", ""),
        )


_CREATED = (
    "CreationTimestamp is a timestamp representing the server time when this object was created."
)
_AGE = PrinterColumn("Age", "date", ".metadata.creationTimestamp", _CREATED)
# A built-in kind's Age, as kube-apiserver's own table printers declare it: a string.
BUILT_IN_AGE = PrinterColumn("Age", "string", ".metadata.creationTimestamp", _CREATED, age=True)


def _count(*fields: str) -> Callable[[Obj], int]:
    return lambda obj: sum(len(obj.get(name) or {}) for name in fields)


# What kube-apiserver prints for a few built-in kinds (the others: Name and Age only).
BUILT_IN_COLUMNS: dict[tuple[str, str], tuple[PrinterColumn, ...]] = {
    ("", "configmaps"): (
        PrinterColumn("Data", "string", "", compute=_count("data", "binaryData")),
    ),
    ("", "secrets"): (
        PrinterColumn("Type", "string", ".type"),
        PrinterColumn("Data", "string", "", compute=_count("data")),
    ),
    ("", "namespaces"): (
        PrinterColumn("Status", "string", ".status.phase", "The status of the namespace"),
    ),
}


def built_in_columns(group: str, plural: str) -> tuple[PrinterColumn, ...]:
    return (*BUILT_IN_COLUMNS.get((group, plural), ()), BUILT_IN_AGE)


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def table(
    objects: Iterable[Obj],
    columns: Sequence[PrinterColumn],
    resource_version: str,
    now: datetime | None = None,
) -> Obj:
    columns = list(columns) or [_AGE]
    now = now or datetime.now(UTC)
    definitions = [
        {
            "name": "Name",
            "type": "string",
            "format": "name",
            "priority": 0,
            "description": "Name must be unique within a namespace.",
        }
    ]
    definitions += [
        {
            "name": c.name,
            "type": c.type,
            "format": c.format,
            "priority": c.priority,
            "description": c.description,
        }
        for c in columns
    ]
    rows = []
    for obj in objects:
        meta = obj.get("metadata", {})
        cells: list[Any] = [meta.get("name", "")]
        cells += [_cell(obj, column, now) for column in columns]
        rows.append(
            {
                "cells": cells,
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": meta,
                },
            }
        )
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": definitions,
        "rows": rows,
    }


def _cell(obj: Obj, column: PrinterColumn, now: datetime) -> Any:
    if column.compute is not None:
        return column.compute(obj)
    path = column.json_path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    try:
        found = jsonpath.findall("$" + path if path.startswith((".", "[")) else path, obj)
    except jsonpath.JSONPathError:
        return None
    if not found:
        return None
    value = found[0]
    if (column.type == "date" or column.age) and isinstance(value, str):
        return _age(value, now)
    return value


def _age(stamp: str, now: datetime) -> str:
    try:
        then = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return "<invalid>"
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 3600 * 3:
        return f"{seconds // 60}m"
    if seconds < 86400 * 2:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"
