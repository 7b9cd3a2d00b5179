"""Typed access to an object's ``metadata``: what the operator reads of it, with the values
a missing field means ("" for names, 0 for the generation, no annotations), instead of
``body.get("metadata", {}).get(...)`` at every use."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectMeta:
    name: str = ""
    namespace: str = ""
    uid: str = ""
    generation: int = 0
    resource_version: str = ""
    creation_timestamp: str = ""
    deletion_timestamp: str = ""
    owner_uids: tuple[str, ...] = ()
    annotations: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """What names the object for metrics and caches: its uid, else its name."""
        return self.uid or self.name


def meta_of(body: Mapping[str, Any]) -> ObjectMeta:
    """The metadata of ``body`` (an object as the API server returns it, or a partial one)."""
    raw = body.get("metadata") or {}
    return ObjectMeta(
        name=str(raw.get("name") or ""),
        namespace=str(raw.get("namespace") or ""),
        uid=str(raw.get("uid") or ""),
        generation=int(raw.get("generation") or 0),
        resource_version=str(raw.get("resourceVersion") or ""),
        creation_timestamp=str(raw.get("creationTimestamp") or ""),
        deletion_timestamp=str(raw.get("deletionTimestamp") or ""),
        owner_uids=tuple(
            str(ref.get("uid") or "")
            for ref in raw.get("ownerReferences") or ()
            if isinstance(ref, Mapping)
        ),
        annotations={str(k): str(v) for k, v in (raw.get("annotations") or {}).items()},
        labels={str(k): str(v) for k, v in (raw.get("labels") or {}).items()},
    )
