"""Observability wired end to end: traces reach an OTLP collector from a running operator,
log lines carry the trace, `/metrics` counts real passes, and step transitions become
rate-limited Events."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import kopf
import pytest
import pytest_asyncio
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from prometheus_client.parser import text_string_to_metric_families

from kubesteps.actions.registry import register_python, unregister_python
from kubesteps.controller.operator import Connection
from kubesteps.controller.reconciler import Reconciler
from kubesteps.keepers import status_keeper
from kubesteps.kube.client import ApiError, Credentials, KubeClient, api_verb
from kubesteps.kube.conditions import find
from kubesteps.kube.events import EventRecorder
from kubesteps.telemetry.logs import configure_logging
from kubesteps.telemetry.metrics import OperatorMetrics
from kubesteps.telemetry.tracing import configure_tracing
from kubesteps.testing import Emulator

from ..telemetry.otlp_receiver import OtlpReceiver, ReceivedSpan, span_tree
from .conftest import API, pipeline, python_step

Fetch = Callable[[str], Any]


@pytest.fixture
def no_otel_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def boom() -> Iterator[None]:
    """A python action `test.obs.boom` that always raises."""

    def fail(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError(f"{ctx.name} broke")

    register_python("test.obs.boom", fail)
    yield
    unregister_python("test.obs.boom")


async def settled(fetch: Fetch, name: str, reason: str, within: float = 20) -> dict[str, Any]:
    """Poll until the Ready condition has ``reason`` for the current generation."""
    async with asyncio.timeout(within):
        while True:
            body = await fetch(name)
            ready = find((body.get("status") or {}).get("conditions", []), "Ready")
            if (
                ready
                and ready["reason"] == reason
                and ready["observedGeneration"] == body["metadata"]["generation"]
            ):
                return dict(body)
            await asyncio.sleep(0.05)


# -- traces and logs from the operator process ---------------------------------------------


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


async def run_operator_process(
    k8s_emulator: Emulator,
    kubeconfig: Path,
    log_file: Path,
    env: dict[str, str],
    work: Callable[[], Any],
) -> None:
    """`kubesteps operator --log-format json` in a process of its own (the global tracer
    provider can be set once per process), stopped with SIGTERM once ``work()`` is done."""
    command = Path(sys.executable).with_name("kubesteps")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    with log_file.open("w") as stderr:
        process = await asyncio.create_subprocess_exec(
            str(command),
            "operator",
            "--standalone",
            "--namespace",
            "default",
            "--metrics-port",
            "0",
            "--log-format",
            "json",
            env=clean | {"KUBECONFIG": str(kubeconfig)} | env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            async with asyncio.timeout(20):
                await k8s_emulator.wait_for_watch("pipelines")
            await work()
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(20):
                await process.wait()


def json_lines(log_file: Path) -> list[dict[str, Any]]:
    """Every line the operator wrote to stderr, each parsed as one JSON object."""
    return [json.loads(line) for line in log_file.read_text().splitlines()]


def one_trace(spans: list[ReceivedSpan], root: ReceivedSpan) -> list[ReceivedSpan]:
    return [span for span in spans if span.trace_id == root.trace_id]


DOC = Path(__file__).resolve().parents[2] / "docs" / "observability.md"


def documented_span_attributes() -> dict[str, set[str]]:
    """The span attribute table of docs/observability.md: span -> attribute names."""
    table: dict[str, set[str]] = {}
    for line in DOC.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[1].startswith("`k"):
            table.setdefault(cells[0].strip("`"), set()).add(cells[1].strip("`"))
    return table


@pytest.mark.parametrize(("protocol", "transport"), [("grpc", "grpc"), ("http/protobuf", "http")])
@pytest.mark.slow
async def test_a_pass_in_the_operator_is_one_trace_at_the_collector_and_in_the_logs(
    api: KubeClient,
    k8s_emulator: Emulator,
    kubeconfig: Path,
    fetch: Fetch,
    tmp_path: Path,
    receiver: OtlpReceiver,
    protocol: str,
    transport: str,
) -> None:
    endpoint = receiver.grpc_endpoint if transport == "grpc" else receiver.http_endpoint

    async def work() -> None:
        await api.create(
            pipeline(
                "traced",
                [
                    # Outputs over the 8 KiB cap: the action logs a warning while the step runs.
                    {
                        "name": "hello",
                        "action": "python",
                        "condition": "Greeted",
                        "with": {
                            "function": "kubesteps.examples.greet",
                            "args": {"greeting": "x" * 9000},
                        },
                    },
                    {"name": "pause", "action": "delay", "with": {"duration": "30s"}},
                ],
            )
        )
        await settled(fetch, "traced", "Waiting")

    log_file = tmp_path / "operator.log"
    await run_operator_process(
        k8s_emulator,
        kubeconfig,
        log_file,
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
            # Only the flush at shutdown can have sent the spans.
            "OTEL_BSP_SCHEDULE_DELAY": "600000",
        },
        work,
    )

    spans = receiver.spans()
    (reconcile,) = [s for s in spans if s.name == "reconcile"]
    tree = one_trace(spans, reconcile)
    # hello returns without waiting: it gets a span only if it took over 10 ms (a loaded
    # machine), and then one with its real times; otherwise it is counted on the run's.
    hello = [span for span in tree if span.name == "hello"]
    for span in hello:
        assert span.end_ns - span.start_ns >= 10_000_000
    unspanned = 0 if hello else 1
    assert span_tree([span for span in tree if span.name != "hello"]) == [
        "reconcile",
        "  pipeline run",
        "    pause",
        "  status write",
    ]
    named = {span.name: span for span in tree}
    assert {span.transport for span in tree} == {transport}
    assert reconcile.resource["service.name"] == "kubesteps-operator"
    assert reconcile.scope == "kubesteps.controller"
    assert reconcile.attributes["k8s.namespace.name"] == "default"
    assert reconcile.attributes["kubesteps.pipeline"] == "traced"
    assert reconcile.attributes["kubesteps.generation"] == 1
    assert reconcile.attributes["kubesteps.outcome"] == "wait"
    assert reconcile.attributes["kubesteps.step"] == "pause"
    assert 29 < reconcile.attributes["kubesteps.requeue_after_s"] <= 30
    assert named["pipeline run"].attributes["kubesteps.outcome"] == "wait"
    assert named["pipeline run"].attributes["kubesteps.steps.unspanned"] == unspanned
    assert named["pause"].attributes["kubesteps.step"] == "pause"
    assert named["pause"].attributes["kubesteps.step.outcome"] == "wait"
    write = named["status write"]
    assert write.attributes == {
        "kubesteps.object": "default/traced",
        "kubesteps.status.attempt": 1,
        "kubesteps.status.conflict": False,
        "kubesteps.status.running": False,
        "kubesteps.status.patch": "merge",  # the first write: the whole status is new
        "kubesteps.status.fields": [
            "conditions",
            "currentStep",
            "lastRuns",
            "observedGeneration",
            "run",
            "stepConditions",
            "steps",
        ],
    }

    # Every attribute is documented, and this pass (waiting on a step) sets every one.
    documented = documented_span_attributes()
    for span in tree:
        kind = span.name if span.name in documented else "step"
        assert set(span.attributes) == documented[kind], span.name

    lines = json_lines(log_file)
    assert any(line["message"] == "tracing is on: spans go out over OTLP" for line in lines)
    (over,) = [line for line in lines if line["message"].startswith("pass over for")]
    assert re.fullmatch(
        r"pass over for default/traced \(run traced-1\): wait, next pass in 30s"
        r" \(at \d\d:\d\d:\d\dZ\)",
        over["message"],
    ), over["message"]
    assert (over["trace_id"], over["span_id"]) == (reconcile.trace_id, reconcile.span_id)
    assert (over["outcome"], over["logger"]) == ("wait", "kubesteps.controller")
    # What a quick step logs while it runs carries the pass's trace, in the run's span.
    (truncated,) = [line for line in lines if "outputs are over" in line["message"]]
    assert truncated["logger"] == "kubesteps.actions"
    assert (truncated["trace_id"], truncated["span_id"]) == (
        reconcile.trace_id,
        named["pipeline run"].span_id,
    )
    # Lines logged outside any pass (start-up, kopf's own) carry no trace.
    assert {line["trace_id"] for line in lines} == {"", reconcile.trace_id}


async def test_without_tracing_a_pass_records_no_span_and_still_logs_json_lines(
    api: KubeClient,
    fetch: Fetch,
    capsys: pytest.CaptureFixture[str],
    no_otel_env: None,
    restore_root_logger: None,
) -> None:
    assert configure_tracing() is False
    configure_logging("json", logging.INFO)
    seen: list[bool] = []

    def spy(body: Any, old: Any, new: Any) -> None:
        seen.append(trace.get_current_span().is_recording())

    await api.create(pipeline("untraced", [python_step("hello")]))
    result = await Reconciler(lambda: api, observer=spy).reconcile(await fetch("untraced"))

    assert result.outcome == "done"
    assert seen == [False]  # hello: succeeded (it never suspended, so no running record)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    (over,) = [line for line in lines if line["logger"] == "kubesteps.controller"]
    assert over["message"] == "pass over for default/untraced (run untraced-1): done"
    assert (over["outcome"], over["requeue_after_s"]) == ("done", None)
    assert (over["trace_id"], over["span_id"]) == ("", "")


# -- status write spans ----------------------------------------------------------------------


@pytest.fixture
def keeper_spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """The keeper's spans, from a provider of this test's own (the global one stays unset)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(
        status_keeper, "tracer", provider.get_tracer("kubesteps.keepers.status_keeper")
    )
    yield exporter
    provider.shutdown()


