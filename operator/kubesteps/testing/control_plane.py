"""A real Kubernetes control plane for tests: etcd, kube-apiserver and (optionally)
kube-controller-manager, started as local processes on free loopback ports.

No containers and no kubelet: Pods are created (by Jobs, Deployments) but never run. What
it gives that the emulator cannot: the real admission chain (CRD schemas, CEL and its cost
budget, ValidatingAdmissionPolicy), RBAC with token users and ServiceAccounts, OpenAPI for
plain ``kubectl apply``, server-side Tables, Events, Leases, garbage collection and the Job
controller.

    assets = Assets.find()                      # TEST_ASSET_*, or KUBEBUILDER_ASSETS
    with ControlPlane.start(assets, workdir) as cp:
        cp.install_crd(crd_manifest)            # CRDRefused with the server's reasons
        cp.kubectl("apply", "-f", "pipeline.yaml", user="alice")
        cp.request("GET", "/api/v1/namespaces")

The binaries are found the way controller-runtime's envtest finds them: ``TEST_ASSET_ETCD``,
``TEST_ASSET_KUBE_APISERVER``, ``TEST_ASSET_KUBECTL`` (and ``TEST_ASSET_KUBE_CONTROLLER_MANAGER``,
``TEST_ASSET_HELM``) name single files; otherwise a folder holding them, passed in or taken
from ``KUBEBUILDER_ASSETS``. Every process runs in its own process group, which ``stop()``
ends and then checks is empty. Logs stay in ``<workdir>/logs``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlencode

import yaml

T = TypeVar("T")

ADMIN = "admin"
# Ordinary users and their groups (besides system:authenticated, which every user gets).
DEFAULT_USERS: Mapping[str, Sequence[str]] = {
    "alice": ("kubesteps-approvers", "developers"),
    "bob": ("developers",),
}
_ASSETS = {
    "etcd": "TEST_ASSET_ETCD",
    "kube_apiserver": "TEST_ASSET_KUBE_APISERVER",
    "kubectl": "TEST_ASSET_KUBECTL",
    "kube_controller_manager": "TEST_ASSET_KUBE_CONTROLLER_MANAGER",
    "helm": "TEST_ASSET_HELM",
}
_REQUIRED = ("etcd", "kube_apiserver", "kubectl")
# A Lease-less, single-node setup: nothing here needs a node, a scheduler or a cloud.
_CONTROLLERS = "*"
_STOP_GRACE = 10.0


class ControlPlaneError(RuntimeError):
    """The control plane could not be started, used or stopped; the message says why."""


class AssetsMissing(ControlPlaneError):
    """A binary the control plane needs was not found."""


class CRDRefused(ControlPlaneError):
    """kube-apiserver refused a CustomResourceDefinition (schema, CEL cost, names)."""


class ApiStatusError(ControlPlaneError):
    """kube-apiserver answered a request with an error ``Status``."""

    def __init__(self, status: int, body: Mapping[str, Any], method: str, path: str) -> None:
        self.status = status
        self.body = dict(body)
        self.reason = str(body.get("reason", ""))
        self.message = str(body.get("message", ""))
        super().__init__(f"{method} {path}: {status} {self.reason}: {self.message}")

    @property
    def causes(self) -> list[dict[str, Any]]:
        details = self.body.get("details") or {}
        return list(details.get("causes") or [])


@dataclass(frozen=True)
class Assets:
    """Where the control-plane binaries are; controller manager and helm are optional."""

    etcd: Path
    kube_apiserver: Path
    kubectl: Path
    kube_controller_manager: Path | None = None
    helm: Path | None = None

    @classmethod
    def find(
        cls, directory: str | Path | None = None, *, environ: Mapping[str, str] | None = None
    ) -> Assets:
        """``TEST_ASSET_*`` files win; then ``directory``; then ``KUBEBUILDER_ASSETS``."""
        env = os.environ if environ is None else environ
        folder = directory if directory is not None else env.get("KUBEBUILDER_ASSETS")
        found: dict[str, Path | None] = {}
        for attribute, variable in _ASSETS.items():
            binary = attribute.replace("_", "-")
            candidate: Path | None = None
            if env.get(variable):
                candidate = Path(env[variable])
                if not _executable(candidate):
                    raise AssetsMissing(f"{variable}={candidate} is not an executable file")
            elif folder and _executable(Path(folder) / binary):
                candidate = Path(folder) / binary
            found[attribute] = candidate.resolve() if candidate else None
        missing = [name.replace("_", "-") for name in _REQUIRED if found[name] is None]
        if missing:
            where = f"in {folder}" if folder else "(no folder given and KUBEBUILDER_ASSETS unset)"
            raise AssetsMissing(
                f"no {', '.join(missing)} {where}: point KUBEBUILDER_ASSETS at a folder holding "
                "etcd, kube-apiserver and kubectl, or set TEST_ASSET_ETCD, "
                "TEST_ASSET_KUBE_APISERVER and TEST_ASSET_KUBECTL"
            )
        return cls(
            etcd=_present(found["etcd"]),
            kube_apiserver=_present(found["kube_apiserver"]),
            kubectl=_present(found["kubectl"]),
            kube_controller_manager=found["kube_controller_manager"],
            helm=found["helm"],
        )


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _present(path: Path | None) -> Path:
    assert path is not None
    return path


@dataclass(frozen=True)
class User:
    """A token-authenticated user and the kubeconfig that logs in as them."""

    name: str
    token: str
    groups: tuple[str, ...]
    kubeconfig: Path


@dataclass
class _Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_user_kubeconfig(
    path: Path, *, server: str, ca_path: Path, user: str, token: str, namespace: str = "default"
) -> Path:
    """A kubeconfig that logs in to ``server`` (verified against ``ca_path``) with a token."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "control-plane",
                "cluster": {"server": server, "certificate-authority": str(ca_path)},
            }
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [
            {
                "name": user,
                "context": {"cluster": "control-plane", "user": user, "namespace": namespace},
            }
        ],
        "current-context": user,
        "preferences": {},
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path


