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
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from aiohttp import web

from kubesteps import views
from kubesteps.kube.client import KubeClient
from kubesteps.kube.meta import meta_of
from kubesteps.ui import payloads
from kubesteps.views import (
    VERB_NAMES,
    ApiFailed,
    Forbidden,
    NotApplicable,
    PipelineNotFound,
    StepNotFound,
    VerbIgnored,
    VerbResult,
    ViewError,
    get_pipeline,
    pipeline_view,
    pod_log,
    step_pods,
    watch_pipeline,
)
from kubesteps.views.api import event_row, refusals
from kubesteps.views.view_model import API_VERSION, KIND, PLURAL

log = logging.getLogger("kubesteps.ui")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
STATIC = {"app.js": "text/javascript", "style.css": "text/css", "index.html": "text/html"}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
HEARTBEAT = 15.0
RunVerb = Callable[[KubeClient, str, str], Awaitable[VerbResult]]
RUN_VERBS: dict[str, RunVerb] = {
    "retry": views.retry,
    "rerun": views.rerun,
    "cancel": views.cancel,
    "suspend": views.suspend,
    "resume": views.resume,
}


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


def _refused(error: ViewError) -> web.Response:
    """A typed error of the shared core as the page shows it: its one line, and a status."""
    status = 502
    if isinstance(error, Forbidden):
        status = 403
    elif isinstance(error, PipelineNotFound | StepNotFound):
        status = 404
    elif isinstance(error, NotApplicable | VerbIgnored):
        status = 409
    elif isinstance(error, ApiFailed) and 400 <= error.error.status < 500:
        status = error.error.status
    elif type(error) is ViewError and "401" in str(error):
        status = 401
    return _error(status, str(error))


def _authorized(request: web.Request, settings: Settings) -> bool:
    given = (
        request.headers.get("X-Kubesteps-Token")
        or request.cookies.get(settings.cookie)
        or request.query.get("token")
        or ""
    )
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
            403, f"Host {request.host!r} is not served here: open the URL kubesteps ui printed"
        )
    elif request.path.startswith("/static/"):
        response = await handler(request)
    elif not _authorized(request, settings):
        response = _error(
            401,
            "this page needs the token of the URL kubesteps ui printed at"
            " start (it changes at every start)",
        )
    elif request.method not in ("GET", "HEAD") and not _same_origin(request):
        response = _error(
            403, "cross-site request refused: verbs are taken only from this page's own origin"
        )
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
        response.set_cookie(
            settings.cookie, settings.token, httponly=True, samesite="Strict", path="/"
        )
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


async def pipelines(request: web.Request) -> web.StreamResponse:
    api, scope = request.app[API], _scope(request)
    label = request.query.get("label") or None
    try:
        with refusals("list", PLURAL, scope or "", "listing pipelines"):
            items = await api.list(API_VERSION, KIND, scope, label_selector=label)
    except ViewError as error:
        return _refused(error)
    now = datetime.now(UTC)
    rows = [payloads.summary(obj, now) for obj in items]
    rows = sorted(
        (r for r in rows if _matches(r, request)), key=lambda r: (r["namespace"], r["name"])
    )
    return web.json_response({"items": rows, "namespace": scope})


def _named(request: web.Request) -> tuple[str, str]:
    return request.match_info["namespace"], request.match_info["name"]


async def pipeline(request: web.Request) -> web.StreamResponse:
    try:
        obj = await get_pipeline(request.app[API], *_named(request))
    except ViewError as error:
        return _refused(error)
    return web.json_response(payloads.detail(obj))


async def events(request: web.Request) -> web.StreamResponse:
    """The Pipeline's Events, oldest first; a refusal to list them is said, not hidden."""
    namespace, name = _named(request)
    selector = f"involvedObject.kind={KIND},involvedObject.name={name}"
    try:
        with refusals("list", "events", namespace, f"listing the Events of {name}"):
            document = await request.app[API].request(
                "GET", f"/api/v1/namespaces/{namespace}/events", params={"fieldSelector": selector}
            )
    except ViewError as error:
        return _refused(error)
    rows = sorted(
        (event_row(item) for item in document.get("items") or []),
        key=lambda row: (row.time is None, row.time or datetime.min.replace(tzinfo=UTC)),
    )
    return web.json_response({"items": [payloads.event(row) for row in rows]})


async def logs(request: web.Request) -> web.StreamResponse:
    """The logs of a ``job`` step's Pods in the current run (as `kubesteps logs` reads them),
    the newest Pod first; a refused or missing log is said per Pod."""
    api = request.app[API]
    namespace, name = _named(request)
    step = request.query.get("step") or ""
    if not step:
        return _error(400, "say which step: the query parameter 'step' is empty")
    try:
        view = pipeline_view(await get_pipeline(api, namespace, name))
        if view.find(step) is None:
            raise StepNotFound(name, step)
        pods = await step_pods(api, view, step)
    except ViewError as error:
        return _refused(error)
    if not pods:
        return web.json_response(
            {
                "items": [],
                "message": f"step {step!r} has no Pod in this"
                " run (only job steps have logs, once their Pod started)",
            }
        )
    items: list[dict[str, Any]] = []
    for pod in pods:
        pod_name = str(pod["metadata"]["name"])
        labels = pod["metadata"].get("labels") or {}
        entry = {"pod": pod_name, "job": labels.get("job-name") or "", "text": "", "message": ""}
        try:
            entry["text"] = "".join([line async for line in pod_log(api, namespace, pod_name)])
        except ViewError as error:
            entry["message"] = str(error)
        items.append(entry)
    return web.json_response({"items": items})


