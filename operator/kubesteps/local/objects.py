"""A local SQLite home for Pipeline objects, so `kubesteps run` keeps state between runs.

It plays the API server's part for the object itself: a ``generation`` that moves only
when the spec changes, a ``resourceVersion`` that moves on every write, and status writes
that replace ``status`` alone. The ``ConditionsKeeper`` writes through it exactly as it
writes through the API, so a local run has the operator's semantics and status shape.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubesteps.kube.client import ApiError
from kubesteps.kube.conditions import stamp
from kubesteps.kube.merge import merge_patch

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (namespace, name)
);
"""


def read_object(path: str | Path, namespace: str, name: str) -> dict[str, Any] | None:
    """One stored object, read without writing anything: the file is opened read-only and
    as immutable, so not even SQLite's shared-memory and WAL files appear (a `kubesteps
    run` closes its database fully checkpointed)."""
    connection = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro&immutable=1", uri=True)
    try:
        row = connection.execute(
            "SELECT body FROM objects WHERE namespace = ? AND name = ?", (namespace, name)
        ).fetchone()
    except sqlite3.OperationalError:  # a file without the table: nothing stored
        return None
    finally:
        connection.close()
    return json.loads(row[0]) if row else None


class LocalObjects:
    """Pipeline objects in a SQLite file (WAL), keyed by namespace and name."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def put(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Store a manifest as an object; the generation moves only if the spec changed."""
        meta = dict(manifest.get("metadata") or {})
        namespace = meta.get("namespace") or "default"
        with self._lock:
            current = self._get(namespace, meta["name"])
            body = {k: v for k, v in manifest.items() if k != "status"}
            meta["namespace"] = namespace
            if current is None:
                meta.update(
                    uid=str(uuid.uuid4()),
                    generation=1,
                    resourceVersion="1",
                    creationTimestamp=stamp(datetime.now(UTC)),
                )
                body["status"] = {}
            else:
                old = current["metadata"]
                same = current.get("spec") == manifest.get("spec")
                meta.update(
                    uid=old["uid"],
                    creationTimestamp=old.get("creationTimestamp"),
                    generation=old["generation"] if same else old["generation"] + 1,
                    resourceVersion=str(int(old["resourceVersion"]) + 1),
                )
                body["status"] = current.get("status") or {}
            body["metadata"] = meta
            self._save(body)
            return body

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            return self._get(namespace, name)

    def patch_status(
        self, namespace: str, name: str, status: Mapping[str, Any], resource_version: str | None
    ) -> dict[str, Any]:
        with self._lock:
            current = self._get(namespace, name)
            if current is None:
                raise ApiError(404, "NotFound", f"pipelines {name!r} not found")
            rv = current["metadata"]["resourceVersion"]
            if resource_version and resource_version != rv:
                raise ApiError(409, "Conflict", "the object has been modified")
            current["status"] = merge_patch(current.get("status") or {}, dict(status))
            current["metadata"]["resourceVersion"] = str(int(rv) + 1)
            self._save(current)
            return current

    def annotate(self, namespace: str, name: str, key: str, value: str) -> dict[str, Any]:
        with self._lock:
            current = self._get(namespace, name)
            if current is None:
                raise ApiError(404, "NotFound", f"pipelines {name!r} not found")
            current["metadata"].setdefault("annotations", {})[key] = value
            rv = current["metadata"]["resourceVersion"]
            current["metadata"]["resourceVersion"] = str(int(rv) + 1)
            self._save(current)
            return current

    def remove_annotations(
        self, namespace: str, name: str, expected: Mapping[str, str]
    ) -> dict[str, Any] | None:
        """Remove each annotation that still has the value in ``expected``."""
        with self._lock:
            current = self._get(namespace, name)
            if current is None:
                return None
            annotations = current["metadata"].get("annotations") or {}
            gone = [k for k, v in expected.items() if k in annotations and annotations[k] == v]
            if not gone:
                return current
            for key in gone:
                del annotations[key]
            rv = current["metadata"]["resourceVersion"]
            current["metadata"]["resourceVersion"] = str(int(rv) + 1)
            self._save(current)
            return current

    def _get(self, namespace: str, name: str) -> dict[str, Any] | None:
        row = self._conn.execute(
            "SELECT body FROM objects WHERE namespace = ? AND name = ?", (namespace, name)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def _save(self, body: Mapping[str, Any]) -> None:
        meta = body["metadata"]
        self._conn.execute(
            "INSERT INTO objects (namespace, name, body) VALUES (?, ?, ?) "
            "ON CONFLICT (namespace, name) DO UPDATE SET body = excluded.body",
            (meta["namespace"], meta["name"], json.dumps(body)),
        )


class LocalStatusStore:
    """The ``StatusStore`` of one local object (database calls off the event loop)."""

    def __init__(self, objects: LocalObjects, body: Mapping[str, Any]) -> None:
        self.objects = objects
        meta = body["metadata"]
        self.namespace, self.name = meta["namespace"], meta["name"]

    async def patch(self, status: Mapping[str, Any], resource_version: str | None) -> Any:
        return await asyncio.to_thread(
            self.objects.patch_status, self.namespace, self.name, status, resource_version
        )

    async def read(self) -> Any:
        return await asyncio.to_thread(self.objects.get, self.namespace, self.name)

    async def remove_annotations(self, expected: Mapping[str, str]) -> Any:
        return await asyncio.to_thread(
            self.objects.remove_annotations, self.namespace, self.name, expected
        )
