"""Starting `kubesteps ui`: credentials from the kubeconfig, the server, the printed URL."""

from __future__ import annotations

import asyncio
import errno
import os
import webbrowser
from collections.abc import Callable

import kopf

from kubesteps.kube.client import Credentials, KubeClient
from kubesteps.ui.server import Settings, serving


class UiError(Exception):
    """Why the UI cannot start, in one line."""


def credentials(kubeconfig: str | None = None) -> tuple[Credentials, str | None]:
    """The kubeconfig's current context: how to reach the server, and its namespace."""
    # kopf reads $KUBECONFIG: --kubeconfig stands in for it during the read only.
    before = os.environ.get("KUBECONFIG")
    if kubeconfig is not None:
        os.environ["KUBECONFIG"] = kubeconfig
    try:
        info = kopf.login_with_kubeconfig(settings=kopf.OperatorSettings())
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UiError(f"cannot read the kubeconfig ({error})") from None
    finally:
        if before is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = before
    if info is None:
        raise UiError("no kubeconfig: set KUBECONFIG, pass --kubeconfig or create ~/.kube/config")
    return Credentials.from_kopf(info), info.default_namespace


async def run_ui(*, port: int, namespace: str | None, all_namespaces: bool,
                 kubeconfig: str | None, open_browser: bool,
                 echo: Callable[[str], None]) -> None:
    creds, context_namespace = credentials(kubeconfig)
    scope = None if all_namespaces else (namespace or context_namespace or "default")
    settings = Settings(namespace=scope)
    async with KubeClient(creds) as api:
        try:
            async with serving(api, settings, port) as url:
                where = "all namespaces" if scope is None else f"namespace {scope}"
                echo(f"kubesteps ui: {url}")
                echo(f"(Pipelines of {where} on {creds.server}; Ctrl-C stops it)")
                if open_browser:
                    await asyncio.to_thread(webbrowser.open, url)
                await asyncio.Event().wait()
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise UiError(f"port {port} on 127.0.0.1 is in use: pick another with --port,"
                              " or --port 0 for a free one") from None
            raise
