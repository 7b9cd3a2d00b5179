"""The Kubernetes API emulator: an aiohttp server speaking enough of kube-apiserver's HTTP API
for kopf, ``kubectl --validate=false`` and kubernetes-asyncio.

In tests::

    emulator = Emulator()
    async with emulator.serving() as url:
        ...

Standalone (for demos and manual poking)::

    python -m kubesteps.testing --port 8080 --kubeconfig /tmp/kubeconfig \\
        --crd crds/pipelines.kubesteps.dev.yaml
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import json
import logging
import random
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from kubesteps import yamlio
from kubesteps.testing import openapi
from kubesteps.testing.api_verbs import PATCH_TYPES, Api, Clock, deleted
from kubesteps.testing.discovery import Discovery, ResourceInfo
from kubesteps.testing.kubeconfig import write_kubeconfig
from kubesteps.testing.selectors import field_selector, label_selector
from kubesteps.testing.status_errors import CODE_REASONS, ApiError
from kubesteps.testing.storage import Event, Obj, Predicate, Store, Watcher
from kubesteps.testing.tables import table, wants_table

KUBERNETES_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-kubesteps-emulator",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.23",
    "compiler": "gc",
    "platform": "linux/amd64",
}
FIELD_VALIDATIONS = ("Ignore", "Warn", "Strict")
log = logging.getLogger("kubesteps.testing")
ANY = "*"


class RequestCounter:
    """Requests counted by verb and resource: bounded memory however long a benchmark runs."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()

    def record(self, verb: str, resource: str) -> None:
        self._counts[(verb, resource)] += 1

    def count(self, verb: str | None = None, resource: str | None = None) -> int:
        return sum(n for (v, r), n in self._counts.items()
                   if verb in (None, v) and resource in (None, r))

    @property
    def total(self) -> int:
        return sum(self._counts.values())

    def snapshot(self) -> dict[tuple[str, str], int]:
        return dict(self._counts)

    def reset(self) -> None:
        self._counts.clear()


@dataclass
class Fault:
    """An injected failure: matching requests get the error and are *not* applied."""

    verb: str
    resource: str
    subresource: str | None
    namespace: str | None
    name: str | None
    status: int
    reason: str
    message: str
    times: int | None
    retry_after: int | None
    hits: int = 0

    def matches(self, discovery: Discovery, verb: str, target: _Target) -> bool:
        return (
            self.verb in (ANY, verb)
            and (self.resource == ANY or discovery.matches(target.info, self.resource))
            and self.subresource in (ANY, target.subresource)
            and self.namespace in (None, target.namespace)
            and self.name in (None, target.name)
        )

    def error(self) -> ApiError:
        return ApiError(self.reason, self.message, code=self.status, retry_after=self.retry_after)


@dataclass
class _PodLog:
    """A Pod's log as a test wrote it; ``changed`` is set (and replaced) on every write."""

    text: str = ""
    done: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(frozen=True)
class _Target:
    info: ResourceInfo
    namespace: str | None  # None: all namespaces of a namespaced resource
    name: str | None
    subresource: str | None

    @property
    def label(self) -> str:
        return self.info.qualified + (f"/{self.subresource}" if self.subresource else "")


def _json_response(body: Any, status: int = 200, warnings: Sequence[str] = ()) -> web.Response:
    response = web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
    )
    for warning in warnings:
        escaped = warning.replace("\\", "\\\\").replace('"', '\\"')
        response.headers.add("Warning", f'299 - "{escaped}"')
    return response


def _error_response(error: ApiError) -> web.Response:
    response = _json_response(error.status(), status=error.code)
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def _json_int(text: str) -> int | float:
    """A JSON integer as a real server decodes it: past int64, a float."""
    value = int(text)
    return value if -(2**63) <= value < 2**63 else float(value)


