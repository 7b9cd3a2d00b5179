"""`kubesteps operator` as a real process, as the chart starts it, against the emulator.

The emulator serves from the test's event loop, so everything here awaits (never blocks):
the operator processes are asyncio subprocesses, probed over HTTP.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from kubesteps.kube.client import Credentials, KubeClient
from kubesteps.kube.conditions import find
from kubesteps.pipeline.crd import crd
from kubesteps.testing import Emulator, write_kubeconfig
from kubesteps.testing.chaos import (
    ChaosProxy,
    Decision,
    Fault,
    FaultRates,
    ProxiedRequest,
    SeededPlan,
)

from .conftest import API, pipeline, python_step
from .test_login import exec_kubeconfig, plugin_runs

pytestmark = pytest.mark.slow  # each test starts processes

KUBESTEPS = Path(sys.executable).with_name("kubesteps")
LEASES = "coordination.k8s.io/v1"
LEASE = "kubesteps-operator"
# Hang guards, not speed checks: each bounds a wait that normally ends within a second or two.
START_UP = 30.0
SETTLE = 20.0
SHUTDOWN = 10.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Operator:
    """One `kubesteps operator` process, its endpoints and its log file."""

    process: asyncio.subprocess.Process
    name: str
    health: str
    metrics: str | None
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def stop(self) -> int:
        """SIGTERM, as Kubernetes stops a pod; the exit code."""
        self.process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(SHUTDOWN):
                return await self.process.wait()
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            pytest.fail(f"{self.name} ignored SIGTERM for {SHUTDOWN}s:\n{self.output()}")


Start = Callable[..., Awaitable[Operator]]


@pytest_asyncio.fixture
async def api(k8s_emulator: Emulator, kubeconfig: Path) -> AsyncIterator[KubeClient]:
    """A client of an emulator that serves the CRD the operator generates."""
    k8s_emulator.register_crd(crd())
    assert k8s_emulator.url is not None
    async with KubeClient(Credentials(server=k8s_emulator.url, insecure=True)) as client:
        yield client


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session


@pytest_asyncio.fixture
async def start(
    api: KubeClient, kubeconfig: Path, tmp_path: Path, http: aiohttp.ClientSession
) -> AsyncIterator[Start]:
    """Start `kubesteps operator` processes; each is killed at the end if still running."""
    started: list[Operator] = []

    async def launch(
        name: str, *flags: str, metrics: bool = False, config: Path | None = None
    ) -> Operator:
        health = f"http://127.0.0.1:{free_port()}/healthz"
        metrics_port = free_port() if metrics else 0
        log = tmp_path / f"{name}.log"
        with log.open("wb") as sink:
            process = await asyncio.create_subprocess_exec(
                str(KUBESTEPS),
                "operator",
                "--liveness",
                health,
                "--metrics-port",
                str(metrics_port),
                *flags,
                env={**os.environ, "KUBECONFIG": str(config or kubeconfig), "POD_NAME": name},
                stdout=sink,
                stderr=asyncio.subprocess.STDOUT,
            )
        operator = Operator(
            process,
            name,
            health,
            f"http://127.0.0.1:{metrics_port}/metrics" if metrics else None,
            log,
        )
        started.append(operator)
        await healthy(http, operator)
        return operator

    yield launch
    for operator in started:
        if operator.process.returncode is None:
            operator.process.kill()
            await operator.process.wait()


async def healthy(http: aiohttp.ClientSession, operator: Operator) -> None:
    """Wait until the process answers its liveness endpoint."""
    try:
        async with asyncio.timeout(START_UP):
            while True:
                assert operator.process.returncode is None, (
                    f"{operator.name} exited with {operator.process.returncode}:\n"
                    f"{operator.output()}"
                )
                try:
                    async with http.get(operator.health) as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"{operator.name} never answered {operator.health}:\n{operator.output()}")


async def status_of(http: aiohttp.ClientSession, url: str) -> int:
    async with http.get(url) as response:
        return response.status


async def ready(api: KubeClient, name: str, *operators: Operator) -> dict[str, Any]:
    """Wait until the Pipeline is Ready for its current generation."""
    body: dict[str, Any] | None = None
    try:
        async with asyncio.timeout(SETTLE):
            while True:
                body = await api.get(API, "Pipeline", name, "default")
                assert body is not None
                condition = find((body.get("status") or {}).get("conditions", []), "Ready")
                if (
                    condition
                    and condition["status"] == "True"
                    and condition["observedGeneration"] == body["metadata"]["generation"]
                ):
                    return body
                await asyncio.sleep(0.05)
    except TimeoutError:
        logs = "\n".join(f"--- {o.name}:\n{o.output()}" for o in operators)
        pytest.fail(f"Pipeline {name} never became Ready: {body}\n{logs}")


async def settled(api: KubeClient, name: str, *operators: Operator) -> dict[str, Any]:
    """Wait until the Pipeline's Ready condition is about its current generation."""
    body: dict[str, Any] | None = None
    try:
        async with asyncio.timeout(SETTLE):
            while True:
                body = await api.get(API, "Pipeline", name, "default")
                assert body is not None
                condition = find((body.get("status") or {}).get("conditions", []), "Ready")
                if (
                    condition
                    and condition["reason"] not in ("Running", "Pending")
                    and condition["observedGeneration"] == body["metadata"]["generation"]
                ):
                    return body
                await asyncio.sleep(0.05)
    except TimeoutError:
        logs = "\n".join(f"--- {o.name}:\n{o.output()}" for o in operators)
        pytest.fail(f"Pipeline {name} never settled: {body}\n{logs}")


