"""An HTTP server for http steps that sends the request's headers back, as careless servers
do, and remembers every call: the redaction tests and the chaos suite use it.

``GET /calls/{pipeline}/{step}``: the first ``fail`` calls of that pair (query parameter,
default 0) answer 503 with the headers echoed in a text body; later ones answer 200 with
them in a JSON body. ``?status=N`` answers N every time, echoing too.
"""

from __future__ import annotations

import base64
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Call:
    pipeline: str
    step: str
    at: float  # time.monotonic() when the call arrived
    authorization: str


@dataclass
class EchoServer:
    url: str = ""
    calls: list[Call] = field(default_factory=list)
    _seen: Counter[tuple[str, str]] = field(default_factory=Counter)

    async def handle(self, request: web.Request) -> web.Response:
        pipeline, step = request.match_info["pipeline"], request.match_info["step"]
        authorization = request.headers.get("Authorization", "")
        self.calls.append(Call(pipeline, step, time.monotonic(), authorization))
        self._seen[(pipeline, step)] += 1
        credential = authorization.rpartition(" ")[2]
        echoed = {
            **request.headers,
            "X-Credential-B64": base64.b64encode(credential.encode()).decode(),
        }
        if "status" in request.query:
            status = int(request.query["status"])
        elif self._seen[(pipeline, step)] <= int(request.query.get("fail", "0")):
            status = 503
        else:
            status = 200
        if status < 400:
            return web.json_response({"echo": echoed})
        lines = " ".join(f"{name}: {value}" for name, value in sorted(echoed.items()))
        return web.Response(status=status, text=f"cannot serve this request. {lines}")

    def calls_of(self, pipeline: str, step: str) -> list[Call]:
        return [c for c in self.calls if (c.pipeline, c.step) == (pipeline, step)]


@asynccontextmanager
async def echo_server() -> AsyncIterator[EchoServer]:
    server = EchoServer()
    app = web.Application()
    app.router.add_get("/calls/{pipeline}/{step}", server.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    server.url = f"http://{host}:{port}"
    try:
        yield server
    finally:
        await runner.cleanup()
