"""Running the operator process: credentials, telemetry, kopf, and leader election."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
from collections.abc import AsyncIterator, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import kopf
from aiohttp import web

from kubesteps.actions.common import ALLOW_CROSS_NAMESPACE
from kubesteps.controller.handlers import quiet_temporary_errors, register
from kubesteps.controller.leader import LeaderElection, LeaseConfig, stop_within
from kubesteps.controller.login import login_via_kubernetes_client
from kubesteps.controller.reconciler import Reconciler
from kubesteps.kube.client import ApiError, Credentials, KubeClient
from kubesteps.kube.events import EventRecorder
from kubesteps.pipeline.crd import CRD_NAME, VERSION
from kubesteps.pipeline.model import API_VERSION, KIND
from kubesteps.telemetry.logs import configure_logging
from kubesteps.telemetry.metrics import OperatorMetrics, configure_metrics, get_metrics
from kubesteps.telemetry.tracing import configure_tracing, shutdown_tracing

log = logging.getLogger("kubesteps.operator")


@dataclass
class OperatorConfig:
    namespaces: Sequence[str] = ()
    standalone: bool = True
    liveness: str | None = None
    metrics_port: int = 9090
    log_format: str = "text"
    log_level: str = "INFO"
    leader_election: bool = False
    lease_namespace: str | None = None
    lease_name: str = "kubesteps-operator"
    lease_duration: float = 15.0
    lease_renew_every: float = 5.0
    lease_retry_every: float = 2.0
    per_namespace_metrics: bool = False
    per_object_metrics: bool = False
    # Let apply and waitFor steps reach namespaces other than their Pipeline's own.
    allow_cross_namespace: bool = False
    settings: dict[str, Any] = field(default_factory=dict)


class Connection:
    """One set of credentials for kopf and for our own client, resolved once."""

    def __init__(
        self, info: kopf.ConnectionInfo | None = None, *, metrics: OperatorMetrics | None = None
    ) -> None:
        self._info = info
        self._fixed = info is not None  # given credentials are kept; found ones re-read
        self._client: KubeClient | None = None
        # Failed requests of our client count in these metrics' API errors.
        self.metrics = metrics

    def info(self, **kwargs: Any) -> kopf.ConnectionInfo:
        """The credentials (resolved by the ``kubernetes`` client on first use: blocking)."""
        if self._info is None:
            self._info = login_via_kubernetes_client(**kwargs)
        return self._info

    async def resolve(self) -> None:
        """Resolve the credentials in a worker thread (a credential plugin may run), so that
        ``client()`` later finds them without blocking the event loop."""
        if self._info is None:
            self._info = await asyncio.to_thread(self.info, logger=log)

    def login(self, **kwargs: Any) -> kopf.ConnectionInfo:
        """A kopf login handler returning the same credentials our client uses."""
        if not self._fixed:
            self._info = None  # projected tokens rotate: resolve afresh each time kopf asks
        return self.info(**kwargs)

    def client(self) -> KubeClient:
        if self._client is None:
            self._client = KubeClient(
                # Before kopf logs in (a standby resolves them first), as kopf would.
                Credentials.from_kopf(self.info(logger=log)),
                on_error=self.metrics.observe_api_error if self.metrics else None,
                # Called from a worker thread: it may run a credential plugin.
                refresh=lambda: Credentials.from_kopf(self.login(logger=log)),
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()


class EssenceDiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    """kopf's last-handled-configuration storage, building the object's essence (what kopf
    diffs: spec, labels, annotations) without deep-copying the whole object first.

    kopf copies the body, status and managed fields included, and then throws most of it
    away; a Pipeline's status is ~2 KB of step records, and that copy, three times per
    event, was the largest single cost of an operator pass at 1,000 Pipelines (bench
    scale, cProfile). The essence is the same (tests/controller/test_kopf_settings.py);
    with extra fields asked for (a handler on a status field) kopf's own build runs.
    """

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None
    ) -> kopf.BodyEssence:
        if extra_fields:
            return super().build(body=body, extra_fields=extra_fields)
        raw = body.get("metadata") or {}
        slim: dict[str, Any] = {k: v for k, v in body.items() if k not in ("metadata", "status")}
        # (ownerReferences and kind name the storage's key: kopf.StorageKeyMarkingConvention)
        slim["metadata"] = {
            k: raw[k] for k in ("labels", "annotations", "ownerReferences") if k in raw
        }
        return super().build(body=kopf.Body(cast(kopf.RawBody, slim)), extra_fields=None)


def settings_hook(settings: kopf.OperatorSettings, extra: dict[str, Any]) -> None:
    """kopf settings for kubesteps (tests apply the same hook)."""
    # Handler progress in annotations: status is ours, and the CRD's status schema is strict.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage()
    settings.persistence.diffbase_storage = EssenceDiffBaseStorage()
    # kopf would post every handler log line as an Event; we post rate-limited step events.
    settings.posting.enabled = False
    # Long watches behind load balancers die silently (kopf#957): bound them.
    settings.watching.server_timeout = extra.get("server_timeout", 300)
    settings.watching.client_timeout = extra.get("client_timeout", 330)
    settings.watching.inactivity_timeout = extra.get("inactivity_timeout", 600)
    # After its own patch (the last-handled annotation) kopf waits this long for that version
    # to come back through the watch before it acts on an older event of the object. Our
    # status write is such an older event, and it lacks the annotation: acted on, it looks
    # like a Pipeline never handled, and kopf runs the handler and patches it once more.
    # kopf's 5 s default is too short once the watch lags behind (1,000 Pipelines at once);
    # a newer event of the object still ends the wait at once.
    settings.persistence.consistency_timeout = extra.get("consistency_timeout", 120.0)


def build_registry(
    connection: Connection, *, instance: str = "", allow_cross_namespace: bool = False
) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    if connection.metrics is None:
        connection.metrics = get_metrics()
    reconciler = Reconciler(
        connection.client,
        metrics=connection.metrics,
        events=EventRecorder(connection.client, instance=instance),
        action_settings={ALLOW_CROSS_NAMESPACE: allow_cross_namespace},
    )
    register(registry, reconciler, login=connection.login)

    @kopf.on.startup(registry=registry)
    async def check_crd(**_: Any) -> None:
        try:
            problem = await crd_problem(connection.client())
        except Exception as error:  # a hint for the log only: never hold up the start
            problem = f"cannot tell whether {API_VERSION} is served: {error}"
        if problem is not None:
            log.warning("%s", problem)

    @kopf.on.cleanup(registry=registry)
    async def close_client(**_: Any) -> None:
        await connection.close()

    return registry


async def crd_problem(client: KubeClient) -> str | None:
    """Why Pipelines cannot be served yet, precisely (None: they are served).

    kopf says only "try creating their CRDs", also when the CRD is there and merely not
    served yet (just applied and not established, or its version switched off).
    """
    try:
        await client.resource(API_VERSION, KIND)
        return None
    except ApiError as error:
        if error.status != 404:
            return f"cannot tell whether {API_VERSION} is served: {error}"
    waiting = "the operator starts serving Pipelines as soon as it is"
    try:
        definition = await client.get(
            "apiextensions.k8s.io/v1", "CustomResourceDefinition", CRD_NAME
        )
    except ApiError as error:
        return f"{API_VERSION} is not served, and the CRD {CRD_NAME} cannot be read: {error}"
    if definition is None:
        return (
            f"the CRD {CRD_NAME} is not installed (kubectl apply -f "
            f"crds/{CRD_NAME}.yaml, or install the chart); {waiting}"
        )
    version = next(
        (
            v
            for v in (definition.get("spec") or {}).get("versions") or []
            if v.get("name") == VERSION
        ),
        None,
    )
    if version is None or not version.get("served", False):
        return (
            f"the CRD {CRD_NAME} is installed, but it does not serve version {VERSION} "
            f"(served: false, or no such version): apply this operator's CRD; {waiting}"
        )
    conditions = (definition.get("status") or {}).get("conditions") or []
    established: dict[str, Any] = next(
        (c for c in conditions if c.get("type") == "Established"), {}
    )
    state = f"Established={established.get('status', 'Unknown')}"
    if established.get("message"):
        state += f": {established['message']}"
    return (
        f"the CRD {CRD_NAME} is installed, but {API_VERSION} is not served yet ({state}); {waiting}"
    )


class NoCredentials(Exception):
    """Nothing to log in with (no service account, no usable kubeconfig): the reason."""


class PortInUse(OSError):
    """A port the operator would listen on is taken: by another process (perhaps another
    operator, on this machine), or by another of its own endpoints."""


def check_ports(config: OperatorConfig) -> None:
    """Refuse, before anything starts, to run with a port that is in use (kopf would only
    find out after starting, with a traceback)."""
    wanted: list[tuple[str, str, int]] = []
    if config.metrics_port:
        wanted.append(("--metrics-port", "0.0.0.0", config.metrics_port))
    if config.liveness:
        from urllib.parse import urlparse

        url = urlparse(config.liveness)
        wanted.append(("--liveness", url.hostname or "0.0.0.0", url.port or 8080))
    for flag, host, port in wanted:
        with socket.socket() as probe:
            # As the servers themselves bind: a port lingering in TIME_WAIT is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as error:
                raise PortInUse(
                    error.errno,
                    f"port {port} ({flag}) is in use: is another operator running on this "
                    f"machine? Stop it, or give {flag} another port"
                    + (" (0: no metrics endpoint)" if flag == "--metrics-port" else ""),
                ) from None


async def run(config: OperatorConfig) -> None:
    check_ports(config)
    configure_logging("json" if config.log_format == "json" else "text", config.log_level)
    # Filters of a logger see only what is logged to it: name each logger these come from.
    for name in ("kopf", "kopf.objects", "kopf._core.reactor.observation"):
        logging.getLogger(name).addFilter(quiet_temporary_errors())
    tracing = configure_tracing()
    log.info("tracing is %s", "on: spans go out over OTLP" if tracing else "off")
    metrics = configure_metrics(
        per_namespace_labels=config.per_namespace_metrics,
        per_object_metrics=config.per_object_metrics,
    )
    server = metrics.start_server(config.metrics_port) if config.metrics_port else None
    identity = os.environ.get("POD_NAME") or socket.gethostname()
    connection = Connection(metrics=metrics)
    try:
        await connection.resolve()
    except kopf.LoginError as error:
        raise NoCredentials(str(error)) from None
    registry = build_registry(
        connection, instance=identity, allow_cross_namespace=config.allow_cross_namespace
    )
    stop = asyncio.Event()
    _stop_on_signals(stop)
    try:
        if config.leader_election:
            lease = LeaseConfig(
                namespace=config.lease_namespace or os.environ.get("POD_NAMESPACE") or "default",
                name=config.lease_name,
                identity=identity,
                duration=config.lease_duration,
                renew_every=config.lease_renew_every,
                retry_every=config.lease_retry_every,
            )
            await _run_as_leader(config, registry, connection, lease, stop)
        else:
            await _run_kopf(config, registry, stop, liveness=config.liveness)
    finally:
        await connection.close()
        if server is not None:
            server.close()
        if tracing:
            shutdown_tracing()


async def _run_kopf(
    config: OperatorConfig,
    registry: kopf.OperatorRegistry,
    stop: asyncio.Event,
    *,
    liveness: str | None,
) -> None:
    settings = kopf.OperatorSettings()
    settings_hook(settings, config.settings)
    ready = asyncio.Event()
    # Created before kopf starts, so kopf leaves it alone when it stops.
    reclaim = asyncio.create_task(_reclaim_signals(ready, stop))
    try:
        await kopf.operator(
            registry=registry,
            settings=settings,
            standalone=config.standalone,
            namespaces=list(config.namespaces),
            clusterwide=not config.namespaces,
            liveness_endpoint=liveness,
            stop_flag=stop,
            ready_flag=ready,
        )
    finally:
        reclaim.cancel()


def _stop_on_signals(stop: asyncio.Event) -> None:
    """SIGTERM (a pod being stopped) and SIGINT set ``stop``: the one way to shut down."""
    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread receives signals (tests run the operator in threads)
    loop = asyncio.get_running_loop()

    def stopping(received: signal.Signals) -> None:
        log.info("%s received: stopping", received.name)
        stop.set()

    for received in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(received, stopping, received)


async def _reclaim_signals(ready: asyncio.Event, stop: asyncio.Event) -> None:
    """Take the signals back from kopf once it is up.

    kopf installs its own handlers at start-up. When one of them stops it, kopf leaves its
    wait on our stop flag pending and gives that "hung" task 5 s before it exits: every
    shutdown (and the hand-over of the Lease after it) would take 5 s longer. A signal that
    sets the stop flag instead stops kopf at once.
    """
    await ready.wait()
    _stop_on_signals(stop)


async def _run_as_leader(
    config: OperatorConfig,
    registry: kopf.OperatorRegistry,
    connection: Connection,
    lease: LeaseConfig,
    stop: asyncio.Event,
) -> None:
    election = LeaderElection(connection.client(), lease)
    async with _health(config.liveness, lambda: True):
        log.info("waiting to lead (lease %s/%s as %s)", lease.namespace, lease.name, lease.identity)
        if not await _unless_stopped(election.acquire(), stop):
            log.info("stopped while standing by")
            return
        renewals = asyncio.create_task(election.run_renewals())
        operator = asyncio.create_task(_run_kopf(config, registry, stop, liveness=None))
        try:
            done, _ = await asyncio.wait({renewals, operator}, return_when="FIRST_COMPLETED")
            if renewals in done:
                stop.set()  # leadership lost: stop handling before anyone else starts
                await stop_within(operator, election.time_left())
                raise SystemExit(1)
            operator.result()  # kopf failing on its own is the process failing
        finally:
            renewals.cancel()
            stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await renewals
            await election.release()


async def _unless_stopped(work: Coroutine[Any, Any, None], stop: asyncio.Event) -> bool:
    """Await ``work`` unless ``stop`` is set first; True if the work was done."""
    working = asyncio.create_task(work)
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({working, stopping}, return_when=asyncio.FIRST_COMPLETED)
    for task in (stopping, working):
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if working.cancelled():
        return False
    working.result()
    return True


@contextlib.asynccontextmanager
async def _health(endpoint: str | None, healthy: Any) -> AsyncIterator[None]:
    """A liveness endpoint of our own while kopf's is not running (standby replicas)."""
    if not endpoint:
        yield
        return
    from urllib.parse import urlparse

    url = urlparse(endpoint)

    async def probe(_: web.Request) -> web.Response:
        response = web.json_response({"ok": bool(healthy())}, status=200 if healthy() else 500)
        # No keep-alive: kopf counts the task of an idle kept-alive connection as one of its
        # own hung tasks when it stops, and waits 5 s for it to end.
        response.force_close()
        return response

    app = web.Application()
    app.router.add_get(url.path or "/", probe)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, url.hostname or "0.0.0.0", url.port or 8080)
    await site.start()
    try:
        yield
    finally:
        await runner.cleanup()
