"""`kubesteps ui`: a small web view of Pipelines, served on 127.0.0.1 with the user's own
credentials (so the user's RBAC applies), like ``kubectl proxy``.

Protection, since any local user and any web page the user opens can reach 127.0.0.1:

- A random token, new at every start, is in the URL printed at start. Its first use sets a
  cookie (HttpOnly, SameSite=Strict, named after the token) and redirects to a URL without
  it; every request but the static assets needs the cookie, or the token in an
  ``X-Kubesteps-Token`` header or ``token`` query parameter.
- The ``Host`` header must be ``127.0.0.1:<port>`` or ``localhost:<port>`` (DNS
  rebinding: a page of another site made to resolve to 127.0.0.1 sends its own name).
- Verbs are POSTs that also need a same-origin ``Origin`` (or ``Sec-Fetch-Site:
  same-origin``) and a JSON body (a cross-site form cannot send one without a preflight,
  which is never granted).
- Pages may not be framed (``frame-ancestors 'none'``): no click-jacking of a verb.

Endpoints (JSON unless said otherwise): ``GET /`` the page; ``GET /static/<file>``;
``GET /api/pipelines`` rows of the list; ``GET /api/pipelines/<ns>/<name>`` one Pipeline;
``.../events``; ``.../logs?step=<step>`` a ``job`` step's Pod logs; ``GET /api/stream`` and
``.../<ns>/<name>/stream`` server-sent events from a watch; ``POST .../<ns>/<name>/<verb>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from aiohttp import web

from kubesteps.actions.job import LABEL_PIPELINE, LABEL_RUN, LABEL_STEP, label_value
from kubesteps.kube.client import ApiError, KubeClient
from kubesteps.pipeline.model import API_VERSION
from kubesteps.ui import model
from kubesteps.ui.verbs import VERBS, VerbRefused

log = logging.getLogger("kubesteps.ui")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
STATIC = {"app.js": "text/javascript", "style.css": "text/css", "index.html": "text/html"}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
# How long a log read may take, and how much of a log is shown (its end).
LOG_TAIL_BYTES = 256 * 1024
HEARTBEAT = 15.0


@dataclass
class Settings:
    """What one start of the UI serves with."""

    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    # None: every namespace the user may list; else only this one.
    namespace: str | None = None
    # Host headers accepted; filled in once the port is known.
    hosts: set[str] = field(default_factory=set)
    # How long a watch stream runs before it is listed and watched afresh.
    watch_seconds: int = 300

    @property
    def cookie(self) -> str:
        return "kubesteps-ui-" + hashlib.sha256(self.token.encode()).hexdigest()[:12]

    def allow_port(self, port: int) -> None:
        self.hosts |= {f"127.0.0.1:{port}", f"localhost:{port}"}


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _api_error(error: ApiError, what: str) -> web.Response:
    """An API server's refusal as the page shows it, in words: RBAC names what was refused."""
    if error.status == 403:
        return _error(403, f"you may not {what}: {error.message}")
    if error.status == 401:
        return _error(401, f"the cluster refused your credentials ({error.message}); check"
                           " your kubeconfig, then start kubesteps ui again")
    if error.status == 404:
        return _error(404, f"not found: {error.message}")
    if error.status == 409:
        return _error(409, f"conflict: {error.message}")
    return _error(502, f"the cluster answered {error.status} {error.reason}: {error.message}")


def _authorized(request: web.Request, settings: Settings) -> bool:
    given = (request.headers.get("X-Kubesteps-Token") or request.cookies.get(settings.cookie)
             or request.query.get("token") or "")
    return hmac.compare_digest(given.encode(), settings.token.encode())


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is not None:
        return origin == f"http://{request.host}"
    return request.headers.get("Sec-Fetch-Site") == "same-origin"


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    settings: Settings = request.app[SETTINGS]
    if request.host not in settings.hosts:
        response: web.StreamResponse = _error(
            403, f"Host {request.host!r} is not served here: open the URL kubesteps ui printed")
    elif request.path.startswith("/static/"):
        response = await handler(request)
    elif not _authorized(request, settings):
        response = _error(401, "this page needs the token of the URL kubesteps ui printed at"
                               " start (it changes at every start)")
    elif request.method not in ("GET", "HEAD") and not _same_origin(request):
        response = _error(403, "cross-site request refused: verbs are taken only from this"
                               " page's own origin")
    elif request.method == "POST" and request.content_type != "application/json":
        response = _error(415, "a verb takes a JSON body (Content-Type: application/json)")
    else:
        response = await handler(request)
    if not response.prepared:
        response.headers.update(SECURITY_HEADERS)
    return response


SETTINGS = web.AppKey("settings", Settings)
API = web.AppKey("api", KubeClient)


def _static(name: str) -> bytes:
    return resources.files("kubesteps.ui").joinpath("static", name).read_bytes()