def holder(emulator: Emulator) -> str | None:
    lease = emulator.object("leases", LEASE, "default")
    return None if lease is None else lease["spec"].get("holderIdentity")


async def until(check: Callable[[], bool], what: str, *operators: Operator) -> None:
    try:
        async with asyncio.timeout(SETTLE):
            while True:
                if check():
                    return
                await asyncio.sleep(0.05)
    except TimeoutError:
        logs = "\n".join(f"--- {o.name}:\n{o.output()}" for o in operators)
        pytest.fail(f"never: {what}\n{logs}")


async def test_a_standalone_operator_reconciles_serves_probes_and_metrics_and_stops_cleanly(
    api: KubeClient, start: Start, http: aiohttp.ClientSession
) -> None:
    operator = await start("solo", "--standalone", metrics=True)

    await api.create(pipeline("hello", [python_step("greet", condition="Greeted")]))
    body = await ready(api, "hello", operator)

    assert find(body["status"]["conditions"], "Greeted")["status"] == "True"  # type: ignore[index]
    assert await status_of(http, operator.health) == 200
    assert operator.metrics is not None
    async with http.get(operator.metrics) as response:
        exposition = await response.text()
    assert 'kubesteps_reconciles_total{outcome="done"} 1.0' in exposition
    assert await operator.stop() == 0, operator.output()


async def test_the_operators_own_token_echoed_back_by_the_server_never_reaches_its_log(
    api: KubeClient, start: Start, k8s_emulator: Emulator, tmp_path: Path
) -> None:
    token = "proc-token-5Kx9q2Lw"
    # A server in front of the API that answers a third of the requests with an error
    # echoing the request's headers: kopf logs every such answer it retries, token and all.
    rates = FaultRates(
        conflict=0,
        throttle=0,
        server_error=0.3,
        lost_answer=0,
        latency=0,
        watch_lifetime=(60, 60),
        watch_gone=0,
    )
    assert k8s_emulator.url is not None
    proxy = ChaosProxy(k8s_emulator.url, SeededPlan(7, rates))
    async with proxy.serving() as url:
        config = write_kubeconfig(tmp_path / "echoed.kubeconfig", url, token=token)
        operator = await start("echoed", "--standalone", "--log-format", "json", config=config)
        await api.create(pipeline("echoed", [python_step("greet")]))
        await ready(api, "echoed", operator)
        assert await operator.stop() == 0, operator.output()
    await proxy.close()

    output = operator.output()
    assert proxy.record.faults, "the proxy answered no request with an error"
    assert "<redacted>" in output
    assert token not in output
    assert "Traceback" not in output


