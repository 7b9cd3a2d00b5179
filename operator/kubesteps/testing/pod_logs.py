"""Pods' logs: no kubelet runs in the emulator, so a test writes what a Pod logged, and
``GET .../pods/<pod>/log`` serves it, all at once (``tailLines`` and ``limitBytes`` apply)
or followed (``follow=true``: the stream waits for more until the log is done)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web

from kubesteps.testing.status_errors import ApiError
from kubesteps.testing.storage import Obj


@dataclass
class _PodLog:
    """A Pod's log as a test wrote it; ``changed`` is set (and replaced) on every write."""

    text: str = ""
    done: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class PodLogs:
    """The logs of every Pod, by namespace and name."""

    def __init__(self) -> None:
        self._logs: dict[tuple[str, str], _PodLog] = {}

    def write(self, namespace: str, pod: str, text: str, *, done: bool) -> None:
        """Add ``text`` to the Pod's log; ``done``: nothing more will come."""
        log_ = self._logs.setdefault((namespace, pod), _PodLog())
        log_.text += text
        log_.done = done
        log_.changed.set()
        log_.changed = asyncio.Event()

    def replace(self, namespace: str, pod: str, text: str) -> None:
        """Make ``text`` the Pod's whole log, a finished one."""
        log_ = self._logs.setdefault((namespace, pod), _PodLog())
        log_.text = ""
        self.write(namespace, pod, text, done=True)

    async def serve(
        self, request: web.Request, pod: Obj, namespace: str, name: str
    ) -> web.StreamResponse:
        """Answer ``GET .../pods/<name>/log`` for the stored ``pod``."""
        containers = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
        container = request.query.get("container", "")
        if container and container not in containers:
            raise ApiError("BadRequest", f"container {container} is not valid for pod {name}")
        log_ = self._logs.setdefault((namespace, name), _PodLog())
        if request.query.get("follow") not in ("true", "1"):
            text = log_.text
            tail = request.query.get("tailLines")
            if tail is not None and tail.isdigit():
                lines = text.splitlines(keepends=True)
                text = "".join(lines[-int(tail) :]) if int(tail) else ""
            limit = request.query.get("limitBytes")
            if limit is not None and limit.isdigit():
                text = text.encode()[: int(limit)].decode(errors="ignore")
            return web.Response(text=text, content_type="text/plain")
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        sent = 0
        try:
            while True:
                changed = log_.changed
                if len(log_.text) > sent:
                    await response.write(log_.text[sent:].encode())
                    sent = len(log_.text)
                if log_.done:
                    return response
                await changed.wait()
        except ConnectionResetError:
            return response  # the reader hung up
