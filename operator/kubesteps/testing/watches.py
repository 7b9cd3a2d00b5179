"""Watch streams: what a ``?watch=true`` request gets until it ends.

A watch without a ``resourceVersion`` (or with ``sendInitialEvents``) first gets every
matching object as ADDED (then, with ``sendInitialEvents`` and bookmarks allowed, a bookmark
marking their end); one with a ``resourceVersion`` resumes after it, or gets an ERROR event
(410 Expired) once the history has moved past it. Then the stream carries every matching
event as it is stored, a BOOKMARK whenever it has been quiet for ``bookmark_interval`` (if
bookmarks are allowed), and ends after ``timeoutSeconds``. Asked for as ``Table``
(``kubectl get -w``), each event's object is a Table of one row.
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from kubesteps.testing.api_verbs import as_version
from kubesteps.testing.discovery import ResourceInfo
from kubesteps.testing.status_errors import ApiError
from kubesteps.testing.storage import Event, Obj, Predicate, Store, Watcher
from kubesteps.testing.tables import table, wants_table


class _TableEvents:
    """A watch asked for as ``Table`` (``kubectl get -w``): each event's object is a Table
    of one row, with the column definitions in the first one only, as a real server does."""

    def __init__(self, info: ResourceInfo) -> None:
        self.info = info
        self.first = True

    def __call__(self, obj: Obj) -> Obj:
        shown = table([obj], self.info.printer_columns, obj["metadata"]["resourceVersion"])
        if not self.first:
            shown["columnDefinitions"] = []
        self.first = False
        return shown


def _shown(obj: Obj, info: ResourceInfo, as_table: _TableEvents | None) -> Obj:
    versioned = as_version(obj, info)
    return versioned if as_table is None else as_table(versioned)


class WatchStreams:
    """The watch streams of one emulator's store; ``bookmark_interval`` (seconds) is how
    long a stream that asked for bookmarks stays quiet before it gets one."""

    def __init__(self, store: Store, *, bookmark_interval: float) -> None:
        self.store = store
        self.bookmark_interval = bookmark_interval
        # Set (and replaced by a fresh one) whenever a watch stream opens.
        self._opened = asyncio.Event()

    async def opened(self) -> None:
        """Wait until the next watch stream opens."""
        await self._opened.wait()

    async def serve(
        self,
        request: web.Request,
        info: ResourceInfo,
        namespace: str | None,
        predicates: list[Predicate],
    ) -> web.StreamResponse:
        """Stream the watch ``request`` asks for on ``info`` in ``namespace`` (None: all)."""
        query = request.query
        since = query.get("resourceVersion", "")
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        initial_events = query.get("sendInitialEvents") == "true"
        try:
            timeout = float(query["timeoutSeconds"]) if "timeoutSeconds" in query else None
            since_revision = int(since) if since not in ("", "0") else None
        except ValueError as exc:
            raise ApiError("BadRequest", f"invalid watch parameter: {exc}") from exc

        as_table = wants_table(request.headers.get("Accept", ""))
        watcher = Watcher(namespace=namespace or None, predicates=tuple(predicates))
        # Subscribing and taking the backlog happen without yielding to the loop: no write
        # can slip in between, so the stream neither loses nor repeats an event.
        self.store.subscribe(info.storage_key, watcher)
        self._opened.set()
        self._opened = asyncio.Event()
        try:
            expired: ApiError | None = None
            backlog: list[Event] = []
            if initial_events or since_revision is None:
                backlog = [
                    Event(int(obj["metadata"]["resourceVersion"]), "ADDED", obj)
                    for obj in self.store.items(info.storage_key, watcher.namespace)
                    if watcher.matches(obj)
                ]
            else:
                try:
                    events = self.store.events_since(info.storage_key, since_revision)
                except ApiError as error:
                    expired = error
                else:
                    translated = (watcher.translate(event) for event in events)
                    backlog = [event for event in translated if event is not None]
            revision = self.store.revision

            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            if expired is not None:
                await self._send(response, "ERROR", expired.status())
                return response
            shown = _TableEvents(info) if as_table else None
            try:
                for event in backlog:
                    await self._send(response, event.type, _shown(event.obj, info, shown))
                if initial_events and bookmarks:
                    await self._send(
                        response, "BOOKMARK", self._bookmark(info, revision, initial=True)
                    )
                await self._stream(
                    response, watcher, info, duration=timeout, bookmarks=bookmarks, shown=shown
                )
            except ConnectionResetError:
                pass  # the client hung up: the watch is over, nothing to report
            return response
        finally:
            self.store.unsubscribe(info.storage_key, watcher)

    async def _stream(
        self,
        response: web.StreamResponse,
        watcher: Watcher,
        info: ResourceInfo,
        *,
        duration: float | None,
        bookmarks: bool,
        shown: _TableEvents | None,
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = None if duration is None else loop.time() + duration
        while True:
            wait = self.bookmark_interval
            if deadline is not None:
                wait = min(wait, deadline - loop.time())
                if wait <= 0:
                    return
            try:
                event = await asyncio.wait_for(watcher.queue.get(), wait)
            except TimeoutError:
                if bookmarks and (deadline is None or loop.time() < deadline):
                    bookmark = self._bookmark(info, self.store.revision)
                    await self._send(response, "BOOKMARK", bookmark)
                continue
            if event is None:
                return
            await self._send(response, event.type, _shown(event.obj, info, shown))

    @staticmethod
    def _bookmark(info: ResourceInfo, revision: int, *, initial: bool = False) -> Obj:
        meta: Obj = {"resourceVersion": str(revision)}
        if initial:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return {"kind": info.kind, "apiVersion": info.api_version, "metadata": meta}

    @staticmethod
    async def _send(response: web.StreamResponse, event_type: str, obj: Obj) -> None:
        line = json.dumps({"type": event_type, "object": obj}, separators=(",", ":"))
        await response.write(line.encode() + b"\n")