async def test_a_watch_that_gets_410_gone_is_followed_by_a_fresh_list(
    api: KubeClient, start: Start, k8s_emulator: Emulator, tmp_path: Path
) -> None:
    def gone_after_a_second(request: ProxiedRequest) -> Decision:
        if request.watch and "pipelines" in request.path and not proxy.record.faults:
            return Decision(Fault.WATCH_GONE, lifetime=1.0)
        return Decision()

    assert k8s_emulator.url is not None
    proxy = ChaosProxy(k8s_emulator.url, gone_after_a_second)
    async with proxy.serving("gone") as url:
        config = write_kubeconfig(tmp_path / "gone.kubeconfig", url)
        operator = await start("gone", "--standalone", config=config)
        await until(lambda: proxy.record.faults[Fault.WATCH_GONE] == 1, "a 410", operator)
        await api.create(pipeline("after-gone", [python_step("greet")]))
        await ready(api, "after-gone", operator)
        assert await operator.stop() == 0, operator.output()
    await proxy.close()

    assert proxy.record.relisted == 1
    assert "Traceback" not in operator.output()


async def test_only_with_allow_cross_namespace_may_a_step_write_into_another_namespace(
    api: KubeClient, start: Start, k8s_emulator: Emulator
) -> None:
    await api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
    step = {
        "name": "place",
        "action": "apply",
        "with": {
            "namespace": "other",
            "owned": False,
            "manifest": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared"}},
        },
    }
    confined = await start("confined", "--standalone")
    await api.create(pipeline("placed", [step]))
    body = await settled(api, "placed", confined)
    failed = find(body["status"]["conditions"], "Ready")
    assert failed is not None, body["status"]
    assert failed["reason"] == "Failed", body["status"]
    assert "--allow-cross-namespace" in failed["message"]
    assert k8s_emulator.object("configmaps", "shared", "other") is None
    assert await confined.stop() == 0, confined.output()

    allowed = await start("allowed", "--standalone", "--allow-cross-namespace")
    # A failed step runs again once the spec changes: a new generation.
    step["with"]["manifest"]["data"] = {"attempt": "2"}
    await api.patch(API, "Pipeline", "placed", "default", {"spec": {"steps": [step]}})
    await ready(api, "placed", allowed)
    shared = k8s_emulator.object("configmaps", "shared", "other")
    assert shared is not None
    assert shared["data"] == {"attempt": "2"}
    assert await allowed.stop() == 0, allowed.output()


async def test_a_standby_waits_healthy_and_idle_then_takes_over_when_the_leader_stops(
    api: KubeClient, start: Start, http: aiohttp.ClientSession, k8s_emulator: Emulator
) -> None:
    # The chart's flags: --standalone together with --leader-election.
    flags = (
        "--standalone",
        "--leader-election",
        "--leader-election-namespace",
        "default",
        "--leader-election-retry-period",
        "0.2",
    )
    first = await start("op-a", *flags)
    await until(lambda: holder(k8s_emulator) == "op-a", "op-a leads", first)
    await api.create(pipeline("before", [python_step("greet")]))
    await ready(api, "before", first)

    second = await start("op-b", *flags)
    polls = k8s_emulator.requests.count("get", "leases.coordination.k8s.io")
    await until(
        lambda: k8s_emulator.requests.count("get", "leases.coordination.k8s.io") >= polls + 3,
        "op-b polls the Lease",
        first,
        second,
    )

    assert await status_of(http, second.health) == 200  # Kubernetes would restart it otherwise
    assert holder(k8s_emulator) == "op-a"
    assert k8s_emulator.watches("pipelines") == 1, "only the leader may watch Pipelines"
    assert "kopf" not in second.output(), "a standby does not start kopf"

    assert await first.stop() == 0, first.output()
    await until(lambda: holder(k8s_emulator) == "op-b", "op-b takes over", second)
    await api.create(pipeline("after", [python_step("greet")]))
    await ready(api, "after", second)
    assert await status_of(http, second.health) == 200

    assert await second.stop() == 0, second.output()
    assert not holder(k8s_emulator), "a clean shutdown releases the Lease"