async def test_a_conflicting_status_write_is_one_span_per_attempt_with_its_retries(
    api: KubeClient, fetch: Fetch, k8s_emulator: Emulator, keeper_spans: InMemorySpanExporter
) -> None:
    await api.create(pipeline("contested", [python_step("one")]))
    stale = await fetch("contested")
    await api.patch(
        API,
        "Pipeline",
        "contested",
        "default",
        {"status": {"observedGeneration": 0}},
        subresource="status",
    )
    # The first attempt is throttled once before the server refuses it as stale.
    k8s_emulator.inject(
        verb="patch", resource="pipelines", subresource="status", status=429, retry_after=0, times=1
    )

    result = await Reconciler(lambda: api).reconcile(stale)

    assert result.outcome == "done"
    first, second = keeper_spans.get_finished_spans()
    assert (first.name, second.name) == ("status write", "status write")
    assert first.attributes is not None
    assert second.attributes is not None
    assert dict(first.attributes) == {
        "kubesteps.object": "default/contested",
        "kubesteps.status.attempt": 1,
        "kubesteps.status.conflict": True,
        "kubesteps.status.running": False,
        "kubesteps.status.patch": "merge",
        "kubesteps.status.fields": (
            "conditions",
            "currentStep",
            "lastRuns",
            "observedGeneration",
            "run",
            "steps",
        ),
    }
    [retry] = first.events
    assert retry.name == "retry"
    assert retry.attributes is not None
    assert dict(retry.attributes) == {
        "http.response.status_code": 429,
        "kubesteps.retry.attempt": 1,
        "kubesteps.retry.delay_s": 0.0,
    }
    assert second.attributes["kubesteps.status.attempt"] == 2
    assert second.attributes["kubesteps.status.conflict"] is False
    # Rebuilt on top of the other writer's status, which had changed observedGeneration.
    assert (
        second.attributes["kubesteps.status.fields"] == first.attributes["kubesteps.status.fields"]
    )
    assert second.events == ()


