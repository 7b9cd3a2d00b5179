"""Object storage with etcd-like revisions, a bounded event history, and watch fan-out.

One global, monotonically increasing revision numbers every write, as etcd does; each
resource keeps the last ``history_size`` events so that a watch can resume from a
resourceVersion (older ones answer 410 Expired, as do revisions from before the resource
was served: a real server's watch cache starts from a list at that moment). Stored objects
are never mutated after they are stored: writers build a new dict, so events, lists and
history can share them safely.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubesteps.testing.status_errors import ApiError

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace or "", name)
Predicate = Callable[[Obj], bool]


@dataclass(frozen=True)
class Event:
    revision: int
    type: str  # ADDED, MODIFIED or DELETED
    obj: Obj
    old: Obj | None = None  # the state before a MODIFIED: selectors can move objects in and out


@dataclass(eq=False)
class Watcher:
    """One watch stream's subscription; ``None`` in the queue means the server is stopping."""

    namespace: str | None
    predicates: tuple[Predicate, ...] = ()
    queue: asyncio.Queue[Event | None] = field(default_factory=asyncio.Queue)

    def matches(self, obj: Obj | None) -> bool:
        if obj is None:
            return False
        if self.namespace is not None and obj["metadata"].get("namespace") != self.namespace:
            return False
        return all(predicate(obj) for predicate in self.predicates)

    def translate(self, event: Event) -> Event | None:
        """What this watcher sees: an object leaving its selection is DELETED (as it was
        before, at the event's revision, as kube-apiserver's watch cache sends it), one
        entering it ADDED."""
        now = self.matches(event.obj)
        before = self.matches(event.old) if event.type == "MODIFIED" else now
        if now and before:
            return event
        if now:
            return Event(event.revision, "ADDED", event.obj)
        if before:
            assert event.old is not None
            meta = {**event.old["metadata"], "resourceVersion": str(event.revision)}
            return Event(event.revision, "DELETED", {**event.old, "metadata": meta})
        return None


class _Collection:
    def __init__(self, history_size: int, since: int = 0) -> None:
        self.objects: dict[Key, Obj] = {}
        self.history: deque[Event] = deque(maxlen=history_size)
        # Watches can resume from this revision on: when the resource began to be served,
        # then the revision of the newest event that fell out of the history.
        self.evicted_up_to = since
        self.watchers: set[Watcher] = set()
        self.observers: list[Callable[[Event], None]] = []


class Store:
    def __init__(self, *, history_size: int = 10_000) -> None:
        self.revision = 0
        self._history_size = history_size
        self._collections: dict[tuple[str, str], _Collection] = {}

    def _collection(self, storage_key: tuple[str, str]) -> _Collection:
        collection = self._collections.get(storage_key)
        if collection is None:
            collection = self._collections[storage_key] = _Collection(self._history_size)
        return collection

    def serve(self, storage_key: tuple[str, str]) -> None:
        """Begin a collection for a resource served from now on (a CRD's kind): a watch
        from an earlier revision answers 410, as a real server's fresh watch cache does."""
        if storage_key not in self._collections:
            self._collections[storage_key] = _Collection(self._history_size, self.revision)

    def next_revision(self) -> int:
        self.revision += 1
        return self.revision

    def get(self, storage_key: tuple[str, str], namespace: str, name: str) -> Obj | None:
        return self._collection(storage_key).objects.get((namespace, name))

    def items(self, storage_key: tuple[str, str], namespace: str | None) -> list[Obj]:
        """Objects sorted by namespace and name, as etcd's key order returns them."""
        objects = self._collection(storage_key).objects
        keys = sorted(k for k in objects if namespace is None or k[0] == namespace)
        return [objects[k] for k in keys]

    def write(self, storage_key: tuple[str, str], event_type: str, obj: Obj) -> None:
        """Store (or, for DELETED, remove) an object already stamped with a new revision."""
        collection = self._collection(storage_key)
        meta = obj["metadata"]
        key = (meta.get("namespace") or "", meta["name"])
        old = collection.objects.get(key)
        if event_type == "DELETED":
            collection.objects.pop(key, None)
        else:
            collection.objects[key] = obj
        event = Event(int(meta["resourceVersion"]), event_type, obj, old)
        if len(collection.history) == collection.history.maxlen:
            collection.evicted_up_to = collection.history[0].revision
        collection.history.append(event)
        for watcher in collection.watchers:
            seen = watcher.translate(event)
            if seen is not None:
                watcher.queue.put_nowait(seen)
        for observer in list(collection.observers):
            observer(event)

    def observe(
        self, storage_key: tuple[str, str], observer: Callable[[Event], None]
    ) -> Callable[[], None]:
        """Call ``observer`` with every write as it is stored; returns the way to stop."""
        observers = self._collection(storage_key).observers
        observers.append(observer)

        def stop() -> None:
            if observer in observers:
                observers.remove(observer)

        return stop

    def events_since(self, storage_key: tuple[str, str], revision: int) -> list[Event]:
        collection = self._collection(storage_key)
        if revision < collection.evicted_up_to:
            # kube-apiserver's words: the revision asked for, and the oldest it can resume from.
            raise ApiError(
                "Expired", f"too old resource version: {revision} ({collection.evicted_up_to})"
            )
        return [event for event in collection.history if event.revision > revision]

    def subscribe(self, storage_key: tuple[str, str], watcher: Watcher) -> None:
        self._collection(storage_key).watchers.add(watcher)

    def unsubscribe(self, storage_key: tuple[str, str], watcher: Watcher) -> None:
        self._collection(storage_key).watchers.discard(watcher)

    def watchers(self, storage_key: tuple[str, str]) -> int:
        return len(self._collection(storage_key).watchers)

    def drop(self, storage_key: tuple[str, str]) -> None:
        """Forget a collection whose resource stopped being served (its CRD was deleted)."""
        collection = self._collections.pop(storage_key, None)
        if collection is not None:
            for watcher in collection.watchers:
                watcher.queue.put_nowait(None)

    def stop_watchers(self) -> None:
        for collection in self._collections.values():
            for watcher in collection.watchers:
                watcher.queue.put_nowait(None)
