"""A small async Kubernetes API client for the calls kopf does not make for us.

It authenticates with the ``kopf.ConnectionInfo`` kopf's own login produced (kubeconfig,
in-cluster service account, or the ``kubernetes`` client's configuration), so the operator
has exactly one source of credentials; given a ``refresh`` callable, it asks for fresh ones
when the server answers 401 (rotated tokens) and retries once. Every request follows the
retry policy of ``kubesteps.kube.api_retry`` (throttling, server errors and lost answers are
sent again; conflicts never). Resources are addressed by ``apiVersion`` and ``kind``; the
plural and scope come from the API server's discovery documents, cached.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp

from kubesteps.kube import api_retry as retry_policy
from kubesteps.kube.api_errors import ApiError as ApiError  # callers import it from here
from kubesteps.kube.meta import meta_of
from kubesteps.telemetry import redaction

Obj = dict[str, Any]
# Told about every request that failed: the Kubernetes verb, and the HTTP status (None: no
# response came). The operator points it at its metrics; the kube layer knows none.
ErrorHook = Callable[[str, int | None], None]

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


@dataclass(frozen=True, slots=True)
class ResourceRef:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name:
            base += f"/{quote(name, safe='')}"
        return base


@dataclass(frozen=True)
class Credentials:
    """What the client needs to reach a server (a subset of ``kopf.ConnectionInfo``)."""

    server: str
    token: str | None = None
    insecure: bool = False
    ca_path: str | None = None
    ca_data: bytes | None = None
    certificate_path: str | None = None
    private_key_path: str | None = None
    certificate_data: bytes | None = None
    private_key_data: bytes | None = None
    username: str | None = None
    password: str | None = None

    @classmethod
    def from_kopf(cls, info: Any) -> Credentials:
        """Build from a ``kopf.ConnectionInfo`` (duck-typed to keep this layer kopf-free)."""
        return cls(
            server=info.server,
            token=info.token,
            insecure=bool(info.insecure),
            ca_path=info.ca_path,
            ca_data=info.ca_data,
            certificate_path=info.certificate_path,
            private_key_path=info.private_key_path,
            certificate_data=info.certificate_data,
            private_key_data=info.private_key_data,
            username=info.username,
            password=info.password,
        )


class KubeClient:
    """get / list / create / patch / delete / apply, by ``apiVersion`` and ``kind``."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        timeout: float = 30.0,
        on_error: ErrorHook | None = None,
        refresh: Callable[[], Credentials] | None = None,
        attempts: int = retry_policy.ATTEMPTS,
        sleep: retry_policy.Sleep = asyncio.sleep,
    ) -> None:
        self.credentials = credentials
        # Tries per request (1: no retries), and how the waits between them are waited.
        self.attempts = attempts
        self.sleep = sleep
        self.on_error = on_error
        # Fresh credentials when the server answers 401: projected service-account tokens
        # rotate (about hourly), plugin tokens expire. Called in a worker thread (it may block).
        self.refresh = refresh
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._retired: aiohttp.ClientSession | None = None
        self._renewal_lock = asyncio.Lock()
        self._resources: dict[tuple[str, str], ResourceRef] = {}
        self._discovery_lock = asyncio.Lock()

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._retired is not None:
            await self._retired.close()
            self._retired = None

    # -- resources ----------------------------------------------------------------------

    async def resource(self, api_version: str, kind: str) -> ResourceRef:
        """Resolve a kind through discovery (cached; refreshed once on a miss)."""
        key = (api_version, kind)
        if key not in self._resources:
            async with self._discovery_lock:
                if key not in self._resources:
                    await self._discover(api_version)
        if key not in self._resources:
            raise ApiError(
                404, "NotFound", f"the server does not serve kind {kind!r} in {api_version!r}"
            )
        return self._resources[key]

    async def _discover(self, api_version: str) -> None:
        path = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
        group, _, version = api_version.rpartition("/")
        document = await self.request("GET", path)
        for item in document.get("resources", []):
            name = item.get("name", "")
            if "/" in name:  # a subresource such as pods/log
                continue
            self._resources[(api_version, item["kind"])] = ResourceRef(
                group=group,
                version=version,
                plural=name,
                kind=item["kind"],
                namespaced=bool(item.get("namespaced")),
            )

    # -- verbs ----------------------------------------------------------------------------

    async def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Obj | None:
        ref = await self.resource(api_version, kind)
        try:
            return await self.request("GET", ref.path(namespace, name))
        except ApiError as err:
            if err.status == 404:
                return None
            raise

    async def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[Obj]:
        ref = await self.resource(api_version, kind)
        params = {
            key: value
            for key, value in (("labelSelector", label_selector), ("fieldSelector", field_selector))
            if value
        }
        document = await self.request("GET", ref.path(namespace), params=params or None)
        return list(document.get("items", []))

    async def create(self, obj: Mapping[str, Any], namespace: str | None = None) -> Obj:
        ref = await self.resource(obj["apiVersion"], obj["kind"])
        ns = namespace or meta_of(obj).namespace or None
        return await self.request("POST", ref.path(ns), body=obj)

    async def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None,
        patch: Any,
        *,
        subresource: str | None = None,
        content_type: str = MERGE,
        retry: bool = True,
    ) -> Obj:
        ref = await self.resource(api_version, kind)
        path = ref.path(namespace, name) + (f"/{subresource}" if subresource else "")
        return await self.request("PATCH", path, body=patch, content_type=content_type, retry=retry)

    async def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        propagation: str = "Background",
    ) -> bool:
        ref = await self.resource(api_version, kind)
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        try:
            await self.request("DELETE", ref.path(namespace, name), body=body)
        except ApiError as err:
            if err.status == 404:
                return False
            raise
        return True

    async def apply(self, obj: Mapping[str, Any], namespace: str | None = None) -> Obj:
        """Create the object, or merge-patch it when it exists (client-side apply)."""
        meta = meta_of(obj)
        ns = namespace or meta.namespace or None
        try:
            return await self.create(obj, ns)
        except ApiError as err:
            if err.status != 409:
                raise
        patch = {k: v for k, v in obj.items() if k not in ("status",)}
        return await self.patch(obj["apiVersion"], obj["kind"], meta.name, ns, patch)

    async def watch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        field_selector: str | None = None,
        resource_version: str | None = None,
        server_timeout: float | None = None,
    ) -> AsyncIterator[tuple[str, Obj]]:
        """The watch events (type, object) of a kind, from ``resource_version`` (None: the
        objects there are now, as ADDED, then every change); ends when the server ends the
        stream (``server_timeout`` seconds at most, asked of the server). An ERROR event (e.g. 410
        Gone: the version is too old) is raised as an ApiError."""
        ref = await self.resource(api_version, kind)
        params = {"watch": "true", "allowWatchBookmarks": "true"}
        if field_selector:
            params["fieldSelector"] = field_selector
        if resource_version:
            params["resourceVersion"] = resource_version
        if server_timeout is not None:
            params["timeoutSeconds"] = str(max(1, int(server_timeout)))
        async for line in self.stream(ref.path(namespace), params):
            if not line.strip():
                continue
            event = json.loads(line)
            kind_of_event, obj = str(event.get("type", "")), event.get("object") or {}
            if kind_of_event == "ERROR":
                raise ApiError(
                    int(obj.get("code") or 500),
                    str(obj.get("reason") or "Unknown"),
                    str(obj.get("message") or "the watch failed"),
                )
            yield kind_of_event, obj

    async def text(self, path: str, params: Mapping[str, str] | None = None) -> str:
        """A GET whose answer is text, not JSON (``pods/<name>/log``)."""
        chunks = [line async for line in self.stream(path, params)]
        return "".join(chunks)

    async def stream(
        self, path: str, params: Mapping[str, str] | None = None
    ) -> AsyncIterator[str]:
        """A GET read line by line as the server sends it (a watch, a followed log), with
        no total time limit: the server ends it. Not retried: a caller resumes it."""
        session = await self._open()
        url = self.credentials.server.rstrip("/") + path
        if params:
            url += "?" + urlencode(params)
        endless = aiohttp.ClientTimeout(total=None, sock_connect=self._timeout.total)
        try:
            async with session.get(url, timeout=endless) as response:
                if response.status >= 400:
                    self._failed("GET", path, params, response.status)
                    raise _error(
                        response.status, await response.text(), response.headers.get("Retry-After")
                    )
                # Not ``async for line in response.content``: aiohttp refuses a line longer
                # than its buffer, and one watch event (a Pipeline's status) can be larger.
                pending = b""
                async for chunk in response.content.iter_any():
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        yield line.decode("utf-8", errors="replace") + "\n"
                if pending:
                    yield pending.decode("utf-8", errors="replace")
        except (aiohttp.ClientError, TimeoutError):
            self._failed("GET", path, params, None)
            raise

    # -- transport ------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
        retry: bool = True,
    ) -> Obj:
        """One API call, sent again as ``kubesteps.kube.api_retry`` says (``retry=False``: once)."""
        if not retry:
            return await self._attempt(method, path, body, params, content_type)
        result: Obj = await retry_policy.retrying(self.attempts, sleep=self.sleep)(
            self._attempt, method, path, body, params, content_type
        )
        return result

    async def read_log(
        self, namespace: str, pod: str, *, container: str, tail_lines: int, limit_bytes: int
    ) -> str:
        """The last ``tail_lines`` lines of a container's log (at most ``limit_bytes``)."""
        path = f"/api/v1/namespaces/{namespace}/pods/{pod}/log"
        params = {
            "container": container,
            "tailLines": str(tail_lines),
            "limitBytes": str(limit_bytes),
        }
        text: str = await retry_policy.retrying(self.attempts, sleep=self.sleep)(
            self._exchange, "GET", path, None, params, "application/json", "text/plain"
        )
        return text

    async def _attempt(
        self,
        method: str,
        path: str,
        body: Any,
        params: Mapping[str, str] | None,
        content_type: str,
    ) -> Obj:
        text = await self._exchange(method, path, body, params, content_type, "application/json")
        return json.loads(text) if text else {}

    async def _exchange(
        self,
        method: str,
        path: str,
        body: Any,
        params: Mapping[str, str] | None,
        content_type: str,
        accept: str,
    ) -> str:
        headers = {"Accept": accept}
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body)
        session = await self._open()
        status, text, retry_after = await self._send(
            session, method, path, params, data=data, headers=headers
        )
        if status == 401 and self.refresh is not None:
            self._failed(method, path, params, status)
            try:
                session = await self._renew(session)
            except Exception as err:
                raise _error(status, text, retry_after) from err
            status, text, retry_after = await self._send(
                session, method, path, params, data=data, headers=headers
            )
        if status >= 400:
            self._failed(method, path, params, status)
            raise _error(status, text, retry_after)
        return text

    async def _send(
        self,
        session: aiohttp.ClientSession,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        *,
        data: str | None,
        headers: Mapping[str, str],
    ) -> tuple[int, str, str | None]:
        """One request: the status, the body and the Retry-After header."""
        url = self.credentials.server.rstrip("/") + path
        if params:
            url += "?" + urlencode(params)
        try:
            async with session.request(method, url, data=data, headers=headers) as response:
                return response.status, await response.text(), response.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError):
            self._failed(method, path, params, None)
            raise

    async def _renew(self, refused: aiohttp.ClientSession) -> aiohttp.ClientSession:
        """A session with fresh credentials, after ``refused`` got a 401.

        Requests refused together renew once: the first replaces the session, the others
        find it already replaced and retry on the new one.
        """
        assert self.refresh is not None
        async with self._renewal_lock:
            if self._session is refused:
                # In a worker thread: resolving may run a credential plugin.
                self.credentials = await asyncio.to_thread(self.refresh)
                # Requests still in flight on the old session end within the timeout, so it
                # is closed at the next renewal (an hour or so later), or with the client.
                if self._retired is not None:
                    await self._retired.close()
                self._retired, self._session = refused, None
            return await self._open()

    def _failed(
        self, method: str, path: str, params: Mapping[str, str] | None, status: int | None
    ) -> None:
        if self.on_error is not None:
            self.on_error(api_verb(method, path, params), status)

    async def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            creds = self.credentials
            headers = {}
            if creds.token:
                redaction.register(creds.token)
                headers["Authorization"] = f"Bearer {creds.token}"
            elif creds.username and creds.password:
                pair = f"{creds.username}:{creds.password}"
                redaction.register(creds.password, pair)
                headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
            connector = aiohttp.TCPConnector(ssl=_ssl_context(creds), limit=20)
            self._session = aiohttp.ClientSession(
                connector=connector, headers=headers, timeout=self._timeout
            )
        return self._session