async def verb(request: web.Request) -> web.StreamResponse:
    """A verb from the page: the same function of ``kubesteps.views`` the CLI calls."""
    name = request.match_info["verb"]
    if name not in VERB_NAMES:
        return _error(404, f"no verb {name!r}; the verbs are {', '.join(VERB_NAMES)}")
    try:
        params = await request.json()
    except ValueError:
        return _error(400, "the body is not JSON")
    if not isinstance(params, dict):
        return _error(400, "the body must be a JSON object")
    api, (namespace, pipeline_name) = request.app[API], _named(request)
    step = str(params.get("step") or "")
    if name in ("approve", "reject") and not step:
        return _error(400, "say which approval step: the field 'step' is empty")
    message = str(params.get("message") or "").strip() or None
    try:
        if name == "approve":
            result = await views.approve(
                api,
                namespace,
                pipeline_name,
                step,
                by=str(params.get("by") or "").strip() or None,
                message=message,
            )
        elif name == "reject":
            result = await views.reject(api, namespace, pipeline_name, step, message=message)
        else:
            result = await RUN_VERBS[name](api, namespace, pipeline_name)
    except ViewError as error:
        return _refused(error)
    log.info("%s %s/%s: %s", name, namespace, pipeline_name, result.summary)
    return web.json_response(
        {"message": result.summary, "notes": list(result.notes), "result": result.to_dict()}
    )


async def _sse(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no", **SECURITY_HEADERS}
    )
    await response.prepare(request)
    return response


async def _send(response: web.StreamResponse, kind: str, data: object) -> None:
    await response.write(f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode())


async def _listed_then_watched(
    api: KubeClient, scope: str | None, label: str | None, seconds: int
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """``RESET``, a ``SYNC`` per Pipeline, then their changes; listed and watched again
    when the server ends the watch or the version is too old (410)."""
    resource = await api.resource(API_VERSION, KIND)
    selector = {"labelSelector": label} if label else {}
    while True:
        with refusals("list", PLURAL, scope or "", "listing pipelines"):
            document = await api.request("GET", resource.path(scope), params=selector or None)
        yield "RESET", {}
        for item in document.get("items") or []:
            yield "SYNC", item
        params = {
            "watch": "true",
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(seconds),
            **selector,
            "resourceVersion": meta_of(document).resource_version,
        }
        with refusals("watch", PLURAL, scope or "", "watching pipelines"):
            async for line in api.stream(resource.path(scope), params):
                if not line.strip():
                    continue
                event = json.loads(line)
                kind, obj = str(event.get("type")), event.get("object") or {}
                if kind == "ERROR":
                    break  # e.g. 410 Gone: list again
                if kind in ("ADDED", "MODIFIED", "DELETED"):
                    yield kind, obj


async def _streaming(
    request: web.Request, events: AsyncIterator[tuple[str, object]]
) -> web.StreamResponse:
    """Server-sent events from ``events``: the first one is awaited before the answer
    starts, so a refusal is an error answer with its message, not a broken stream."""
    try:
        first = await anext(events)
    except ViewError as error:
        return _refused(error)
    response = await _sse(request)
    beat = asyncio.create_task(_heartbeat(response))
    try:
        await _send(response, *first)
        async for kind, data in events:
            await _send(response, kind, data)
    except ViewError as error:
        await _send(response, "failure", {"error": str(error)})
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
    """Rows of the list page as they change."""
    settings = request.app[SETTINGS]

    async def rows() -> AsyncIterator[tuple[str, object]]:
        async for kind, obj in _listed_then_watched(
            request.app[API],
            _scope(request),
            request.query.get("label") or None,
            settings.watch_seconds,
        ):
            if kind == "RESET":
                yield "reset", {}
            else:
                yield "row", {"type": kind, "row": payloads.summary(obj)}

    return await _streaming(request, rows())


async def pipeline_stream(request: web.Request) -> web.StreamResponse:
    """One Pipeline as it changes (``watch_pipeline``, as `kubesteps watch` follows it)."""
    namespace, name = _named(request)

    async def versions() -> AsyncIterator[tuple[str, object]]:
        seen = False
        try:
            async for obj in watch_pipeline(request.app[API], namespace, name):
                seen = True
                yield "pipeline", {"type": "MODIFIED", "pipeline": payloads.detail(obj)}
        except PipelineNotFound as gone:
            if not seen:
                raise  # not there at all: a 404 answer
            yield "deleted", {"error": str(gone)}

    return await _streaming(request, versions())


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
    runner = web.AppRunner(
        make_app(api, settings), access_log=None, handler_cancellation=True, shutdown_timeout=1.0
    )
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    try:
        await site.start()
        bound = runner.addresses[0][1]
        settings.allow_port(bound)
        yield f"http://127.0.0.1:{bound}/?token={settings.token}"
    finally:
        await runner.cleanup()