async def test_a_standby_stops_cleanly_while_it_waits(
    api: KubeClient, start: Start, k8s_emulator: Emulator
) -> None:
    flags = (
        "--standalone",
        "--leader-election",
        "--leader-election-namespace",
        "default",
        "--leader-election-retry-period",
        "0.2",
    )
    leader = await start("op-a", *flags)
    await until(lambda: holder(k8s_emulator) == "op-a", "op-a leads", leader)
    standby = await start("op-b", *flags)

    assert await standby.stop() == 0, standby.output()

    assert holder(k8s_emulator) == "op-a"
    assert await leader.stop() == 0, leader.output()


async def test_a_leader_that_loses_its_lease_stops_reconciling_and_exits_with_an_error(
    api: KubeClient, start: Start, k8s_emulator: Emulator
) -> None:
    leader = await start(
        "op-a",
        "--standalone",
        "--leader-election",
        "--leader-election-namespace",
        "default",
        "--leader-election-renew-period",
        "0.2",
    )
    await until(lambda: holder(k8s_emulator) == "op-a", "op-a leads", leader)
    await until(lambda: k8s_emulator.watches("pipelines") == 1, "op-a watches", leader)

    await api.patch(LEASES, "Lease", LEASE, "default", {"spec": {"holderIdentity": "intruder"}})

    async with asyncio.timeout(SETTLE):
        code = await leader.process.wait()
    assert code == 1, leader.output()
    assert "lost the lease" in leader.output()
    assert holder(k8s_emulator) == "intruder", "a replica that lost the Lease must not write it"
    assert k8s_emulator.watches("pipelines") == 0


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ("--leader-election-renew-period", "20"),
            "--leader-election-renew-period (20s) must be shorter than"
            " --leader-election-lease-duration (15s)",
        ),
        (
            ("--leader-election-lease-duration", "0"),
            "Invalid value for '--leader-election-lease-duration': 0 is not in the range x>=1",
        ),
        (
            ("--leader-election-retry-period", "-1"),
            "Invalid value for '--leader-election-retry-period': -1.0 is not in the range x>0",
        ),
    ],
)
def test_lease_timings_out_of_range_are_refused_with_the_flag_named(
    flags: tuple[str, ...], message: str
) -> None:
    from click.testing import CliRunner

    from kubesteps.cli import main

    result = CliRunner().invoke(main, ["operator", "--leader-election", *flags])

    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())