async def index(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    if "token" in request.query:
        # The token leaves the address bar (and history): the cookie carries it from here.
        response = web.Response(status=303, headers={"Location": "/"})
        response.set_cookie(settings.cookie, settings.token, httponly=True, samesite="Strict",
                            path="/")
        response.headers.update(SECURITY_HEADERS)
        return response
    return web.Response(body=_static("index.html"), content_type="text/html", charset="utf-8")


async def static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in STATIC or name == "index.html":
        return _error(404, f"no static file {name!r}")
    return web.Response(body=_static(name), content_type=STATIC[name], charset="utf-8")


def _scope(request: web.Request) -> str | None:
    """The namespace to list: the query's, else the one the UI was started for (None: all)."""
    settings = request.app[SETTINGS]
    return request.query.get("namespace") or settings.namespace


def _matches(row: Mapping[str, Any], request: web.Request) -> bool:
    phase = request.query.get("phase")
    return not phase or row["phase"] == phase


def _where(scope: str | None) -> str:
    return f"namespace {scope}" if scope else "all namespaces"


async def pipelines(request: web.Request) -> web.StreamResponse:
    api, scope = request.app[API], _scope(request)
    label = request.query.get("label") or None
    try:
        items = await api.list(API_VERSION, "Pipeline", scope, label_selector=label)
    except ApiError as error:
        return _api_error(error, f"list pipelines in {_where(scope)}")
    rows = [model.summary(obj) for obj in items]
    rows = sorted((r for r in rows if _matches(r, request)),
                  key=lambda r: (r["namespace"], r["name"]))
    return web.json_response({"items": rows, "namespace": scope})


async def _pipeline(request: web.Request) -> dict[str, Any] | web.Response:
    api = request.app[API]
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    try:
        obj = await api.get(API_VERSION, "Pipeline", name, namespace)
    except ApiError as error:
        return _api_error(error, f"get pipelines in namespace {namespace}")
    if obj is None:
        return _error(404, f"Pipeline {namespace}/{name} not found")
    return obj


async def pipeline(request: web.Request) -> web.StreamResponse:
    obj = await _pipeline(request)
    if isinstance(obj, web.Response):
        return obj
    return web.json_response(model.detail(obj))


async def events(request: web.Request) -> web.StreamResponse:
    api = request.app[API]
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    selector = f"involvedObject.kind=Pipeline,involvedObject.name={name}"
    try:
        document = await api.request("GET", f"/api/v1/namespaces/{namespace}/events",
                                     params={"fieldSelector": selector})
    except ApiError as error:
        return _api_error(error, f"list events in namespace {namespace}")
    rows = [model.event_row(e) for e in document.get("items") or []]
    rows.sort(key=lambda r: r["time"] or "")
    return web.json_response({"items": rows})


async def logs(request: web.Request) -> web.StreamResponse:
    """The logs of a ``job`` step's Pods in the current run, the newest Job's first."""
    obj = await _pipeline(request)
    if isinstance(obj, web.Response):
        return obj
    api = request.app[API]
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    step = request.query.get("step") or ""
    if not step:
        return _error(400, "say which step: the query parameter 'step' is empty")
    run = ((obj.get("status") or {}).get("run") or {}).get("number")
    selector = f"{LABEL_PIPELINE}={label_value(name)},{LABEL_STEP}={label_value(step)}"
    if run is not None:
        selector += f",{LABEL_RUN}={run}"
    try:
        jobs = await api.list("batch/v1", "Job", namespace, label_selector=selector)
    except ApiError as error:
        return _api_error(error, f"list jobs in namespace {namespace}")
    if not jobs:
        return web.json_response({"items": [], "message": f"step {step!r} has no Job in this run"
                                  " (only job steps have logs)"})
    jobs.sort(key=lambda j: (j.get("metadata") or {}).get("creationTimestamp") or "",
              reverse=True)
    items: list[dict[str, Any]] = []
    for job in jobs:
        job_name = str((job.get("metadata") or {}).get("name"))
        try:
            pods = await api.list("v1", "Pod", namespace, label_selector=f"job-name={job_name}")
        except ApiError as error:
            return _api_error(error, f"list pods in namespace {namespace}")
        if not pods:
            items.append({"job": job_name, "pod": None, "text": "", "message": "no Pod yet"})
        for pod in pods:
            pod_name = str((pod.get("metadata") or {}).get("name"))
            entry = {"job": job_name, "pod": pod_name, "text": "", "message": ""}
            try:
                entry["text"] = await api.text(
                    f"/api/v1/namespaces/{namespace}/pods/{pod_name}/log",
                    {"limitBytes": str(LOG_TAIL_BYTES)})
            except ApiError as error:
                entry["message"] = json.loads(
                    _api_error(error, f"get pods/log in namespace {namespace}").text or "{}"
                ).get("error", "")
            items.append(entry)
    return web.json_response({"items": items})


async def verb(request: web.Request) -> web.StreamResponse:
    name = request.match_info["verb"]
    action = VERBS.get(name)
    if action is None:
        return _error(404, f"no verb {name!r}; the verbs are {', '.join(VERBS)}")
    try:
        params = await request.json()
    except ValueError:
        return _error(400, "the body is not JSON")
    if not isinstance(params, dict):
        return _error(400, "the body must be a JSON object")
    obj = await _pipeline(request)
    if isinstance(obj, web.Response):
        return obj
    namespace = request.match_info["namespace"]
    try:
        message = await action(request.app[API], obj, params)
    except VerbRefused as refused:
        return _error(409, str(refused))
    except ApiError as error:
        return _api_error(error, f"patch pipelines in namespace {namespace}")
    log.info("%s %s/%s: %s", name, namespace, request.match_info["name"], message)
    return web.json_response({"message": message})


async def _sse(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "X-Accel-Buffering": "no", **SECURITY_HEADERS})
    await response.prepare(request)
    return response


