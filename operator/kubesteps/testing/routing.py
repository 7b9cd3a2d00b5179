"""The emulator's HTTP front: each request's URL and method to what answers it.

Discovery, ``/version``, the health checks and OpenAPI are answered here; a resource URL is
resolved to its resource, namespace, name and subresource (a ``Target``) and its verb, then
counted, checked against the injected faults and handed to the verbs (``api_verbs``), the
watch streams (``watches``) or the Pods' logs (``pod_logs``). Bodies are decoded and results
encoded as kube-apiserver does it, errors included (a ``Status``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from kubesteps import yamlio
from kubesteps.testing import openapi
from kubesteps.testing.api_verbs import PATCH_TYPES, Api, as_version, deleted
from kubesteps.testing.discovery import Discovery, ResourceInfo
from kubesteps.testing.pod_logs import PodLogs
from kubesteps.testing.selectors import field_selector, label_selector
from kubesteps.testing.status_errors import ApiError
from kubesteps.testing.storage import Obj, Predicate, Store
from kubesteps.testing.tables import table, wants_table
from kubesteps.testing.watches import WatchStreams

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
        return sum(
            n for (v, r), n in self._counts.items() if verb in (None, v) and resource in (None, r)
        )

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

    def matches(self, discovery: Discovery, verb: str, target: Target) -> bool:
        return (
            self.verb in (ANY, verb)
            and (self.resource == ANY or discovery.matches(target.info, self.resource))
            and self.subresource in (ANY, target.subresource)
            and self.namespace in (None, target.namespace)
            and self.name in (None, target.name)
        )

    def error(self) -> ApiError:
        return ApiError(self.reason, self.message, code=self.status, retry_after=self.retry_after)


@dataclass(frozen=True)
class Target:
    """What a resource URL addresses."""

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


class Router:
    """Answers every HTTP request of one emulator, from the parts it is made of.

    ``tokens``: with tokens, only requests bearing one of them are served (401 otherwise);
    None: any. ``faults`` is the emulator's list of injected faults, shared.
    """

    def __init__(
        self,
        *,
        store: Store,
        discovery: Discovery,
        api: Api,
        requests: RequestCounter,
        faults: list[Fault],
        watch_streams: WatchStreams,
        pod_logs: PodLogs,
        tokens: set[str] | None,
    ) -> None:
        self.store = store
        self.discovery = discovery
        self.api = api
        self.requests = requests
        self.faults = faults
        self.watch_streams = watch_streams
        self.pod_logs = pod_logs
        self.tokens = tokens

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{path:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
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
            return _error_response(
                ApiError(
                    "InternalError",
                    f"Internal error occurred: the kubesteps emulator failed on "
                    f"this request ({type(error).__name__}); its log has the traceback",
                )
            )

    def _authenticate(self, request: web.Request) -> None:
        assert self.tokens is not None
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or token not in self.tokens:
            self.requests.record("unauthorized", "")
            raise ApiError("Unauthorized", "Unauthorized")

    def _fault_for(self, verb: str, target: Target) -> ApiError | None:
        for fault in self.faults:
            if fault.matches(self.discovery, verb, target):
                fault.hits += 1
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                return fault.error()
        return None

    async def _route(self, request: web.Request) -> web.StreamResponse:
        parts = [part for part in request.path.split("/") if part]
        if parts and parts[0] == "api" and len(parts) >= 3:
            return await self._serve_resource(request, "", parts[1], parts[2:])
        if parts and parts[0] == "apis" and len(parts) >= 4:
            return await self._serve_resource(request, parts[1], parts[2], parts[3:])
        if request.method != "GET":
            raise ApiError(
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            )
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

    def _target(self, group: str, version: str, rest: list[str]) -> Target:
        namespace: str | None
        if (
            rest[0] == "namespaces"
            and len(rest) >= 3
            and not (group == "" and len(rest) == 3 and rest[2] in ("status", "finalize"))
        ):
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
        return Target(info, namespace, name, subresource)

    @staticmethod
    def _verb(request: web.Request, target: Target) -> str:
        named = target.name is not None
        method = request.method
        if method == "GET":
            if named:
                return "get"
            return "watch" if request.query.get("watch") in ("true", "1") else "list"
        verbs = {
            ("POST", False): "create",
            ("PUT", True): "update",
            ("PATCH", True): "patch",
            ("DELETE", True): "delete",
            ("DELETE", False): "deletecollection",
        }
        verb = verbs.get((method, named))
        if verb is None or (
            verb in ("create", "delete", "deletecollection") and target.subresource is not None
        ):
            raise ApiError(
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            )
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
                return await self.watch_streams.serve(request, info, target.namespace, predicates)
            if verb == "list":
                listing = self.api.list_objects(info, namespace, predicates)
                if info.custom:  # a built-in list's items carry no apiVersion
                    listing["items"] = [as_version(obj, info) for obj in listing["items"]]
                if wants_table(request.headers.get("Accept", "")):
                    return _json_response(
                        table(
                            listing["items"],
                            info.printer_columns,
                            listing["metadata"]["resourceVersion"],
                        )
                    )
                return _json_response(listing)
        if "dryRun" in request.query:
            raise ApiError("BadRequest", "dryRun is not supported by the kubesteps emulator")
        if verb == "get" and target.subresource == "log":
            # A Pod that does not exist has no log: 404.
            pod = self.api.get(info, namespace or "", target.name or "")
            return await self.pod_logs.serve(request, pod, namespace or "", target.name or "")
        if verb == "get":
            obj = self.api.get(info, namespace or "", target.name or "")
            if wants_table(request.headers.get("Accept", "")) and target.subresource is None:
                return _json_response(
                    table(
                        [as_version(obj, info)],
                        info.printer_columns,
                        obj["metadata"]["resourceVersion"],
                    )
                )
            return _json_response(as_version(obj, info))
        if verb in ("delete", "deletecollection"):
            options = await self._delete_options(request)
            if verb == "deletecollection":
                removed = self.api.delete_collection(info, namespace, predicates, options)
                return _json_response(removed)
            name = target.name or ""
            obj = self.api.delete(info, namespace or "", name, options)
            gone = self.store.get(info.storage_key, namespace or "", name) is None
            return _json_response(deleted(info, as_version(obj, info), gone))

        field_validation = request.query.get("fieldValidation", "Warn")
        if field_validation not in FIELD_VALIDATIONS:
            raise ApiError(
                "BadRequest",
                f'fieldValidation: Invalid value: "{field_validation}":'
                ' must be one of "Ignore", "Warn" or "Strict"',
            )
        if verb == "create":
            if namespace is None:
                raise ApiError(
                    "MethodNotAllowed",
                    f"{info.qualified} is namespaced: create it under /namespaces/<namespace>/",
                )
            obj, warnings = self.api.create(
                info, namespace, await self._body(request), field_validation=field_validation
            )
            return _json_response(as_version(obj, info), status=201, warnings=warnings)
        name = target.name or ""
        if verb == "update":
            obj, warnings = self.api.replace(
                info,
                namespace or "",
                name,
                target.subresource,
                await self._body(request),
                field_validation=field_validation,
            )
        else:
            patch_type = PATCH_TYPES.get(request.content_type)
            if patch_type is None:
                raise ApiError(
                    "UnsupportedMediaType",
                    (
                        f"the patch content type {request.content_type!r} is not supported by the"
                        " emulator (server-side apply is not emulated); use one of: "
                        + ", ".join(PATCH_TYPES)
                    ),
                )
            obj, warnings = self.api.patch(
                info,
                namespace or "",
                name,
                target.subresource,
                patch_type,
                await self._decode(request, "json"),
                field_validation=field_validation,
            )
        return _json_response(as_version(obj, info), warnings=warnings)

    @staticmethod
    def _predicates(request: web.Request, info: ResourceInfo) -> list[Predicate]:
        predicates = []
        if request.query.get("labelSelector"):
            predicates.append(label_selector(request.query["labelSelector"]))
        if request.query.get("fieldSelector"):
            predicates.append(
                field_selector(request.query["fieldSelector"], (info.group, info.plural))
            )
        return predicates

    async def _body(self, request: web.Request) -> Any:
        content_type = request.content_type
        if content_type in ("application/yaml", "application/x-yaml"):
            return await self._decode(request, "yaml")
        if content_type in ("application/json", "application/octet-stream", ""):
            return await self._decode(request, "json")
        raise ApiError(
            "UnsupportedMediaType",
            f"the body's content type {content_type!r} is not"
            " supported; send application/json or application/yaml",
        )

    @staticmethod
    async def _decode(request: web.Request, syntax: str) -> Any:
        raw = await request.read()
        try:
            return (
                _int64(yamlio.load(raw))
                if syntax == "yaml"
                else json.loads(raw, parse_int=_json_int)
            )
        except (ValueError, yamlio.YAMLError) as exc:
            raise ApiError(
                "BadRequest", f"the request body could not be decoded as {syntax}: {exc}"
            ) from exc

    async def _delete_options(self, request: web.Request) -> Obj:
        options: Obj = {}
        if request.can_read_body:
            raw = await request.read()
            if raw.strip():
                try:
                    options = json.loads(raw)
                except ValueError as exc:
                    raise ApiError(
                        "BadRequest", f"DeleteOptions could not be decoded: {exc}"
                    ) from exc
                if not isinstance(options, dict):
                    raise ApiError("BadRequest", "DeleteOptions must be a JSON object")
        return options