async def test_a_status_write_that_fails_for_good_ends_its_span_in_error(
    api: KubeClient, fetch: Fetch, k8s_emulator: Emulator, keeper_spans: InMemorySpanExporter
) -> None:
    await api.create(pipeline("refused", [python_step("one")]))
    k8s_emulator.inject(
        verb="patch", resource="pipelines", subresource="status", status=403, times=1
    )

    with pytest.raises(ApiError, match="403"):
        await Reconciler(lambda: api).reconcile(await fetch("refused"))

    (span,) = keeper_spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["kubesteps.status.conflict"] is False
    assert [event.name for event in span.events] == ["exception"]


# -- metrics -----------------------------------------------------------------------------------


def samples(text: str, metric: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of one metric in an exposition: sorted label pairs -> value."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == metric:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


async def scrape(port: int) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/metrics") as response,
    ):
        assert response.status == 200
        assert response.content_type == "text/plain"
        return await response.text()


async def test_metrics_endpoint_counts_what_real_passes_did(
    api: KubeClient, fetch: Fetch, k8s_emulator: Emulator, boom: None
) -> None:
    metrics = OperatorMetrics()
    server = metrics.start_server(0, "127.0.0.1")
    # As the operator wires it: one connection, its client reporting failed requests.
    connection = Connection(
        kopf.ConnectionInfo(server=str(k8s_emulator.url), insecure=True), metrics=metrics
    )
    reconciler = Reconciler(connection.client, metrics=metrics)
    try:
        await api.create(pipeline("good", [python_step("one"), python_step("two")]))
        await api.create(
            pipeline(
                "slow",
                [
                    {"name": "pause", "action": "delay", "with": {"duration": "30s"}},
                ],
            )
        )
        await api.create(
            pipeline(
                "broken",
                [
                    {
                        "name": "check",
                        "when": ["self.spec.steps.size( > 1"],
                        "action": "delay",
                        "with": {"duration": "1s"},
                    },
                ],
            )
        )
        await api.create(
            pipeline(
                "doomed",
                [
                    {
                        "name": "breaks",
                        "action": "python",
                        "retry": {"limit": 0},
                        "with": {"function": "test.obs.boom"},
                    },
                ],
            )
        )
        # good: its first status patch is throttled (an API error, then a retried write);
        k8s_emulator.inject(
            verb="patch",
            resource="pipelines",
            subresource="status",
            name="good",
            status=429,
            retry_after=0,
            times=1,
        )
        await reconciler.reconcile(await fetch("good"))
        # slow: somebody writes between our read and our write (a 409, then a fresh write).
        stale = await fetch("slow")
        await api.patch(
            API,
            "Pipeline",
            "slow",
            "default",
            {"status": {"observedGeneration": 0}},
            subresource="status",
        )
        await reconciler.reconcile(stale)
        for name in ("broken", "doomed"):
            await reconciler.reconcile(await fetch(name))

        text = await scrape(server.port)
    finally:
        server.close()
        await connection.close()

    assert samples(text, "kubesteps_reconciles_total") == {
        (("outcome", "done"),): 1,
        (("outcome", "wait"),): 1,
        (("outcome", "invalid"),): 1,
        (("outcome", "failed"),): 1,
        (("outcome", "retry"),): 0,
        (("outcome", "aborted"),): 0,
        (("outcome", "suspended"),): 0,
        (("outcome", "cancelled"),): 0,
        (("outcome", "error"),): 0,
    }
    assert samples(text, "kubesteps_reconcile_duration_seconds_count") == {(): 4}
    assert samples(text, "kubesteps_requeue_delay_seconds_count") == {(("outcome", "wait"),): 1}
    assert samples(text, "kubesteps_requeue_delay_seconds_sum") == {(("outcome", "wait"),): 30}
    assert samples(text, "kubesteps_step_runs_total") == {
        (("action", "python"), ("outcome", "succeeded")): 2,
        (("action", "delay"), ("outcome", "waiting")): 1,
        (("action", "python"), ("outcome", "failed")): 1,
    }
    assert samples(text, "kubesteps_step_duration_seconds_count") == {
        (("action", "python"),): 3,
        (("action", "delay"),): 1,
    }
    # One write each for broken and doomed, two for good (429, then OK) and slow (409, OK).
    assert samples(text, "kubesteps_status_writes_total") == {(): 6}
    assert samples(text, "kubesteps_status_write_conflicts_total") == {(): 1}
    assert samples(text, "kubesteps_api_errors_total") == {
        (("code", "429"), ("verb", "patch")): 1,
        (("code", "409"), ("verb", "patch")): 1,
    }
    assert samples(text, "kubesteps_pipelines") == {
        (("ready", "True"), ("reason", "Succeeded")): 1,
        (("ready", "False"), ("reason", "Waiting")): 1,
        (("ready", "False"), ("reason", "InvalidSpec")): 1,
        (("ready", "False"), ("reason", "Failed")): 1,
    }
    assert samples(text, "kubesteps_steps_retrying") == {(): 0}