def api_verb(method: str, path: str, params: Mapping[str, str] | None = None) -> str:
    """The Kubernetes verb of a request: get, list, watch, create, update, patch or delete.

    A GET names one object when the path goes past the resource's plural (``.../pods/web``,
    ``.../pods/web/status``, or a namespace ``/api/v1/namespaces/ops``), a collection when
    it ends at the plural; discovery documents count as get.
    """
    method = method.upper()
    if method == "POST":
        return "create"
    if method == "PUT":
        return "update"
    if method == "PATCH":
        return "patch"
    if method == "DELETE":
        return "delete"
    if params and str(params.get("watch", "")).lower() in ("1", "true"):
        return "watch"
    segments = [s for s in path.split("?", 1)[0].split("/") if s]
    if segments[:1] == ["api"]:
        rest = segments[2:]
    elif segments[:1] == ["apis"]:
        rest = segments[3:]
    else:
        return "get"  # /version, /openapi, ...
    if len(rest) >= 3 and rest[0] == "namespaces":
        rest = rest[2:]  # the namespace scope of a namespaced resource
    return "list" if len(rest) == 1 else "get"


def _ssl_context(creds: Credentials) -> ssl.SSLContext | bool:
    if not creds.server.startswith("https"):
        return False
    if creds.insecure:
        return False
    context = ssl.create_default_context(
        cafile=creds.ca_path, cadata=creds.ca_data.decode() if creds.ca_data else None
    )
    if creds.certificate_path or creds.certificate_data:
        # ssl reads client certificates only from files: in-memory ones (a private key among
        # them) exist on disk only until the context has read them.
        with tempfile.TemporaryDirectory(prefix="kubesteps-") as private:
            cert = creds.certificate_path or _spill(private, "cert.pem", creds.certificate_data)
            key = creds.private_key_path or _spill(private, "key.pem", creds.private_key_data)
            if cert is not None:
                context.load_cert_chain(cert, key)
    return context


def _spill(directory: str, name: str, data: bytes | None) -> str | None:
    """Write ``data`` to ``directory/name``, readable by this user only; its path."""
    if data is None:
        return None
    path = os.path.join(directory, name)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as file:
        file.write(data)
    return path


def _error(status: int, text: str, retry_after: str | None) -> ApiError:
    reason, message = "", text.strip()
    try:
        document = json.loads(text)
        reason = document.get("reason", "") or ""
        message = document.get("message", message) or message
    except ValueError:
        pass
    delay = float(retry_after) if retry_after and retry_after.isdigit() else None
    # A server (or a proxy before it) may echo the request's headers: the token goes first.
    message = redaction.redact(message)
    return ApiError(status, reason or "Unknown", message[:500], retry_after=delay)
