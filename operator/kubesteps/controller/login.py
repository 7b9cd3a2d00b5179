"""Logging in: the official ``kubernetes`` client resolves the credentials, for kopf and for
the operator's own API client alike.

In a pod: the service account's projected token (re-read each time kopf asks, so a rotated
token is picked up), the cluster's CA and address. Elsewhere: the kubeconfig that
``KUBECONFIG`` names (a list of files is merged; default ``~/.kube/config``), with every kind
of user the client supports: a token or token file, a client certificate, a user name and
password, an ``exec`` credential plugin (as EKS, GKE and AKS kubeconfigs use; the plugin runs
each time kopf logs in again, after a 401), and the ``oidc`` auth provider.

Resolving may run a plugin, that is, a process: it is done in a worker thread, never in the
event loop (kopf runs a synchronous login handler in one; ``Connection.resolve`` does the same).
"""

from __future__ import annotations

import os
from typing import Any

import kopf

NO_CREDENTIALS = (
    "no credentials: not in a cluster (no service account token) and no usable kubeconfig "
    "(set KUBECONFIG or create ~/.kube/config)"
)


def login_via_kubernetes_client(**_: Any) -> kopf.ConnectionInfo:
    """What the ``kubernetes`` client would connect with, as a ``kopf.ConnectionInfo``.

    Raises ``kopf.LoginError`` with the client's reason when there is nothing to log in with.
    Blocking (files, maybe a credential plugin): call it from a thread.
    """
    # Imported here: the client's models take a moment to load, and only logging in needs them.
    import kubernetes.client
    import kubernetes.config
    from kubernetes.config.config_exception import ConfigException

    config = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_incluster_config(  # type: ignore[no-untyped-call]
            client_configuration=config
        )
    except ConfigException:
        # KUBECONFIG is read now, not when the client was first imported (it may have changed).
        files = os.environ.get("KUBECONFIG") or "~/.kube/config"
        try:
            kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=files, client_configuration=config
            )
        except (ConfigException, OSError) as error:
            raise kopf.LoginError(f"{NO_CREDENTIALS}: {error}") from None
    # Tokens of every origin (a plain token, a token file, a plugin, an auth provider) end up
    # behind this call; it also renews the ones that expired.
    header = config.get_api_key_with_prefix("BearerToken") or config.get_api_key_with_prefix(
        "authorization"
    )
    scheme, _space, token = (header or "").rpartition(" ")
    return kopf.ConnectionInfo(
        server=config.host,
        ca_path=config.ssl_ca_cert or None,  # may be a temporary file the client wrote
        insecure=not config.verify_ssl,
        username=config.username or None,
        password=config.password or None,
        scheme=scheme or None,
        token=token or None,
        certificate_path=config.cert_file or None,
        private_key_path=config.key_file or None,
        priority=100,
    )