async def test_a_busy_port_is_one_line_not_a_traceback(kubeconfig: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for flags in (
            ["--metrics-port", str(port)],
            ["--metrics-port", "0", "--liveness", f"http://127.0.0.1:{port}/healthz"],
        ):
            process = await asyncio.create_subprocess_exec(
                str(KUBESTEPS),
                "operator",
                "--standalone",
                *flags,
                env={**os.environ, "KUBECONFIG": str(kubeconfig)},
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            async with asyncio.timeout(START_UP):
                output, _ = await process.communicate()
            flag = flags[-2]
            assert process.returncode == 1
            assert output.decode().splitlines() == [
                f"Error: port {port} ({flag}) is in use: is another operator running on this "
                f"machine? Stop it, or give {flag} another port"
                + (" (0: no metrics endpoint)" if flag == "--metrics-port" else "")
            ]


async def test_the_operator_says_whether_the_crd_is_missing_or_only_not_served(
    k8s_emulator: Emulator, kubeconfig: Path, start: Start
) -> None:
    # The `start` fixture serves the CRD; take it away, then bring it back switched off.
    assert k8s_emulator.url is not None
    async with KubeClient(Credentials(server=k8s_emulator.url, insecure=True)) as client:
        await client.delete(
            "apiextensions.k8s.io/v1", "CustomResourceDefinition", "pipelines.kubesteps.dev"
        )
        missing = await start("missing")
        off = crd()
        off["spec"]["versions"][0]["served"] = False
        await client.create(off)
        switched_off = await start("off")
    await until(
        lambda: "CRD" in missing.output() and "CRD" in switched_off.output(),
        "both said what is wrong with the CRD",
        missing,
        switched_off,
    )

    assert (
        "the CRD pipelines.kubesteps.dev is not installed (kubectl apply -f "
        "crds/pipelines.kubesteps.dev.yaml, or install the chart)"
    ) in missing.output()
    assert (
        "the CRD pipelines.kubesteps.dev is installed, but it does not serve version v1alpha1"
    ) in switched_off.output()
    for operator in (missing, switched_off):
        assert "try creating their CRDs" not in operator.output()


async def test_each_retry_is_one_log_line_with_its_delay_and_waits_say_when_next(
    api: KubeClient, start: Start
) -> None:
    operator = await start("logs", "--standalone")
    with socket.socket() as closed:  # a port nothing listens on: every call fails
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    await api.create(
        pipeline(
            "flaky",
            [
                {"name": "pause", "action": "delay", "with": {"duration": "1s"}},
                {
                    "name": "call",
                    "action": "http",
                    "with": {"url": f"http://127.0.0.1:{port}/"},
                    "retry": {"limit": 2, "backoff": {"initial": "100ms", "max": "200ms"}},
                },
            ],
        )
    )
    await until(lambda: "failed for good" in operator.output(), "the step failed", operator)
    assert await operator.stop() == 0
    lines = operator.output().splitlines()

    about_call = [line for line in lines if "'call'" in line and "kubesteps.engine" in line]
    assert [line.split("kubesteps.engine: ")[1].split(":")[0] for line in about_call] == [
        "step 'call' attempt 1/3 failed; retrying in 0.1s",
        "step 'call' attempt 2/3 failed; retrying in 0.2s",
        "step 'call' failed for good after 3 attempt(s)",
    ]
    (waited,) = [line for line in lines if "pass over" in line and ": wait" in line]
    assert re.search(r"wait, next pass in 1s \(at \d\d:\d\d:\d\dZ\)$", waited)
    assert not [line for line in lines if "pass over" in line and ": retry" in line]
    assert not [line for line in lines if "failed temporarily" in line]
    assert not [line for line in lines if "Handler 'nudge' succeeded" in line]


async def test_the_operator_logs_in_through_the_plugin_and_again_after_a_rotation(
    k8s_emulator: Emulator, start: Start, tmp_path: Path
) -> None:
    assert k8s_emulator.url is not None  # `start` serves the CRD
    k8s_emulator.tokens = {"test-side", "operator-1"}
    config, token_file = exec_kubeconfig(tmp_path, k8s_emulator.url, "operator-1")
    credentials = Credentials(server=k8s_emulator.url, insecure=True, token="test-side")
    async with KubeClient(credentials) as api:
        operator = await start("plugged", "--standalone", config=config)
        await api.create(pipeline("first", [python_step("greet")]))
        await ready(api, "first", operator)

        runs = plugin_runs(token_file)
        token_file.write_text("operator-2")  # the provider rotated it: the old one is refused
        k8s_emulator.tokens = {"test-side", "operator-2"}
        await api.create(pipeline("second", [python_step("greet")]))
        await ready(api, "second", operator)

        assert k8s_emulator.requests.count("unauthorized") >= 1
        assert plugin_runs(token_file) > runs, operator.output()
        assert await operator.stop() == 0, operator.output()
    assert "operator-1" not in operator.output()
    assert "operator-2" not in operator.output()