async def _send(response: web.StreamResponse, kind: str, data: object) -> None:
    await response.write(f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode())


async def _watched(api: KubeClient, scope: str | None, settings: Settings,
                   label: str | None = None,
                   name: str | None = None) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """A snapshot (``SYNC`` per object) then changes, listed and watched again as needed."""
    while True:
        document = await api.request(
            "GET", (await api.resource(API_VERSION, "Pipeline")).path(scope),
            params={k: v for k, v in (("labelSelector", label),
                                      ("fieldSelector", f"metadata.name={name}" if name else None))
                    if v})
        yield "RESET", {}
        for item in document.get("items") or []:
            yield "SYNC", item
        version = str((document.get("metadata") or {}).get("resourceVersion") or "")
        try:
            async for kind, obj in api.watch(API_VERSION, "Pipeline", scope,
                                             resource_version=version,
                                             timeout_seconds=settings.watch_seconds):
                if kind in ("ADDED", "MODIFIED", "DELETED"):
                    if name is None or (obj.get("metadata") or {}).get("name") == name:
                        yield kind, obj
                elif kind == "ERROR":
                    break  # expired (410) or another watch error: list again
        except ApiError as error:
            if error.status != 410:
                raise


async def _stream(request: web.Request, scope: str | None, name: str | None) -> web.StreamResponse:
    api, settings = request.app[API], request.app[SETTINGS]
    label = request.query.get("label") or None
    try:  # the first list answers with an error page, not a broken stream
        await api.list(API_VERSION, "Pipeline", scope, label_selector=label)
    except ApiError as error:
        return _api_error(error, f"list pipelines in {_where(scope)}")
    response = await _sse(request)
    beat = asyncio.create_task(_heartbeat(response))
    try:
        async for kind, obj in _watched(api, scope, settings, label, name):
            if kind == "RESET":
                await _send(response, "reset", {})
            elif name is None:
                await _send(response, "row", {"type": kind, "row": model.summary(obj)})
            else:
                await _send(response, "pipeline", {"type": kind, "pipeline": model.detail(obj)})
    except ApiError as error:
        await _send(response, "failure", {"error": json.loads(
            _api_error(error, f"watch pipelines in {_where(scope)}").text or "{}")["error"]})
    except (ConnectionResetError, asyncio.CancelledError):
        pass  # the page went away
    finally:
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
    return response


async def _heartbeat(response: web.StreamResponse) -> None:
    with contextlib.suppress(ConnectionResetError, RuntimeError):
        while True:
            await asyncio.sleep(HEARTBEAT)
            await response.write(b": keep-alive\n\n")


async def stream(request: web.Request) -> web.StreamResponse:
    return await _stream(request, _scope(request), None)


async def pipeline_stream(request: web.Request) -> web.StreamResponse:
    return await _stream(request, request.match_info["namespace"], request.match_info["name"])


def make_app(api: KubeClient, settings: Settings) -> web.Application:
    app = web.Application(middlewares=[_guard], client_max_size=64 * 1024)
    app[SETTINGS] = settings
    app[API] = api
    prefix = "/api/pipelines/{namespace}/{name}"
    app.router.add_get("/", index)
    app.router.add_get("/static/{name}", static)
    app.router.add_get("/api/pipelines", pipelines)
    app.router.add_get("/api/stream", stream)
    app.router.add_get(prefix, pipeline)
    app.router.add_get(prefix + "/events", events)
    app.router.add_get(prefix + "/logs", logs)
    app.router.add_get(prefix + "/stream", pipeline_stream)
    app.router.add_post(prefix + "/{verb}", verb)
    return app


@contextlib.asynccontextmanager
async def serving(api: KubeClient, settings: Settings, port: int = 0) -> AsyncIterator[str]:
    """Serve on 127.0.0.1:``port`` (0: a free one); yield the URL with the token."""
    runner = web.AppRunner(make_app(api, settings), access_log=None, handler_cancellation=True,
                           shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    try:
        await site.start()
        bound = runner.addresses[0][1]
        settings.allow_port(bound)
        yield f"http://127.0.0.1:{bound}/?token={settings.token}"
    finally:
        await runner.cleanup()
