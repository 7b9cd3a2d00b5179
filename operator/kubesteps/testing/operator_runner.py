"""Run a kopf operator against an emulator, in a worker thread, for the length of a block.

kopf runs in its own thread and event loop (``kopf.run``), because kopf cancels every task
it did not create when it stops - including a test framework's own tasks if they shared a
loop. The emulator keeps serving from the caller's loop meanwhile, so code inside the block
must await (``asyncio.sleep``), never block (``time.sleep``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import kopf

from kubesteps.testing.emulator import Emulator


@dataclass
class _LoginTarget:
    url: str | None = None


# One login handler per registry, ever: kopf keeps handlers for the registry's lifetime, so a
# handler per run would pile up stale URLs (and hang the next run). Each run repoints it.
_LOGIN_TARGETS: weakref.WeakKeyDictionary[kopf.OperatorRegistry, _LoginTarget] = (
    weakref.WeakKeyDictionary()
)


def _login_target(registry: kopf.OperatorRegistry) -> _LoginTarget:
    target = _LOGIN_TARGETS.get(registry)
    if target is None:
        target = _LOGIN_TARGETS[registry] = _LoginTarget()

        def login_to_emulator(**_: Any) -> kopf.ConnectionInfo | None:
            if target.url is None:
                return None
            # A high priority wins over any login handler the operator itself registers.
            return kopf.ConnectionInfo(server=target.url, insecure=True, priority=1000)

        kopf.on.login(registry=registry, id="kubesteps-testing-emulator")(login_to_emulator)
    return target


def quick_settings() -> kopf.OperatorSettings:
    """kopf settings that keep tests quick: short backoffs and no server-side watch limit."""
    settings = kopf.OperatorSettings()
    settings.networking.error_backoffs = [0.1, 0.2, 0.5]
    settings.posting.default_backoffs = [0.1, 0.2, 0.5]
    settings.watching.reconnect_backoff = 0.1
    settings.watching.server_timeout = 30
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage()
    # When the block ends, kopf gives each object's worker this long to finish its queue
    # before it cancels it (2 s by default: the tail of every operator test).
    settings.queueing.exit_timeout = 0.2
    return settings


@dataclass
class OperatorRun:
    """A running operator: the settings it runs with, and the emulator URL it talks to."""

    settings: kopf.OperatorSettings
    url: str


@contextlib.asynccontextmanager
async def run_operator(
    registry: kopf.OperatorRegistry,
    emulator: Emulator,
    *,
    wait_for: Iterable[str] = (),
    settings_hook: Callable[[kopf.OperatorSettings], None] | None = None,
    namespaces: Iterable[str] = (),
    startup_timeout: float = 30.0,
) -> AsyncIterator[OperatorRun]:
    """Run the handlers of ``registry`` against a serving ``emulator`` during the block.

    Returns once kopf is ready and watches every resource named in ``wait_for`` (plural,
    kind, short name or ``plural.group``), so objects created in the block are seen as new.
    ``namespaces`` restricts the operator; by default it is cluster-wide.
    """
    if emulator.url is None:
        raise RuntimeError("the emulator is not serving: use `async with emulator.serving():`")
    settings = quick_settings()
    if settings_hook is not None:
        settings_hook(settings)
    target = _login_target(registry)
    target.url = emulator.url
    # A concurrent future: kopf resolves it from its own thread, this loop awaits it safely.
    ready_flag: concurrent.futures.Future[Any] = concurrent.futures.Future()
    stop_flag = threading.Event()
    selected = list(namespaces)
    operator = asyncio.create_task(
        asyncio.to_thread(
            kopf.run,
            registry=registry,
            settings=settings,
            standalone=True,
            clusterwide=not selected,
            namespaces=selected,
            stop_flag=stop_flag,
            ready_flag=ready_flag,
        )
    )
    try:
        await _wait_until_watching(operator, ready_flag, emulator, list(wait_for), startup_timeout)
        yield OperatorRun(settings=settings, url=emulator.url)
    finally:
        stop_flag.set()
        try:
            await operator
        finally:
            target.url = None


async def _wait_until_watching(
    operator: asyncio.Task[None],
    ready_flag: concurrent.futures.Future[Any],
    emulator: Emulator,
    resources: list[str],
    startup_timeout: float,
) -> None:
    async def started() -> None:
        await asyncio.wrap_future(ready_flag)
        for resource in resources:
            await emulator.wait_for_watch(resource)

    waiting = asyncio.create_task(started())
    done, _ = await asyncio.wait(
        {operator, waiting}, timeout=startup_timeout, return_when=asyncio.FIRST_COMPLETED
    )
    if waiting in done:
        return
    waiting.cancel()
    if operator in done:
        operator.result()  # re-raise the operator's own failure
        raise RuntimeError("the kopf operator exited before it started watching")
    missing = [name for name in resources if not emulator.watches(name)]
    raise TimeoutError(
        f"the kopf operator did not start within {startup_timeout}s"
        + (f"; no watch yet on: {', '.join(missing)}" if missing else "")
    )