async def test_a_step_cut_off_by_a_cancelled_pass_counts_as_running(
    api: KubeClient, fetch: Fetch
) -> None:
    entered = asyncio.Event()

    async def hang(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
        entered.set()
        await asyncio.Event().wait()
        return {}

    register_python("test.obs.hang", hang)
    try:
        metrics = OperatorMetrics()
        await api.create(
            pipeline(
                "stuck",
                [
                    {"name": "hang", "action": "python", "with": {"function": "test.obs.hang"}},
                ],
            )
        )
        task = asyncio.create_task(
            Reconciler(lambda: api, metrics=metrics).reconcile(await fetch("stuck"))
        )
        await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        unregister_python("test.obs.hang")

    assert samples(metrics.render(), "kubesteps_step_runs_total") == {
        (("action", "python"), ("outcome", "running")): 1,
    }


@pytest.mark.parametrize(
    ("method", "path", "params", "verb"),
    [
        ("GET", "/api/v1/namespaces/ops/pods/web", None, "get"),
        ("GET", "/apis/kubesteps.dev/v1alpha1/namespaces/ops/pipelines/p/status", None, "get"),
        ("GET", "/api/v1/namespaces/ops", None, "get"),
        ("GET", "/apis/kubesteps.dev/v1alpha1", None, "get"),
        ("GET", "/version", None, "get"),
        ("GET", "/api/v1/namespaces/ops/pods", None, "list"),
        ("GET", "/api/v1/namespaces", None, "list"),
        ("GET", "/apis/apps/v1/deployments", {"labelSelector": "a=b"}, "list"),
        ("GET", "/api/v1/namespaces/ops/pods", {"watch": "true"}, "watch"),
        ("POST", "/api/v1/namespaces/ops/events", None, "create"),
        ("PUT", "/apis/coordination.k8s.io/v1/namespaces/ops/leases/l", None, "update"),
        ("PATCH", "/apis/kubesteps.dev/v1alpha1/namespaces/ops/pipelines/p/status", None, "patch"),
        ("DELETE", "/apis/batch/v1/namespaces/ops/jobs/j", None, "delete"),
    ],
)
def test_each_request_maps_to_its_kubernetes_verb(
    method: str, path: str, params: dict[str, str] | None, verb: str
) -> None:
    assert api_verb(method, path, params) == verb


async def test_failed_requests_reach_the_error_hook_with_their_verb_and_code(
    api: KubeClient, k8s_emulator: Emulator, unused_tcp_port: int
) -> None:
    metrics = OperatorMetrics()
    creds = Credentials(server=str(k8s_emulator.url), insecure=True)
    # Every attempt counts; one attempt per request keeps the figures simple.
    async with KubeClient(creds, on_error=metrics.observe_api_error, attempts=1) as client:
        assert await client.get("v1", "ConfigMap", "missing", "default") is None
        k8s_emulator.inject(verb="list", resource="configmaps", status=503)
        with pytest.raises(ApiError, match="503"):
            await client.list("v1", "ConfigMap", "default")
    nowhere = Credentials(server=f"http://127.0.0.1:{unused_tcp_port}")
    async with KubeClient(nowhere, on_error=metrics.observe_api_error, attempts=1) as client:
        with pytest.raises(aiohttp.ClientConnectionError):
            await client.request("DELETE", "/api/v1/namespaces/default/configmaps/x")

    assert samples(metrics.render(), "kubesteps_api_errors_total") == {
        (("code", "404"), ("verb", "get")): 1,
        (("code", "503"), ("verb", "list")): 1,
        (("code", "network"), ("verb", "delete")): 1,
    }


# -- events ------------------------------------------------------------------------------------


async def stored_events(api: KubeClient, name: str | None = None) -> list[dict[str, Any]]:
    listed = await api.list("v1", "Event", "default")
    return [e for e in listed if name is None or e["involvedObject"]["name"] == name]


async def test_step_transitions_become_events_named_after_the_step_conditions(
    api: KubeClient, fetch: Fetch, boom: None
) -> None:
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    events = EventRecorder(lambda: api)
    reconciler = Reconciler(lambda: api, events=events, clock=lambda: now[0])
    await api.create(
        pipeline(
            "eventful",
            [
                python_step("ok", condition="OkDone"),
                python_step("skip", condition="SkipDone", when=["false"]),
                {
                    "name": "pause",
                    "action": "delay",
                    "condition": "Paused",
                    "with": {"duration": "10s"},
                },
            ],
        )
    )
    await api.create(
        pipeline(
            "shaky",
            [
                {
                    "name": "flaky",
                    "action": "python",
                    "condition": "Flaky",
                    "retry": {"limit": 1, "backoff": {"initial": "2s", "jitter": 0}},
                    "with": {"function": "test.obs.boom"},
                },
            ],
        )
    )

    await reconciler.reconcile(await fetch("eventful"))
    await reconciler.reconcile(await fetch("shaky"))
    await events.drain()
    retrying = await stored_events(api, "shaky")
    now[0] += timedelta(seconds=3)  # the backoff is over: the second attempt fails for good
    await reconciler.reconcile(await fetch("shaky"))
    await events.drain()

    eventful, shaky = await fetch("eventful"), await fetch("shaky")
    expected = [
        (eventful, "OkDone", "Normal", "step 'ok'"),
        (eventful, "SkipDone", "Normal", "step 'skip'"),
        (eventful, "Paused", "Normal", "step 'pause': delaying for 10s"),
        (shaky, "Flaky", "Warning", "step 'flaky': flaky broke"),
    ]
    for body, condition_type, kind, message in expected:
        condition = find(body["status"]["conditions"], condition_type)
        assert condition is not None
        reason = "Step" + condition["reason"]
        name = body["metadata"]["name"]
        matching = [e for e in await stored_events(api, name) if e["reason"] == reason]
        assert len(matching) == 1, (reason, await stored_events(api, name))
        event = matching[0]
        assert event["type"] == kind
        assert event["message"].startswith(f"{name}-1: {message}")  # the run, then the step
        assert event["involvedObject"] == {
            "apiVersion": API,
            "kind": "Pipeline",
            "name": name,
            "namespace": "default",
            "uid": body["metadata"]["uid"],
        }
        assert event["reportingComponent"] == "kubesteps"
    assert sorted((e["reason"], e["type"]) for e in retrying) == [
        ("RunStarted", "Normal"),
        ("StepRetrying", "Warning"),
    ]
    assert sorted(e["reason"] for e in await stored_events(api, "shaky")) == [
        "RunFailed",
        "RunStarted",
        "StepFailed",
        "StepRetrying",
    ]
    # Per Pipeline: its run started; eventful's three steps; shaky's retry, failure and end.
    assert len(await stored_events(api)) == 2 + 3 + 3


def involved(name: str) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Pipeline",
        "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"},
    }


