"""A fault-injecting proxy in front of a Kubernetes API server (the emulator or a real one).

Clients talk to the proxy as to the server; the proxy forwards each request and, as a
plan decides, answers some of them itself instead:

- ``conflict``: a conditional write (one that carries ``metadata.resourceVersion``) gets
  409 ``Conflict`` and is not applied;
- ``throttle``: 429 ``TooManyRequests`` with ``Retry-After``, not applied;
- ``server_error``: 500, 502, 503 or 504, not applied (the body echoes the request's
  headers, as some servers and proxies do: a client must not copy it anywhere as is);
- ``lost_answer``: the request *is* applied, then the connection is dropped before the
  answer;
- every request waits a random latency first, and every watch stream is cut after a random
  lifetime, some of them with an ``ERROR`` event ``410 Gone`` first (the client must
  re-list).

The default plan, ``SeededPlan``, draws each decision from the seed and the request's
identity (method, path, watch or not, and how many such requests came before), not from
the order in which concurrent requests happen to arrive: the same seed makes the same
requests fail.

Each listener has a label (``serving("replica-a")``), so that several clients (two
operator replicas) can be told apart in what the proxy records.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

# Headers that belong to one hop, not to the request: never forwarded.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
_WRITES = frozenset({"PUT", "PATCH"})
_LABEL = web.AppKey("label", str)


class Fault(enum.Enum):
    CONFLICT = "conflict"
    THROTTLE = "throttle"
    SERVER_ERROR = "server_error"
    LOST_ANSWER = "lost_answer"
    WATCH_CUT = "watch_cut"
    WATCH_GONE = "watch_gone"


@dataclass(frozen=True)
class FaultRates:
    """How often each fault happens (probabilities per request), and how long things take."""

    conflict: float = 0.05  # of conditional writes
    throttle: float = 0.03
    server_error: float = 0.03
    lost_answer: float = 0.01  # of writes
    latency: float = 0.1  # seconds, at most, before a request is forwarded
    retry_after: int = 1  # seconds, in a 429's Retry-After
    watch_lifetime: tuple[float, float] = (1.0, 6.0)  # seconds a watch lasts before a cut
    watch_gone: float = 0.5  # of cut watches: an ERROR 410 Gone first

    def __post_init__(self) -> None:
        for name in ("conflict", "throttle", "server_error", "lost_answer", "watch_gone"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"FaultRates.{name} must be a probability in 0..1, got {value}")
        if self.throttle + self.server_error + self.lost_answer > 1.0:
            raise ValueError("FaultRates: throttle + server_error + lost_answer must not exceed 1")
        low, high = self.watch_lifetime
        if not 0 < low <= high:
            raise ValueError(
                "FaultRates.watch_lifetime must be (low, high) with 0 < low <= high,"
                f" got {self.watch_lifetime}"
            )
        if self.latency < 0 or self.retry_after < 0:
            raise ValueError("FaultRates.latency and retry_after must be >= 0")


@dataclass(frozen=True)
class ProxiedRequest:
    """What the plan sees of a request."""

    label: str  # the listener it came through
    method: str
    path: str  # without the query
    query: dict[str, str]
    body: bytes

    @property
    def watch(self) -> bool:
        return self.method == "GET" and self.query.get("watch") in ("1", "true")

    @property
    def write(self) -> bool:
        return self.method in ("POST", "PUT", "PATCH", "DELETE")

    @property
    def conditional(self) -> bool:
        """A write that names the resourceVersion it expects (a stale one gets 409)."""
        if self.method not in _WRITES or not self.body:
            return False
        try:
            document = json.loads(self.body)
        except ValueError:
            return False
        meta = document.get("metadata") if isinstance(document, dict) else None
        return isinstance(meta, dict) and bool(meta.get("resourceVersion"))


@dataclass(frozen=True)
class Decision:
    """What happens to one request: a fault (or none), the latency, and for a watch its
    lifetime and whether it ends with 410 Gone."""

    fault: Fault | None = None
    latency: float = 0.0
    status: int = 0
    lifetime: float = 0.0
    retry_after: int = 1  # seconds, for a 429


Plan = Callable[[ProxiedRequest], Decision]


class SeededPlan:
    """Faults at the given rates, reproducible from a seed (see the module docstring)."""

    def __init__(self, seed: int, rates: FaultRates | None = None) -> None:
        self.seed = seed
        self.rates = rates or FaultRates()
        self._seen: Counter[tuple[str, str, str]] = Counter()
        self.enabled = True

    def __call__(self, request: ProxiedRequest) -> Decision:
        # Not the query: a watch's resourceVersion differs from run to run.
        key = (request.method, request.path, "watch" if request.watch else "")
        self._seen[key] += 1
        rng = random.Random(f"{self.seed}|{'|'.join(key)}|{self._seen[key]}")
        rates = self.rates
        latency = rng.uniform(0, rates.latency)
        if not self.enabled:
            return Decision(latency=0.0)
        if request.watch:
            low, high = rates.watch_lifetime
            gone = rng.random() < rates.watch_gone
            return Decision(
                Fault.WATCH_GONE if gone else Fault.WATCH_CUT,
                latency,
                lifetime=rng.uniform(low, high),
            )
        if request.conditional and rng.random() < rates.conflict:
            return Decision(Fault.CONFLICT, latency, 409)
        draw = rng.random()
        if draw < rates.throttle:
            return Decision(Fault.THROTTLE, latency, 429, retry_after=rates.retry_after)
        draw -= rates.throttle
        if draw < rates.server_error:
            return Decision(Fault.SERVER_ERROR, latency, rng.choice((500, 502, 503, 504)))
        draw -= rates.server_error
        if request.write and draw < rates.lost_answer:
            return Decision(Fault.LOST_ANSWER, latency)
        return Decision(latency=latency)


@dataclass
class Record:
    """What the proxy did, for a test's checks and a run's figures."""

    faults: Counter[Fault] = field(default_factory=Counter)
    requests: Counter[str] = field(default_factory=Counter)  # by label
    # (label, path) of watch streams that ended with 410 Gone and have not been re-listed.
    awaiting_relist: Counter[tuple[str, str]] = field(default_factory=Counter)
    relisted: int = 0


Observer = Callable[[ProxiedRequest], None]


class ChaosProxy:
    """The proxy: ``async with proxy.serving("label") as url`` opens a listener."""

    def __init__(
        self,
        upstream: str,
        plan: Plan,
        *,
        observer: Observer | None = None,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.plan = plan
        # Told of every request the proxy forwards, just before it is forwarded (a check
        # that two replicas never both act looks at the writes here).
        self.observer = observer
        self.record = Record()
        self._session: aiohttp.ClientSession | None = None
        self._streams: set[web.StreamResponse] = set()

    @contextlib.asynccontextmanager
    async def serving(
        self, label: str = "client", host: str = "127.0.0.1", port: int = 0
    ) -> AsyncIterator[str]:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, sock_read=None),
                auto_decompress=False,
            )
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app[_LABEL] = label
        app.router.add_route("*", "/{path:.*}", self._handle)
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        address = runner.addresses[0]
        try:
            yield f"http://{address[0]}:{address[1]}"
        finally:
            await runner.cleanup()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        proxied = ProxiedRequest(
            label=request.app[_LABEL],
            method=request.method,
            path=request.path,
            query=dict(request.query),
            body=await request.read(),
        )
        self.record.requests[proxied.label] += 1
        self._note_relist(proxied)
        decision = self.plan(proxied)
        if decision.latency:
            await asyncio.sleep(decision.latency)
        fault = decision.fault
        if fault in (Fault.CONFLICT, Fault.THROTTLE, Fault.SERVER_ERROR):
            self.record.faults[fault] += 1
            return self._refusal(request, decision)
        if self.observer is not None:
            self.observer(proxied)
        if proxied.watch:
            return await self._watch(request, proxied, decision)
        assert self._session is not None
        async with self._session.request(
            proxied.method,
            self._url(request),
            data=proxied.body or None,
            headers=_forwarded(request.headers),
            allow_redirects=False,
        ) as upstream:
            body = await upstream.read()
            if fault is Fault.LOST_ANSWER:
                self.record.faults[fault] += 1
                # Applied upstream; the client never hears of it.
                if request.transport is not None:
                    request.transport.abort()
                raise asyncio.CancelledError  # aiohttp ends the handler without a response
            response = web.Response(status=upstream.status, body=body)
            for name, value in upstream.headers.items():
                if name.lower() not in _HOP_BY_HOP and name.lower() != "content-encoding":
                    response.headers.add(name, value)
            return response

    def _url(self, request: web.Request) -> str:
        return self.upstream + request.rel_url.raw_path_qs

    def _note_relist(self, proxied: ProxiedRequest) -> None:
        if proxied.method != "GET" or proxied.watch:
            return
        key = (proxied.label, proxied.path)
        if self.record.awaiting_relist[key] > 0:
            self.record.relisted += self.record.awaiting_relist.pop(key)

    def _refusal(self, request: web.Request, decision: Decision) -> web.Response:
        reasons = {
            409: "Conflict",
            429: "TooManyRequests",
            500: "InternalError",
            502: "BadGateway",
            503: "ServiceUnavailable",
            504: "Timeout",
        }
        message = f"injected by the chaos proxy: {reasons[decision.status]}"
        if decision.fault is Fault.SERVER_ERROR:
            # Some servers and proxies answer with the request as they got it.
            echoed = "; ".join(f"{k}: {v}" for k, v in request.headers.items())
            message += f" (request headers: {echoed})"
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reasons[decision.status],
            "code": decision.status,
        }
        response = web.json_response(status, status=decision.status)
        if decision.status == 429:
            response.headers["Retry-After"] = str(decision.retry_after)
        return response

    async def _watch(
        self, request: web.Request, proxied: ProxiedRequest, decision: Decision
    ) -> web.StreamResponse:
        assert self._session is not None
        response = web.StreamResponse()
        async with self._session.get(
            self._url(request), headers=_forwarded(request.headers)
        ) as upstream:
            response.set_status(upstream.status)
            response.content_type = upstream.content_type or "application/json"
            await response.prepare(request)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + decision.lifetime if decision.lifetime else None
            try:
                while True:
                    timeout = None if deadline is None else deadline - loop.time()
                    if timeout is not None and timeout <= 0:
                        break
                    try:
                        line = await asyncio.wait_for(upstream.content.readline(), timeout)
                    except TimeoutError:
                        break
                    if not line:
                        return response  # the server ended the watch itself
                    await response.write(line)
                if decision.fault is Fault.WATCH_GONE:
                    self.record.faults[Fault.WATCH_GONE] += 1
                    self.record.awaiting_relist[(proxied.label, proxied.path)] += 1
                    await response.write(_gone_event())
                elif decision.fault is Fault.WATCH_CUT:
                    self.record.faults[Fault.WATCH_CUT] += 1
            except (ConnectionResetError, aiohttp.ClientError):
                pass  # either side hung up: the stream is over
        return response


def _forwarded(headers: Any) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}


def _gone_event() -> bytes:
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "too old resource version (injected by the chaos proxy)",
        "reason": "Expired",
        "code": 410,
    }
    return json.dumps({"type": "ERROR", "object": status}).encode() + b"\n"