@dataclass
class ControlPlane:
    """A running etcd + kube-apiserver (+ kube-controller-manager). Use ``start()``."""

    url: str
    ca_path: Path
    workdir: Path
    assets: Assets
    users: dict[str, User]
    # Seconds each part took to become ready, and the total, for the docs and reports.
    timings: dict[str, float] = field(default_factory=dict)
    _processes: list[_Process] = field(default_factory=list, repr=False)
    _ssl: ssl.SSLContext | None = field(default=None, repr=False)

    # -- starting and stopping ----------------------------------------------------------------

    @classmethod
    def start(
        cls,
        assets: Assets,
        workdir: str | Path,
        *,
        users: Mapping[str, Sequence[str]] = DEFAULT_USERS,
        controller_manager: bool = True,
        apiserver_args: Sequence[str] = (),
        timeout: float = 60.0,
        attempts: int = 3,
    ) -> ControlPlane:
        """Start the processes and return once the API server is ready.

        ``apiserver_args`` are added to kube-apiserver's command line (e.g.
        ``--enable-admission-plugins=...``).

        Ports are picked free; when another process takes one in between (the server then
        exits at once), the start is retried with new ports, up to ``attempts`` times.
        """
        root = Path(workdir)
        if controller_manager and assets.kube_controller_manager is None:
            raise AssetsMissing(
                "kube-controller-manager is needed (garbage collection, Jobs): set "
                "TEST_ASSET_KUBE_CONTROLLER_MANAGER or put it next to kube-apiserver"
            )
        attempt = 0
        while True:
            attempt += 1
            plane = cls(
                url="", ca_path=root / "pki" / "ca.crt", workdir=root, assets=assets, users={}
            )
            try:
                plane._boot(
                    users,
                    controller_manager=controller_manager,
                    apiserver_args=apiserver_args,
                    timeout=timeout,
                )
                return plane
            except _PortTaken as taken:
                plane.stop()
                if attempt >= attempts:
                    raise ControlPlaneError(
                        f"{taken}: ports kept being taken; see the logs in {plane.log_dir}"
                    ) from None
            except BaseException:
                plane.stop()
                raise

    def __enter__(self) -> ControlPlane:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def log_dir(self) -> Path:
        return self.workdir / "logs"

    def logs(self) -> dict[str, Path]:
        """The log file of each process started (also of the ones that stopped)."""
        return {process.name: process.log for process in self._processes}

    def stop(self) -> None:
        """Stop every process (newest first): SIGTERM to its group, SIGKILL after a grace.

        Raises ControlPlaneError when a process group still has members afterwards.
        """
        leftovers: list[str] = []
        for process in reversed(self._processes):
            if not _stop_group(process.popen, _STOP_GRACE):
                leftovers.append(f"{process.name} (pid {process.popen.pid})")
        if leftovers:
            raise ControlPlaneError(f"processes survived SIGKILL: {', '.join(leftovers)}")

    def running(self) -> list[str]:
        """Names of the processes whose group still has a live member."""
        return [p.name for p in self._processes if _group_alive(p.popen)]

    def _boot(
        self,
        users: Mapping[str, Sequence[str]],
        *,
        controller_manager: bool,
        apiserver_args: Sequence[str],
        timeout: float,
    ) -> None:
        began = time.monotonic()
        for folder in (
            "etcd",
            "pki",
            "apiserver-certs",
            "controller-manager-certs",
            "logs",
            "kubeconfigs",
        ):
            (self.workdir / folder).mkdir(parents=True, exist_ok=True)
        (self.workdir / "etcd").chmod(0o700)
        deadline = began + timeout

        etcd_port, etcd_peer = free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        peer_url = f"http://127.0.0.1:{etcd_peer}"
        self._spawn(
            "etcd",
            [
                str(self.assets.etcd),
                "--data-dir",
                str(self.workdir / "etcd"),
                "--listen-client-urls",
                etcd_url,
                "--advertise-client-urls",
                etcd_url,
                "--listen-peer-urls",
                peer_url,
                "--initial-advertise-peer-urls",
                peer_url,
                "--initial-cluster",
                f"default={peer_url}",
                "--unsafe-no-fsync",
            ],
        )
        # While etcd starts: the ServiceAccount signing key and the users.
        sa_key, sa_pub = self._service_account_keys()
        tokens = self._token_file(users)
        self._until(deadline, "etcd", lambda: _http_ok(f"{etcd_url}/health"))
        self.timings["etcd"] = time.monotonic() - began

        api_port = free_port()
        self.url = f"https://127.0.0.1:{api_port}"
        self._spawn(
            "kube-apiserver",
            [
                str(self.assets.kube_apiserver),
                "--etcd-servers",
                etcd_url,
                "--cert-dir",
                str(self.workdir / "apiserver-certs"),
                "--secure-port",
                str(api_port),
                "--bind-address",
                "127.0.0.1",
                "--advertise-address",
                "127.0.0.1",
                # With a loopback advertise address, 1.37 refuses the default lease reconciler.
                "--endpoint-reconciler-type",
                "none",
                "--service-cluster-ip-range",
                "10.0.0.0/24",
                "--authorization-mode",
                "RBAC",
                "--token-auth-file",
                str(tokens),
                "--service-account-issuer",
                "https://kubernetes.default.svc",
                "--service-account-key-file",
                str(sa_pub),
                "--service-account-signing-key-file",
                str(sa_key),
                # No token controller mounts tokens into Pods (nothing runs them anyway).
                "--disable-admission-plugins",
                "ServiceAccount",
                "--allow-privileged",
                *apiserver_args,
            ],
        )
        admin_token = self.users[ADMIN].token
        self._until(
            deadline, "kube-apiserver", lambda: _https_ok(f"{self.url}/readyz", admin_token)
        )
        self._write_ca()
        self._ssl = ssl.create_default_context(cafile=str(self.ca_path))
        for user in self.users.values():
            write_user_kubeconfig(
                user.kubeconfig,
                server=self.url,
                ca_path=self.ca_path,
                user=user.name,
                token=user.token,
            )
        # The CA really signs what the server presents: every later request verifies it.
        self.request("GET", "/version")
        self.timings["kube-apiserver"] = time.monotonic() - began

        if controller_manager:
            manager = self.assets.kube_controller_manager
            assert manager is not None
            kubeconfig = str(self.users[ADMIN].kubeconfig)
            manager_port = free_port()
            self._spawn(
                "kube-controller-manager",
                [
                    str(manager),
                    "--kubeconfig",
                    kubeconfig,
                    "--authentication-kubeconfig",
                    kubeconfig,
                    "--authorization-kubeconfig",
                    kubeconfig,
                    "--authentication-skip-lookup",
                    "--secure-port",
                    str(manager_port),
                    "--bind-address",
                    "127.0.0.1",
                    "--cert-dir",
                    str(self.workdir / "controller-manager-certs"),
                    "--controllers",
                    _CONTROLLERS,
                    "--leader-elect=false",
                    "--use-service-account-credentials=false",
                    "--service-account-private-key-file",
                    str(sa_key),
                    "--root-ca-file",
                    str(self.ca_path),
                ],
            )
            self._until(
                deadline,
                "kube-controller-manager",
                lambda: _https_ok(f"https://127.0.0.1:{manager_port}/healthz", None),
            )
            self.timings["kube-controller-manager"] = time.monotonic() - began
        self.timings["total"] = time.monotonic() - began

    def _service_account_keys(self) -> tuple[Path, Path]:
        """An RSA key pair for signing ServiceAccount tokens (TokenRequest works)."""
        key, pub = self.workdir / "pki" / "sa.key", self.workdir / "pki" / "sa.pub"
        openssl = shutil.which("openssl")
        if openssl is None:
            raise ControlPlaneError("openssl is needed to make the ServiceAccount signing key")
        subprocess.run(
            [openssl, "genrsa", "-out", str(key), "2048"], check=True, capture_output=True
        )
        subprocess.run(
            [openssl, "rsa", "-in", str(key), "-pubout", "-out", str(pub)],
            check=True,
            capture_output=True,
        )
        return key, pub

    def _token_file(self, users: Mapping[str, Sequence[str]]) -> Path:
        """``token,user,uid,"group1,group2"`` lines: an admin and the ordinary users."""
        everyone = {ADMIN: ("system:masters",), **{name: tuple(g) for name, g in users.items()}}
        lines = []
        for name, groups in everyone.items():
            if "," in name or any("," in group or '"' in group for group in groups):
                raise ControlPlaneError(f"user {name!r}: no commas or quotes in names and groups")
            token = f"{name}-{os.urandom(12).hex()}"
            lines.append(f'{token},{name},uid-{name},"{",".join(groups)}"')
            self.users[name] = User(
                name=name,
                token=token,
                groups=tuple(groups),
                kubeconfig=self.workdir / "kubeconfigs" / f"{name}.kubeconfig",
            )
        path = self.workdir / "pki" / "tokens.csv"
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)
        return path

    def _write_ca(self) -> None:
        """kube-apiserver self-signs: apiserver.crt holds the serving cert, then its CA."""
        bundle = (self.workdir / "apiserver-certs" / "apiserver.crt").read_text()
        blocks = [
            "-----BEGIN CERTIFICATE-----"
            + block.split("-----END CERTIFICATE-----")[0]
            + "-----END CERTIFICATE-----\n"
            for block in bundle.split("-----BEGIN CERTIFICATE-----")[1:]
        ]
        if len(blocks) < 2:
            raise ControlPlaneError(f"no CA after the serving certificate in {bundle[:80]!r}")
        self.ca_path.write_text(blocks[1])

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = self.log_dir / f"{name}.log"
        with log.open("ab") as sink:
            popen = subprocess.Popen(
                argv,
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                start_new_session=True,
            )
        self._processes.append(_Process(name, popen, log))

    def _until(self, deadline: float, name: str, ready: Callable[[], bool]) -> None:
        process = next(p for p in self._processes if p.name == name)
        while True:
            code = process.popen.poll()
            if code is not None:
                text = process.log.read_text(errors="replace")
                if "address already in use" in text:
                    raise _PortTaken(name)
                raise ControlPlaneError(
                    f"{name} exited with {code} before it was ready; the end of {process.log}:\n"
                    + _tail(text)
                )
            if ready():
                return
            if time.monotonic() > deadline:
                raise ControlPlaneError(
                    f"{name} was not ready in time; the end of {process.log}:\n"
                    + _tail(process.log.read_text(errors="replace"))
                )
            time.sleep(0.05)

    # -- using it -------------------------------------------------------------------------

    def user(self, name: str) -> User:
        return self.users[name]

    @property
    def admin(self) -> User:
        return self.users[ADMIN]

    def env(self, user: str = ADMIN) -> dict[str, str]:
        """The environment for a client process that acts as ``user`` (KUBECONFIG set)."""
        return {**os.environ, "KUBECONFIG": str(self.users[user].kubeconfig)}

    def kubectl(
        self,
        *args: str,
        user: str = ADMIN,
        check: bool = True,
        stdin: str | None = None,
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run the matching kubectl as ``user``; with ``check``, a failure raises (with output)."""
        result = subprocess.run(
            [str(self.assets.kubectl), *args],
            env=self.env(user),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise ControlPlaneError(
                f"kubectl {' '.join(args)} (as {user}) exited with {result.returncode}:\n"
                f"{result.stdout}{result.stderr}"
            )
        return result

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        user: str = ADMIN,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
        accept: str = "application/json",
        timeout: float = 30.0,
    ) -> Any:
        """One API request as ``user``; the decoded JSON, or ApiStatusError."""
        url = self.url + path + (f"?{urlencode(params)}" if params else "")
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self.users[user].token}", "Accept": accept}
        if data is not None:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=self._ssl) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as error:
            raw = error.read().decode(errors="replace")
            try:
                status = json.loads(raw)
            except ValueError:
                status = {"message": raw}
            raise ApiStatusError(error.code, status, method, path) from None
        return json.loads(text) if text else None

    def install_crd(self, manifest: Mapping[str, Any], *, timeout: float = 30.0) -> dict[str, Any]:
        """Create (or replace) a CRD and wait until it is served; CRDRefused with the reasons.

        The server refuses a CRD whose schema is not structural or whose CEL rules exceed
        the cost budget at once (422); a name clash shows later, as a condition.
        """
        began = time.monotonic()
        name = manifest["metadata"]["name"]
        path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
        try:
            try:
                self.request("POST", path, dict(manifest))
            except ApiStatusError as error:
                if error.status != 409:
                    raise
                current = self.request("GET", f"{path}/{name}")
                replacement = {
                    **manifest,
                    "metadata": {
                        **manifest["metadata"],
                        "resourceVersion": current["metadata"]["resourceVersion"],
                    },
                }
                self.request("PUT", f"{path}/{name}", replacement)
        except ApiStatusError as error:
            reasons = (
                "\n".join(f"* {c.get('field', '')}: {c.get('message', '')}" for c in error.causes)
                or error.message
            )
            raise CRDRefused(
                f"kube-apiserver refused the CRD {name} ({error.status} {error.reason}):\n{reasons}"
            ) from None

        def established() -> dict[str, Any] | None:
            stored: dict[str, Any] = self.request("GET", f"{path}/{name}")
            # Right after the create, the server answers conditions: null.
            found = (stored.get("status") or {}).get("conditions") or []
            conditions = {c["type"]: c for c in found}
            for kind, bad in (("NamesAccepted", "False"), ("NonStructuralSchema", "True")):
                if conditions.get(kind, {}).get("status") == bad:
                    raise CRDRefused(f"CRD {name}: {kind}: {conditions[kind].get('message')}")
            if conditions.get("Established", {}).get("status") == "True":
                return stored
            return None

        stored = self.wait_for(established, f"CRD {name} to be established", timeout=timeout)
        self.timings[f"crd {name}"] = time.monotonic() - began
        return stored

    def wait_for(
        self,
        check: Callable[[], T | None],
        what: str,
        *,
        timeout: float = 30.0,
        interval: float = 0.1,
    ) -> T:
        """Poll ``check`` until it returns something true (not None, False, 0 or empty)."""
        deadline = time.monotonic() + timeout
        while True:
            last = check()
            if last:
                return last
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
            time.sleep(interval)


class _PortTaken(ControlPlaneError):
    """A process exited at start-up because another one took its port in between."""


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _https_ok(url: str, token: str | None) -> bool:
    # Before the CA is known (the server makes it at start-up), the readiness probe cannot
    # verify the certificate; every request after start-up does.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        request = urllib.request.Request(url, headers=headers)
        with urllib.request.urlopen(request, timeout=2, context=context) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _group_alive(popen: subprocess.Popen[bytes]) -> bool:
    popen.poll()  # reap the leader if it exited, so it does not count as a zombie member
    try:
        os.killpg(popen.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop_group(popen: subprocess.Popen[bytes], grace: float) -> bool:
    """SIGTERM the process group, SIGKILL it after ``grace``; True when nothing is left."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        if not _group_alive(popen):
            return True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _group_alive(popen):
                return True
            time.sleep(0.05)
    return not _group_alive(popen)


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.splitlines()[-lines:])