async def test_a_hot_loop_on_one_object_posts_only_its_burst_and_others_still_get_theirs(
    api: KubeClient,
) -> None:
    now = [1000.0]
    events = EventRecorder(lambda: api, clock=lambda: now[0])
    hot, calm, quiet = involved("hot"), involved("calm"), involved("quiet")

    posted = [
        events.emit(hot, "StepRetrying", f"step 'x': attempt {i}", warning=True)
        for i in range(1000)
    ]
    assert posted == [True] * 25 + [False] * 975  # the per-object burst
    assert events.emit(calm, "StepSucceeded", "step 'a'")
    assert events.emit(quiet, "StepSucceeded", "step 'a'")
    # The same event again for the same object is a duplicate, tokens or not.
    assert not events.emit(calm, "StepSucceeded", "step 'a'")

    now[0] += 5  # one token back for the hot object: one more event, not two
    assert events.emit(hot, "StepRetrying", "step 'x': attempt 1000", warning=True)
    assert not events.emit(hot, "StepRetrying", "step 'x': attempt 1001", warning=True)
    now[0] += 60  # past the dedupe window: the same event may be posted again
    assert events.emit(calm, "StepSucceeded", "step 'a'")
    await events.drain()

    stored = await stored_events(api)
    per_object = {
        name: sum(1 for e in stored if e["involvedObject"]["name"] == name)
        for name in ("hot", "calm", "quiet")
    }
    assert per_object == {"hot": 26, "calm": 2, "quiet": 1}
    assert {e["type"] for e in stored if e["involvedObject"]["name"] == "hot"} == {"Warning"}
    assert (events.sent, events.dropped) == (29, 975 + 1 + 1)


