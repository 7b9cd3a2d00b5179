"""Fixtures shared by every test package: the API emulator and the operator runner, and one
real control plane per session for the tests that ask for it (``control_plane``)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

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


# The first test to ask for the control plane waits for it to start (tens of seconds on a
# busy machine); its per-test limit includes that.
CLUSTER_TIMEOUT = 600


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "control_plane" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.cluster)
            item.add_marker(pytest.mark.slow)
            # One worker runs them all (make test: --dist loadgroup), so the session starts
            # one control plane, not one per worker.
            item.add_marker(pytest.mark.xdist_group("control_plane"))
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(CLUSTER_TIMEOUT))


# -- the `slow` marker, enforced --------------------------------------------------------------
# A test that starts a process (subprocess, asyncio's subprocesses, a fork) must be marked
# `slow`, so that `make test-fast` stays the quick lane. An audit hook sees every start.

_SPAWNS = ("subprocess.Popen", "os.fork", "os.forkpty", "os.posix_spawn", "os.exec")
_current: dict[str, Any] = {"item": None, "spawned": None}


def _watch_spawns(event: str, args: tuple[Any, ...]) -> None:
    if event in _SPAWNS and _current["item"] is not None and _current["spawned"] is None:
        _current["spawned"] = f"{event} {args[1] if event == 'subprocess.Popen' else args[0]!r}"


sys.addaudithook(_watch_spawns)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    _current.update(item=item, spawned=None)
    try:
        return (yield)
    finally:
        _current.update(item=None, spawned=None)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    spawned = _current["spawned"]
    if (
        call.when == "teardown"
        and spawned is not None
        and report.passed
        and item.get_closest_marker("slow") is None
    ):
        report.outcome = "failed"
        report.longrepr = (
            f"{item.nodeid} starts a process ({spawned[:200]}) but is not marked slow: add "
            "@pytest.mark.slow (or pytestmark = pytest.mark.slow for the module), so that "
            "make test-fast leaves it out"
        )
    return report


# -- process-wide state a test leaves behind ---------------------------------------------------
# The redactor is process-wide (as logging is): a credential one test registers (a token an
# exec plugin printed, a Secret an http step sent) would be redacted from every later test's
# statuses on the same worker. Each test starts with the values registered before it.


@pytest.fixture(autouse=True)
def _redactor_isolated() -> Iterator[None]:
    from kubesteps.telemetry.redaction import redactor

    before = set(redactor().values())
    yield
    if set(redactor().values()) != before:
        redactor().forget()
        redactor().register(*before)
