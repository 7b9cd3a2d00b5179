"""Label and field selectors, parsed once per request and matched against stored objects."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubesteps.testing.status_errors import ApiError

Predicate = Callable[[dict[str, Any]], bool]

_SET_RE = re.compile(r"^\s*([^\s!=(),]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ_RE = re.compile(r"^\s*([^\s!=(),]+)\s*(==|=|!=)\s*([^\s!=(),]*)\s*$")
_EXISTS_RE = re.compile(r"^\s*(!?)\s*([^\s!=(),]+)\s*$")

FIELDS = ("metadata.name", "metadata.namespace")
# The other fields a real server selects by, per resource (group, plural): enough for
# `kubectl describe` (Events of an object) and the usual `get --field-selector`s.
RESOURCE_FIELDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "events"): (
        "involvedObject.apiVersion",
        "involvedObject.fieldPath",
        "involvedObject.kind",
        "involvedObject.name",
        "involvedObject.namespace",
        "involvedObject.resourceVersion",
        "involvedObject.uid",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
    ("events.k8s.io", "events"): (
        "regarding.apiVersion",
        "regarding.fieldPath",
        "regarding.kind",
        "regarding.name",
        "regarding.namespace",
        "regarding.resourceVersion",
        "regarding.uid",
        "reason",
        "reportingController",
        "type",
    ),
    ("", "pods"): (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "status.phase",
        "status.podIP",
    ),
    ("", "secrets"): ("type",),
    ("", "namespaces"): ("status.phase",),
    ("batch", "jobs"): ("status.successful",),
}
# Where a selectable field's value is, when not at its own path.
_LOCATIONS = {"source": "source.component"}


def _split_terms(selector: str) -> list[str]:
    """Split on commas outside of the parentheses of ``in (a,b)`` sets."""
    terms: list[str] = []
    current: list[str] = []
    depth = 0
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(char)
    terms.append("".join(current))
    return [term for term in terms if term.strip()]


@dataclass(frozen=True)
class _Requirement:
    key: str
    op: str
    values: frozenset[str]

    def __call__(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op == "in":
            return present and labels[self.key] in self.values
        # "notin" and "!=" also match objects without the label, as on a real server.
        return not present or labels[self.key] not in self.values


def label_selector(selector: str) -> Predicate:
    requirements: list[_Requirement] = []
    for term in _split_terms(selector):
        if match := _SET_RE.match(term):
            key, op, values = match.groups()
            items = frozenset(v.strip() for v in values.split(",") if v.strip())
            requirements.append(_Requirement(key, op, items))
        elif match := _EQ_RE.match(term):
            key, op, value = match.groups()
            op = "notin" if op == "!=" else "in"
            requirements.append(_Requirement(key, op, frozenset({value})))
        elif match := _EXISTS_RE.match(term):
            negated, key = match.groups()
            requirements.append(_Requirement(key, "!exists" if negated else "exists", frozenset()))
        else:
            raise ApiError(
                "BadRequest",
                f"unable to parse requirement {term.strip()!r} in labelSelector {selector!r}:"
                " use key=value, key!=value, key in (a,b), key notin (a,b), key or !key",
            )

    def matches(obj: dict[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(requirement(labels) for requirement in requirements)

    return matches


def field_selector(selector: str, resource: tuple[str, str] = ("", "")) -> Predicate:
    """A predicate for ``selector`` on the fields ``resource`` (group, plural) selects by."""
    allowed = (*FIELDS, *RESOURCE_FIELDS.get(resource, ()))
    checks: list[tuple[tuple[str, ...], bool, str]] = []
    for term in _split_terms(selector):
        match = _EQ_RE.match(term)
        if match is None:
            raise ApiError(
                "BadRequest",
                f"invalid fieldSelector term {term.strip()!r}: use field=value or field!=value",
            )
        field, op, value = match.groups()
        if field not in allowed:
            raise ApiError(
                "BadRequest",
                f"field label not supported: {field} (here: {', '.join(allowed)})",
            )
        checks.append((tuple(_LOCATIONS.get(field, field).split(".")), op != "!=", value))

    def matches(obj: dict[str, Any]) -> bool:
        return all((_text(obj, path) == value) is equal for path, equal, value in checks)

    return matches


def _text(obj: Any, path: tuple[str, ...]) -> str:
    for key in path:
        obj = obj.get(key) if isinstance(obj, dict) else None
    if obj is None:
        return ""
    if isinstance(obj, bool):
        return "true" if obj else "false"
    return str(obj)