def _int64(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _int64(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_int64(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return _json_int(str(value))
    return value


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
    versioned = _as_version(obj, info)
    return versioned if as_table is None else as_table(versioned)


def _as_version(obj: Obj, info: ResourceInfo) -> Obj:
    """Objects are stored once per resource; each served version shows its own apiVersion."""
    if obj.get("apiVersion") == info.api_version:
        return obj
    return {**obj, "apiVersion": info.api_version}


class Emulator:
    """A stateful Kubernetes API: storage, discovery, watches, fault injection and accounting.

    All state lives in the event loop that serves it; the Python helpers (``register_crd``,
    ``inject``, ``object``) must be called from that loop's thread.
    """

    def __init__(
        self,
        *,
        history_size: int = 10_000,
        bookmark_interval: float = 60.0,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        tokens: Iterable[str] | None = None,
    ) -> None:
        self.store = Store(history_size=history_size)
        # With tokens, only requests bearing one of them are served (401 otherwise), as a real
        # server checks credentials; a test may change the set (a rotation). None: any.
        self.tokens: set[str] | None = None if tokens is None else set(tokens)
        self.discovery = Discovery()
        self.api = Api(self.store, self.discovery, clock=clock, rng=rng)
        self.requests = RequestCounter()
        self.bookmark_interval = bookmark_interval
        self.url: str | None = None
        self._faults: list[Fault] = []
        # Set (and replaced by a fresh one) whenever a watch stream opens.
        self._watch_opened = asyncio.Event()
        self._pod_logs: dict[tuple[str, str], _PodLog] = {}

    # -- the Python-side API for tests ---------------------------------------------------------

    def register_crd(self, crd: Obj) -> Obj:
        """Create a CustomResourceDefinition; its kind is discoverable and served at once."""
        return self.api.register_crd(crd)

    def resource(self, name: str) -> ResourceInfo:
        """Find a served resource by plural, kind, short name, ``plural.group`` or
        ``group/version/plural``."""
        for info in self.discovery:
            if self.discovery.matches(info, name):
                return info
        raise LookupError(f"no served resource matches {name!r}; served: "
                          + ", ".join(sorted({i.qualified for i in self.discovery})))

    def object(self, resource: str, name: str, namespace: str = "") -> Obj | None:
        """The stored object, or None: for assertions that should not go through HTTP."""
        info = self.resource(resource)
        return self.store.get(info.storage_key, namespace if info.namespaced else "", name)

    def watches(self, resource: str) -> int:
        """How many watch streams are open on a resource right now."""
        try:
            info = self.resource(resource)
        except LookupError:
            return 0
        return self.store.watchers(info.storage_key)

    def observe(self, resource: str, observer: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``observer(event)`` with every write of ``resource`` the moment it is stored
        (``event.type``, ``event.obj``, ``event.old``); returns a function that stops it.

        Unlike a watch it cannot lag behind, lose events or be cut: for checks that must
        know when something was stored (the chaos suite's "no step ran again after its
        success was stored"). It must not block or raise.
        """
        return self.store.observe(self.resource(resource).storage_key, observer)

    async def wait_for_watch(self, resource: str) -> None:
        """Wait until some client (e.g. a kopf operator) watches ``resource``.

        Bound it with ``asyncio.timeout()``: the resource may never be watched.
        """
        while not self.watches(resource):
            await self._watch_opened.wait()

    def inject(
        self,
        *,
        verb: str = ANY,
        resource: str = ANY,
        subresource: str | None = ANY,
        namespace: str | None = None,
        name: str | None = None,
        status: int = 500,
        reason: str | None = None,
        message: str | None = None,
        times: int | None = 1,
        retry_after: int | None = None,
    ) -> Fault:
        """Fail the next ``times`` matching requests (``None``: until ``clear_faults()``).

        ``verb`` is a Kubernetes verb (get, list, watch, create, update, patch, delete,
        deletecollection); ``subresource=None`` matches only the main resource,
        ``"status"`` only the status subresource, ``"*"`` both. A failed write is not applied.
        """
        if status < 400:
            raise ValueError(f"status={status}: an injected fault must be an error (400..599)")
        reason = reason or CODE_REASONS.get(status, "InternalError")
        if status == 429 and retry_after is None:
            retry_after = 1
        fault = Fault(
            verb=verb, resource=resource, subresource=subresource, namespace=namespace, name=name,
            status=status, reason=reason, message=message or f"injected fault: {reason}",
            times=times, retry_after=retry_after,
        )
        self._faults.append(fault)
        return fault

    def write_pod_log(self, namespace: str, pod: str, text: str, *, done: bool = True) -> None:
        """Add ``text`` to what ``GET .../pods/<pod>/log`` serves (no kubelet runs here, so a
        test plays its part). ``done=False``: a reader following the log (``follow=true``)
        waits for more; ``done=True`` ends its stream once it has read everything."""
        log_ = self._pod_logs.setdefault((namespace, pod), _PodLog())
        log_.text += text
        log_.done = done
        log_.changed.set()
        log_.changed = asyncio.Event()

    def set_log(self, namespace: str, pod: str, text: str) -> None:
        """Replace what ``GET .../pods/<pod>/log`` serves with ``text``, a finished log
        (``tailLines`` and ``limitBytes`` apply as a kubelet would apply them)."""
        log_ = self._pod_logs.setdefault((namespace, pod), _PodLog())
        log_.text = ""
        self.write_pod_log(namespace, pod, text, done=True)

    def clear_faults(self) -> None:
        self._faults.clear()

    def _fault_for(self, verb: str, target: _Target) -> ApiError | None:
        for fault in self._faults:
            if fault.matches(self.discovery, verb, target):
                fault.hits += 1
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                return fault.error()
        return None

    # -- serving -------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{path:.*}", self._handle)
        return app

    @contextlib.asynccontextmanager
    async def serving(self, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        """Serve on ``host:port`` (0: a free port) and yield the base URL."""
        # handler_cancellation: a client hanging up on a watch ends its stream at once.
        runner = web.AppRunner(
            self.app(), access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        address = runner.addresses[0]
        self.url = f"http://{address[0]}:{address[1]}"
        try:
            yield self.url
        finally:
            self.store.stop_watchers()
            await runner.cleanup()
            self.url = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            if self.tokens is not None:
                self._authenticate(request)
            return await self._route(request)
        except ApiError as error:
            return _error_response(error)
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as error:  # a bug of ours: a Status, as a real server answers one
            log.exception("the emulator failed on %s %s", request.method, request.path_qs)
            return _error_response(ApiError(
                "InternalError", f"Internal error occurred: the kubesteps emulator failed on "
                f"this request ({type(error).__name__}); its log has the traceback"))

    def _authenticate(self, request: web.Request) -> None:
        assert self.tokens is not None
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or token not in self.tokens:
            self.requests.record("unauthorized", "")
            raise ApiError("Unauthorized", "Unauthorized")

    async def _route(self, request: web.Request) -> web.StreamResponse:
        parts = [part for part in request.path.split("/") if part]
        if parts and parts[0] == "api" and len(parts) >= 3:
            return await self._serve_resource(request, "", parts[1], parts[2:])
        if parts and parts[0] == "apis" and len(parts) >= 4:
            return await self._serve_resource(request, parts[1], parts[2], parts[3:])
        if request.method != "GET":
            raise ApiError("MethodNotAllowed",
                           "the server does not allow this method on the requested resource")
        self.requests.record("get", "discovery")
        if parts in (["healthz"], ["livez"], ["readyz"]):
            return web.Response(text="ok")
        if parts == ["version"]:
            return _json_response(KUBERNETES_VERSION)
        if parts == ["api"]:
            return _json_response(self.discovery.api_versions())
        if len(parts) == 2 and parts[0] == "api":
            return _json_response(self.discovery.resource_list("", parts[1]))
        if parts == ["apis"]:
            return _json_response(self.discovery.group_list())
        if len(parts) == 2 and parts[0] == "apis":
            return _json_response(self.discovery.group(parts[1]))
        if len(parts) == 3 and parts[0] == "apis":
            return _json_response(self.discovery.resource_list(parts[1], parts[2]))
        if parts[:2] == ["openapi", "v3"]:
            return self._openapi("/".join(parts[2:]))
        raise ApiError("NotFound", "the server could not find the requested resource")

    def _openapi(self, path: str) -> web.Response:
        """``/openapi/v3`` and its documents (there is no ``/openapi/v2``: kubectl asks for
        v3 first, and needs v2 only from servers without it)."""
        served = openapi.documents(self.discovery, self.api.schema)
        if not path:
            return _json_response(openapi.index(served))
        if path not in served:
            raise ApiError("NotFound", "the server could not find the requested resource")
        return _json_response(served[path])

    def _target(self, group: str, version: str, rest: list[str]) -> _Target:
        namespace: str | None
        if (rest[0] == "namespaces" and len(rest) >= 3
                and not (group == "" and len(rest) == 3 and rest[2] in ("status", "finalize"))):
            namespace, rest = rest[1], rest[2:]
        else:
            namespace = None
        if len(rest) > 3:
            raise ApiError("NotFound", "the server could not find the requested resource")
        info = self.discovery.lookup(group, version, rest[0])
        name = rest[1] if len(rest) > 1 else None
        subresource = rest[2] if len(rest) > 2 else None
        if namespace is not None and not info.namespaced:
            raise ApiError("NotFound", "the server could not find the requested resource")
        if info.namespaced and name is not None and namespace is None:
            raise ApiError("NotFound", "the server could not find the requested resource")
        if subresource is not None and subresource not in info.subresources:
            raise ApiError("NotFound", "the server could not find the requested resource")
        if not info.namespaced:
            namespace = ""
        return _Target(info, namespace, name, subresource)

    @staticmethod
    def _verb(request: web.Request, target: _Target) -> str:
        named = target.name is not None
        method = request.method
        if method == "GET":
            if named:
                return "get"
            return "watch" if request.query.get("watch") in ("true", "1") else "list"
        verbs = {
            ("POST", False): "create", ("PUT", True): "update", ("PATCH", True): "patch",
            ("DELETE", True): "delete", ("DELETE", False): "deletecollection",
        }
        verb = verbs.get((method, named))
        if verb is None or (verb in ("create", "delete", "deletecollection")
                            and target.subresource is not None):
            raise ApiError("MethodNotAllowed",
                           "the server does not allow this method on the requested resource")
        return verb

    async def _serve_resource(
        self, request: web.Request, group: str, version: str, rest: list[str]
    ) -> web.StreamResponse:
        target = self._target(group, version, rest)
        verb = self._verb(request, target)
        self.requests.record(verb, target.label)
        fault = self._fault_for(verb, target)
        if fault is not None:
            return _error_response(fault)
        info, namespace = target.info, target.namespace
        if verb in ("list", "watch", "deletecollection"):
            predicates = self._predicates(request, info)
            if verb == "watch":
                return await self._watch(request, target, predicates)
            if verb == "list":
                listing = self.api.list_objects(info, namespace, predicates)
                if info.custom:  # a built-in list's items carry no apiVersion
                    listing["items"] = [_as_version(obj, info) for obj in listing["items"]]
                if wants_table(request.headers.get("Accept", "")):
                    return _json_response(table(
                        listing["items"], info.printer_columns,
                        listing["metadata"]["resourceVersion"]))
                return _json_response(listing)
        if "dryRun" in request.query:
            raise ApiError("BadRequest", "dryRun is not supported by the kubesteps emulator")
        if verb == "get" and target.subresource == "log":
            return await self._pod_log(request, namespace or "", target.name or "", info)
        if verb == "get":
            obj = self.api.get(info, namespace or "", target.name or "")
            if wants_table(request.headers.get("Accept", "")) and target.subresource is None:
                return _json_response(table(
                    [_as_version(obj, info)], info.printer_columns,
                    obj["metadata"]["resourceVersion"]))
            return _json_response(_as_version(obj, info))
        if verb in ("delete", "deletecollection"):
            options = await self._delete_options(request)
            if verb == "deletecollection":
                removed = self.api.delete_collection(info, namespace, predicates, options)
                return _json_response(removed)
            name = target.name or ""
            obj = self.api.delete(info, namespace or "", name, options)
            gone = self.store.get(info.storage_key, namespace or "", name) is None
            return _json_response(deleted(info, _as_version(obj, info), gone))

        field_validation = request.query.get("fieldValidation", "Warn")
        if field_validation not in FIELD_VALIDATIONS:
            raise ApiError("BadRequest", f'fieldValidation: Invalid value: "{field_validation}":'
                                         ' must be one of "Ignore", "Warn" or "Strict"')
        if verb == "create":
            if namespace is None:
                raise ApiError("MethodNotAllowed", f"{info.qualified} is namespaced: create it"
                                                   " under /namespaces/<namespace>/")
            obj, warnings = self.api.create(
                info, namespace, await self._body(request), field_validation=field_validation)
            return _json_response(_as_version(obj, info), status=201, warnings=warnings)
        name = target.name or ""
        if verb == "update":
            obj, warnings = self.api.replace(
                info, namespace or "", name, target.subresource, await self._body(request),
                field_validation=field_validation)
        else:
            patch_type = PATCH_TYPES.get(request.content_type)
            if patch_type is None:
                raise ApiError("UnsupportedMediaType", (
                    f"the patch content type {request.content_type!r} is not supported by the"
                    " emulator (server-side apply is not emulated); use one of: "
                    + ", ".join(PATCH_TYPES)))
            obj, warnings = self.api.patch(
                info, namespace or "", name, target.subresource, patch_type,
                await self._decode(request, "json"), field_validation=field_validation)
        return _json_response(_as_version(obj, info), warnings=warnings)

    @staticmethod
    def _predicates(request: web.Request, info: ResourceInfo) -> list[Predicate]:
        predicates = []
        if request.query.get("labelSelector"):
            predicates.append(label_selector(request.query["labelSelector"]))
        if request.query.get("fieldSelector"):
            predicates.append(
                field_selector(request.query["fieldSelector"], (info.group, info.plural)))
        return predicates

    async def _body(self, request: web.Request) -> Any:
        content_type = request.content_type
        if content_type in ("application/yaml", "application/x-yaml"):
            return await self._decode(request, "yaml")
        if content_type in ("application/json", "application/octet-stream", ""):
            return await self._decode(request, "json")
        raise ApiError("UnsupportedMediaType", f"the body's content type {content_type!r} is not"
                       " supported; send application/json or application/yaml")

    @staticmethod
    async def _decode(request: web.Request, syntax: str) -> Any:
        raw = await request.read()
        try:
            return _int64(yamlio.load(raw)) if syntax == "yaml" else json.loads(
                raw, parse_int=_json_int)
        except (ValueError, yamlio.YAMLError) as exc:
            raise ApiError("BadRequest", f"the request body could not be decoded as {syntax}:"
                                         f" {exc}") from exc

    async def _delete_options(self, request: web.Request) -> Obj:
        options: Obj = {}
        if request.can_read_body:
            raw = await request.read()
            if raw.strip():
                try:
                    options = json.loads(raw)
                except ValueError as exc:
                    raise ApiError(
                        "BadRequest", f"DeleteOptions could not be decoded: {exc}") from exc
                if not isinstance(options, dict):
                    raise ApiError("BadRequest", "DeleteOptions must be a JSON object")
        return options

    async def _pod_log(
        self, request: web.Request, namespace: str, name: str, info: ResourceInfo
    ) -> web.StreamResponse:
        pod = self.api.get(info, namespace, name)  # a Pod that does not exist has no log: 404
        containers = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
        container = request.query.get("container", "")
        if container and container not in containers:
            raise ApiError("BadRequest", f"container {container} is not valid for pod {name}")
        log_ = self._pod_logs.setdefault((namespace, name), _PodLog())
        if request.query.get("follow") not in ("true", "1"):
            text = log_.text
            tail = request.query.get("tailLines")
            if tail is not None and tail.isdigit():
                lines = text.splitlines(keepends=True)
                text = "".join(lines[-int(tail):]) if int(tail) else ""
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

    # -- watching ------------------------------------------------------------------------------

    async def _watch(
        self, request: web.Request, target: _Target, predicates: list[Predicate]
    ) -> web.StreamResponse:
        query = request.query
        info = target.info
        since = query.get("resourceVersion", "")
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        initial_events = query.get("sendInitialEvents") == "true"
        try:
            timeout = float(query["timeoutSeconds"]) if "timeoutSeconds" in query else None
            since_revision = int(since) if since not in ("", "0") else None
        except ValueError as exc:
            raise ApiError("BadRequest", f"invalid watch parameter: {exc}") from exc

        as_table = wants_table(request.headers.get("Accept", ""))
        watcher = Watcher(namespace=target.namespace or None, predicates=tuple(predicates))
        # Subscribing and taking the backlog happen without yielding to the loop: no write
        # can slip in between, so the stream neither loses nor repeats an event.
        self.store.subscribe(info.storage_key, watcher)
        self._watch_opened.set()
        self._watch_opened = asyncio.Event()
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
                        response, "BOOKMARK", self._bookmark(info, revision, initial=True))
                await self._stream(response, watcher, info, duration=timeout, bookmarks=bookmarks,
                                   shown=shown)
            except ConnectionResetError:
                pass  # the client hung up: the watch is over, nothing to report
            return response
        finally:
            self.store.unsubscribe(info.storage_key, watcher)

    async def _stream(
        self, response: web.StreamResponse, watcher: Watcher, info: ResourceInfo,
        *, duration: float | None, bookmarks: bool, shown: _TableEvents | None,
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


async def serve(
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    crd_files: Sequence[Path] = (),
    kubeconfig: Path | None = None,
) -> None:
    """Run an emulator until cancelled, e.g. for ``make demo``."""
    emulator = Emulator()
    for path in crd_files:
        for document in yamlio.load_all(path.read_text()):
            if document:
                emulator.register_crd(document)
    async with emulator.serving(host, port) as url:
        if kubeconfig is not None:
            write_kubeconfig(kubeconfig, url)
        print(f"Kubernetes API emulator serving on {url}", flush=True)
        await asyncio.Event().wait()


def _in_background(argv: Sequence[str], parser: argparse.ArgumentParser) -> None:
    """Start the emulator as a process of its own and return once it serves, so that the
    next command (``kubectl apply``) finds it up: a shell's ``&`` would race it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "kubesteps.testing", *argv],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        start_new_session=True, text=True,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    line = process.stdout.readline().strip()  # the first line says it serves, or nothing
    if not line.startswith("Kubernetes API emulator serving on"):
        process.wait()
        parser.exit(1, process.stderr.read())
    process.stdout.close()
    process.stderr.close()
    print(f"{line} in the background (pid {process.pid}; kill {process.pid} stops it)",
          flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m kubesteps.testing",
        description="Serve an in-memory Kubernetes API for kubectl, kopf and"
                    " kubernetes-asyncio.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument("--crd", type=Path, action="append", default=[],
                        help="a CRD manifest (YAML) to register at start; repeatable")
    parser.add_argument("--kubeconfig", type=Path,
                        help="write a kubeconfig pointing at the emulator to this path")
    parser.add_argument("--background", action="store_true",
                        help="serve from a process of its own; return once it serves")
    args = parser.parse_args(argv)
    for path in args.crd:
        if not path.is_file():
            parser.error(f"--crd {path}: no such file")
    if args.background:
        given = list(sys.argv[1:] if argv is None else argv)
        _in_background([arg for arg in given if arg != "--background"], parser)
        return
    try:
        asyncio.run(serve(args.host, args.port, crd_files=args.crd, kubeconfig=args.kubeconfig))
    except KeyboardInterrupt:
        sys.exit(0)
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        parser.exit(1, f"{parser.prog}: error: port {args.port} is in use (another emulator?);"
                       " pick another with --port, or --port 0 for a free one\n")
