"""The floor of the scale benchmark: a kopf operator whose only handler states Ready.

Run as a child process (``python -m bench.noop_operator``), with the kubesteps operator's
own kopf settings and login, against the cluster ``KUBECONFIG`` names. It stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import UTC, datetime
from typing import Any

import kopf

from kubesteps.controller.operator import Connection, settings_hook


def registry(connection: Connection) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo:
        return connection.login(**kwargs)

    # async, like the kubesteps handler: kopf runs a sync handler through a thread pool.
    @kopf.on.create("kubesteps.dev", "v1alpha1", "pipelines", registry=registry)
    async def ready(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        patch.status["conditions"] = [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Succeeded",
                "message": "no-op",
                "observedGeneration": body.metadata.get("generation"),
                "lastTransitionTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        ]

    return registry


async def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    settings = kopf.OperatorSettings()
    settings_hook(settings, {})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await kopf.operator(
        registry=registry(Connection()),
        settings=settings,
        standalone=True,
        clusterwide=True,
        stop_flag=stop,
    )


if __name__ == "__main__":
    asyncio.run(main())
