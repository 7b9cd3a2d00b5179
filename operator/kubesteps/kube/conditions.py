"""Condition math on ``status.conditions`` lists (the metav1.Condition rules).

- ``lastTransitionTime`` changes only when ``status`` changes;
- every condition we write carries ``observedGeneration``;
- types and reasons are checked against the Kubernetes patterns before anything is sent, so
  a bad name fails here with a clear message instead of as a 422 from the API server.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

Condition = dict[str, Any]

# metav1.Condition's rules (the CRD's status schema uses the same patterns).
CONDITION_TYPE_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
CONDITION_REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
_TYPE = re.compile(CONDITION_TYPE_PATTERN)
_REASON = re.compile(CONDITION_REASON_PATTERN)
MAX_MESSAGE = 32768


def check_type(condition_type: str) -> None:
    if len(condition_type) > 316 or not _TYPE.match(condition_type):
        raise ValueError(
            f"invalid condition type {condition_type!r}: must be a qualified name "
            "(alphanumerics, '-', '_', '.'; optionally prefixed by a DNS subdomain and '/')"
        )


def check_reason(reason: str) -> None:
    if len(reason) > 1024 or not _REASON.match(reason):
        raise ValueError(
            f"invalid condition reason {reason!r}: must be CamelCase-like "
            "(a letter, then letters, digits, '_', ',' or ':')"
        )


def stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def find(conditions: Iterable[Mapping[str, Any]], condition_type: str) -> Mapping[str, Any] | None:
    for condition in conditions:
        if condition.get("type") == condition_type:
            return condition
    return None


def set_condition(
    conditions: list[Condition],
    condition_type: str,
    status: str,
    reason: str,
    message: str,
    *,
    generation: int,
    now: datetime,
) -> bool:
    """Set one condition in place; return whether anything a reader can see changed."""
    check_type(condition_type)
    check_reason(reason)
    if status not in ("True", "False", "Unknown"):
        raise ValueError(f"invalid condition status {status!r}: must be True, False or Unknown")
    message = message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "…"
    for index, current in enumerate(conditions):
        if current.get("type") != condition_type:
            continue
        changed_status = current.get("status") != status
        updated = {
            "type": condition_type,
            "status": status,
            "observedGeneration": generation,
            "lastTransitionTime": (
                stamp(now) if changed_status else current.get("lastTransitionTime") or stamp(now)
            ),
            "reason": reason,
            "message": message,
        }
        if updated == current:
            return False
        conditions[index] = updated
        return True
    conditions.append(
        {
            "type": condition_type,
            "status": status,
            "observedGeneration": generation,
            "lastTransitionTime": stamp(now),
            "reason": reason,
            "message": message,
        }
    )
    return True
