"""Starting `kubesteps ui`: credentials as the CLI finds them (kubesteps.plugin.kubeconfig_loader:
--kubeconfig, $KUBECONFIG, ~/.kube/config, --context), the server, the printed URL."""

from __future__ import annotations

import asyncio
import errno
import webbrowser
from collections.abc import Callable

from kubesteps.kube.client import KubeClient
from kubesteps.ui.server import Settings, serving
from kubesteps.views.view_errors import ViewError


class UiError(Exception):
    """Why the UI cannot start, in one line."""


async def run_ui(
    *,
    port: int,
    namespace: str | None,
    all_namespaces: bool,
    kubeconfig: str | None,
    context: str | None,
    open_browser: bool,
    echo: Callable[[str], None],
) -> None:
    from kubesteps.plugin.kubeconfig_loader import load

    try:
        target = load(kubeconfig, context)
    except ViewError as error:
        raise UiError(str(error)) from None
    scope = None if all_namespaces else (namespace or target.namespace)
    settings = Settings(namespace=scope)
    async with KubeClient(target.credentials) as api:
        try:
            async with serving(api, settings, port) as url:
                where = "all namespaces" if scope is None else f"namespace {scope}"
                echo(f"kubesteps ui: {url}")
                echo(
                    f"(Pipelines of {where} on {target.credentials.server}, context"
                    f" {target.context}; Ctrl-C stops it)"
                )
                if open_browser:
                    await asyncio.to_thread(webbrowser.open, url)
                await asyncio.Event().wait()
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise UiError(
                    f"port {port} on 127.0.0.1 is in use: pick another with --port,"
                    " or --port 0 for a free one"
                ) from None
            raise