async def test_many_objects_at_once_are_held_to_the_overall_burst(api: KubeClient) -> None:
    now = [1000.0]
    events = EventRecorder(lambda: api, clock=lambda: now[0])

    first = [events.emit(involved(f"p{i}"), "StepSucceeded", "step 'a'") for i in range(120)]
    now[0] += 0.5  # 20 per second: 10 tokens back
    second = [events.emit(involved(f"q{i}"), "StepSucceeded", "step 'a'") for i in range(20)]
    await events.drain()

    assert first == [True] * 100 + [False] * 20
    assert second == [True] * 10 + [False] * 10
    assert len(await stored_events(api)) == 110


async def test_the_step_duration_metric_is_the_time_the_step_took(
    api: KubeClient, fetch: Fetch
) -> None:
    # A step that is done within the Running write's bound is never recorded Running (no
    # transition says when it started): its duration comes from its record.
    async def nap(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0.25)
        return {}

    register_python("test.obs.nap", nap)
    try:
        metrics = OperatorMetrics()
        await api.create(
            pipeline(
                "napping",
                [
                    {"name": "nap", "action": "python", "with": {"function": "test.obs.nap"}},
                ],
            )
        )
        result = await Reconciler(lambda: api, metrics=metrics).reconcile(await fetch("napping"))
        assert result.outcome == "done"
    finally:
        unregister_python("test.obs.nap")

    text = metrics.render()
    assert samples(text, "kubesteps_step_duration_seconds_count") == {(("action", "python"),): 1}
    (took,) = samples(text, "kubesteps_step_duration_seconds_sum").values()
    assert 0.25 <= took < 5, took
