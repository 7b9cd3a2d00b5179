"""Credentials as kubectl finds them: ``--kubeconfig``, else ``$KUBECONFIG`` (a list of
files; the first to set a value wins, as kubectl merges them), else ``~/.kube/config``,
else the Pod's service account. ``--context`` picks a context (default: the current one),
whose namespace is the default for ``-n``. Tokens, token files, client certificates,
basic auth and ``exec`` credential plugins are supported; ``auth-provider`` is not.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kubesteps.kube.client import Credentials
from kubesteps.views.view_errors import ViewError

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class KubeconfigError(ViewError):
    """The kubeconfig cannot be used: which file or entry, and what is wrong."""


@dataclass(frozen=True)
class Target:
    credentials: Credentials
    namespace: str
    context: str


def _files(explicit: str | None) -> list[Path]:
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise KubeconfigError(f"--kubeconfig {explicit}: no such file")
        return [path]
    env = os.environ.get("KUBECONFIG", "")
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    default = Path.home() / ".kube" / "config"
    return [default] if default.is_file() else []


def _merged(paths: list[Path]) -> dict[str, Any]:
    merged: dict[str, Any] = {"clusters": {}, "users": {}, "contexts": {}}
    current = ""
    for path in paths:
        if not path.is_file():
            continue
        try:
            document = yaml.safe_load(path.read_text()) or {}
        except (yaml.YAMLError, OSError) as error:
            raise KubeconfigError(f"kubeconfig {path}: cannot read it: {error}") from None
        if not isinstance(document, Mapping):
            raise KubeconfigError(f"kubeconfig {path}: not a mapping")
        current = current or str(document.get("current-context") or "")
        for section, key in (("clusters", "cluster"), ("users", "user"), ("contexts", "context")):
            for entry in document.get(section) or []:
                if isinstance(entry, Mapping) and entry.get("name"):
                    body = dict(entry.get(key) or {})
                    body["_dir"] = str(path.parent)
                    merged[section].setdefault(str(entry["name"]), body)
    merged["current"] = current
    return merged


def load(kubeconfig: str | None = None, context: str | None = None) -> Target:
    """The server, credentials and default namespace to use."""
    paths = _files(kubeconfig)
    if not any(p.is_file() for p in paths):
        if os.environ.get("KUBERNETES_SERVICE_HOST") and (SERVICE_ACCOUNT / "token").is_file():
            return _in_cluster()
        raise KubeconfigError(
            "no kubeconfig found (looked at --kubeconfig, $KUBECONFIG and "
            "~/.kube/config): point --kubeconfig at one"
        )
    config = _merged(paths)
    name = context or config["current"]
    if not name:
        raise KubeconfigError("the kubeconfig has no current-context: pass --context")
    ctx = config["contexts"].get(name)
    if ctx is None:
        known = ", ".join(sorted(config["contexts"])) or "none"
        raise KubeconfigError(f"context {name!r} is not in the kubeconfig (contexts: {known})")
    cluster = config["clusters"].get(str(ctx.get("cluster") or ""))
    if cluster is None or not cluster.get("server"):
        raise KubeconfigError(
            f"context {name!r} names cluster {ctx.get('cluster')!r}, which "
            "the kubeconfig does not define (with a server)"
        )
    user = config["users"].get(str(ctx.get("user") or ""), {})
    credentials = _credentials(cluster, user, name)
    return Target(credentials, str(ctx.get("namespace") or "default"), name)


def _path(entry: Mapping[str, Any], key: str) -> str | None:
    value = entry.get(key)
    if not value:
        return None
    path = Path(str(value)).expanduser()
    return str(path if path.is_absolute() else Path(entry["_dir"]) / path)


def _data(entry: Mapping[str, Any], key: str) -> bytes | None:
    value = entry.get(key)
    return base64.b64decode(str(value)) if value else None


def _credentials(cluster: Mapping[str, Any], user: Mapping[str, Any], context: str) -> Credentials:
    token = user.get("token")
    token_file = _path(user, "tokenFile")
    if not token and token_file:
        token = Path(token_file).read_text().strip()
    cert_data, key_data = _data(user, "client-certificate-data"), _data(user, "client-key-data")
    if user.get("exec"):
        status = _exec(user["exec"], context)
        token = status.get("token") or token
        if status.get("clientCertificateData"):
            cert_data = str(status["clientCertificateData"]).encode()
            key_data = str(status.get("clientKeyData") or "").encode()
    if user.get("auth-provider"):
        raise KubeconfigError(
            f"context {context!r}: auth-provider credentials are not "
            "supported; use an exec credential plugin"
        )
    return Credentials(
        server=str(cluster["server"]),
        token=str(token) if token else None,
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        ca_path=_path(cluster, "certificate-authority"),
        ca_data=_data(cluster, "certificate-authority-data"),
        certificate_path=_path(user, "client-certificate"),
        private_key_path=_path(user, "client-key"),
        certificate_data=cert_data,
        private_key_data=key_data,
        username=str(user["username"]) if user.get("username") else None,
        password=str(user["password"]) if user.get("password") else None,
    )


def _exec(spec: Mapping[str, Any], context: str) -> Mapping[str, Any]:
    command = [str(spec.get("command") or ""), *(str(a) for a in spec.get("args") or [])]
    env = dict(os.environ)
    for item in spec.get("env") or []:
        if isinstance(item, Mapping) and item.get("name"):
            env[str(item["name"])] = str(item.get("value") or "")
    try:
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, check=True, timeout=60
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise KubeconfigError(
            f"context {context!r}: the exec credential plugin {command[0]!r} failed: {error}"
        ) from None
    try:
        status = json.loads(done.stdout).get("status") or {}
    except ValueError:
        raise KubeconfigError(
            f"context {context!r}: the exec credential plugin "
            f"{command[0]!r} printed no ExecCredential JSON"
        ) from None
    return status if isinstance(status, Mapping) else {}


def _in_cluster() -> Target:
    host = os.environ["KUBERNETES_SERVICE_HOST"]
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    namespace_file = SERVICE_ACCOUNT / "namespace"
    namespace = namespace_file.read_text().strip() if namespace_file.is_file() else "default"
    credentials = Credentials(
        server=server,
        token=(SERVICE_ACCOUNT / "token").read_text().strip(),
        ca_path=str(SERVICE_ACCOUNT / "ca.crt"),
    )
    return Target(credentials, namespace, "in-cluster")
