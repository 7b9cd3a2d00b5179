"""The Kubernetes API emulator: an aiohttp server speaking enough of kube-apiserver's HTTP API
for kopf, ``kubectl --validate=false`` and kubernetes-asyncio, and what tests call on it.

In tests::

    emulator = Emulator()
    async with emulator.serving() as url:
        ...

``Emulator`` puts the parts together (storage, discovery, the verbs, the watch streams, the
Pods' logs, the HTTP routing) and is the Python side of the API: registering CRDs, reading
stored objects, injecting faults, writing Pod logs, waiting for watches. ``python -m
kubesteps.testing`` serves one on its own (``standalone``).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator, Callable, Iterable

from aiohttp import web

from kubesteps.testing.api_verbs import Api, Clock
from kubesteps.testing.discovery import Discovery, ResourceInfo
from kubesteps.testing.pod_logs import PodLogs
from kubesteps.testing.routing import ANY, Fault, RequestCounter, Router
from kubesteps.testing.status_errors import CODE_REASONS
from kubesteps.testing.storage import Event, Obj, Store
from kubesteps.testing.watches import WatchStreams


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
        self.discovery = Discovery()
        self.api = Api(self.store, self.discovery, clock=clock, rng=rng)
        self.requests = RequestCounter()
        self.url: str | None = None
        self._faults: list[Fault] = []
        self._watch_streams = WatchStreams(self.store, bookmark_interval=bookmark_interval)
        self._pod_logs = PodLogs()
        self._router = Router(
            store=self.store,
            discovery=self.discovery,
            api=self.api,
            requests=self.requests,
            faults=self._faults,
            watch_streams=self._watch_streams,
            pod_logs=self._pod_logs,
            tokens=None if tokens is None else set(tokens),
        )

    @property
    def tokens(self) -> set[str] | None:
        """With tokens, only requests bearing one of them are served (401 otherwise), as a
        real server checks credentials; a test may change the set (a rotation). None: any."""
        return self._router.tokens

    @tokens.setter
    def tokens(self, tokens: set[str] | None) -> None:
        self._router.tokens = tokens

    @property
    def bookmark_interval(self) -> float:
        """Seconds a watch stream that allows bookmarks stays quiet before it gets one."""
        return self._watch_streams.bookmark_interval

    @bookmark_interval.setter
    def bookmark_interval(self, seconds: float) -> None:
        self._watch_streams.bookmark_interval = seconds

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
        raise LookupError(
            f"no served resource matches {name!r}; served: "
            + ", ".join(sorted({i.qualified for i in self.discovery}))
        )

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
            await self._watch_streams.opened()

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
            verb=verb,
            resource=resource,
            subresource=subresource,
            namespace=namespace,
            name=name,
            status=status,
            reason=reason,
            message=message or f"injected fault: {reason}",
            times=times,
            retry_after=retry_after,
        )
        self._faults.append(fault)
        return fault

    def write_pod_log(self, namespace: str, pod: str, text: str, *, done: bool = True) -> None:
        """Add ``text`` to what ``GET .../pods/<pod>/log`` serves (no kubelet runs here, so a
        test plays its part). ``done=False``: a reader following the log (``follow=true``)
        waits for more; ``done=True`` ends its stream once it has read everything."""
        self._pod_logs.write(namespace, pod, text, done=done)

    def set_log(self, namespace: str, pod: str, text: str) -> None:
        """Replace what ``GET .../pods/<pod>/log`` serves with ``text``, a finished log
        (``tailLines`` and ``limitBytes`` apply as a kubelet would apply them)."""
        self._pod_logs.replace(namespace, pod, text)

    def clear_faults(self) -> None:
        self._faults.clear()

    # -- serving -------------------------------------------------------------------------------

    def app(self) -> web.Application:
        return self._router.app()

    @contextlib.asynccontextmanager
    async def serving(self, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        """Serve on ``host:port`` (0: a free port) and yield the base URL."""
        # handler_cancellation: a client hanging up on a watch ends its stream at once.
        runner = web.AppRunner(
            self.app(), access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
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
