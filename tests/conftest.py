"""Fixtures shared by every test package: the API emulator and the operator runner, and one
real control plane per session for the tests that ask for it (``control_plane``)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kubesteps.testing.control_plane import Assets, ControlPlane, ControlPlaneError

pytest_plugins = ["kubesteps.testing.pytest_plugin"]

REPO = Path(__file__).resolve().parents[1]
BUILD_BINARIES = REPO / "tests" / "cluster" / "build-binaries.sh"
CRD = REPO / "crds" / "pipelines.kubesteps.dev.yaml"
TEMPLATE_CRD = REPO / "crds" / "pipelinetemplates.kubesteps.dev.yaml"

# What hardened clusters (and OpenShift) add: setting blockOwnerDeletion on an ownerReference
# needs `update` on the owner's finalizers, which the chart grants for exactly this plugin.
APISERVER_ARGS = ("--enable-admission-plugins=OwnerReferencesPermissionEnforcement",)

_LOGS_KEPT = pytest.StashKey[Path]()
_STARTED = pytest.StashKey[ControlPlane]()


def cluster_assets() -> Assets:
    """The control-plane binaries: built (once per machine) or found by build-binaries.sh."""
    result = subprocess.run([str(BUILD_BINARIES)], capture_output=True, text=True, check=False)
    if result.returncode != 0 or not result.stdout.strip():
        pytest.fail(
            "the real control plane's binaries are missing and could not be built "
            f"({BUILD_BINARIES.relative_to(REPO)} exited with {result.returncode}):\n"
            f"{result.stderr}\nRun `make cluster-bin` to see the build; docs/testing.md says "
            "what it needs.",
            pytrace=False,
        )
    return Assets.find(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def control_plane(request: pytest.FixtureRequest) -> Iterator[ControlPlane]:
    """etcd + kube-apiserver + kube-controller-manager on loopback ports, with the
    Pipeline CRD installed; users ``admin`` (system:masters), ``alice`` and ``bob``.

    The object gives ``url``, ``ca_path``, ``users[name].token`` / ``.kubeconfig``, and
    ``kubectl()`` / ``request()`` helpers. When a test of the session failed, the
    processes' logs are kept (the path is printed at the end).
    """
    assets = cluster_assets()
    workdir = Path(tempfile.mkdtemp(prefix="kubesteps-control-plane-"))
    config = request.config
    try:
        plane = ControlPlane.start(assets, workdir, apiserver_args=APISERVER_ARGS)
    except ControlPlaneError as error:
        _keep_logs(config, workdir)
        pytest.fail(f"the control plane did not start: {error}", pytrace=False)
    config.stash[_STARTED] = plane
    try:
        for path in (CRD, TEMPLATE_CRD):
            try:
                plane.install_crd(yaml.safe_load(path.read_text()))
            except ControlPlaneError as error:
                pytest.fail(f"{path.relative_to(REPO)}: {error}", pytrace=False)
        yield plane
    finally:
        failed = request.session.testsfailed > 0
        try:
            plane.stop()
        finally:
            if failed:
                _keep_logs(config, workdir)
            shutil.rmtree(workdir, ignore_errors=True)


def _keep_logs(config: pytest.Config, workdir: Path) -> None:
    kept = Path(tempfile.mkdtemp(prefix="kubesteps-control-plane-logs-"))
    if (workdir / "logs").is_dir():
        shutil.copytree(workdir / "logs", kept, dirs_exist_ok=True)
    config.stash[_LOGS_KEPT] = kept


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    config = terminalreporter.config
    plane = config.stash.get(_STARTED, None)
    if plane is not None:
        timings = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in plane.timings.items())
        terminalreporter.write_line(f"control plane (ready after): {timings}")
    kept = config.stash.get(_LOGS_KEPT, None)
    if kept is not None:
        terminalreporter.write_line(f"control-plane logs kept in {kept}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "control_plane" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.cluster)
