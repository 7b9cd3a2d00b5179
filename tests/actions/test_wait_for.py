"""waitFor: reads the object on each pass and waits by requeue until it matches."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from kubesteps.actions.common import ALLOW_CROSS_NAMESPACE, poll_delay
from kubesteps.engine import OutcomeKind, StepStatus
from kubesteps.kube.client import KubeClient
from kubesteps.pipeline.paths import as_text, compile_path
from kubesteps.testing import Emulator

from .conftest import START, FakeClock, RunFactory

POD_READY = {"apiVersion": "v1", "kind": "Pod", "name": "web", "condition": {"type": "Ready"}}


async def make_pod(kube: KubeClient, status: dict[str, Any] | None = None) -> None:
    await kube.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web"},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]},
        },
        "default",
    )
    if status is not None:
        await set_status(kube, status)


async def set_status(kube: KubeClient, status: dict[str, Any], name: str = "web") -> None:
    await kube.patch("v1", "Pod", name, "default", {"status": status}, subresource="status")


def ready(value: str, reason: str = "") -> dict[str, Any]:
    condition = {"type": "Ready", "status": value}
    if reason:
        condition["reason"] = reason
    return {"conditions": [condition]}


async def test_a_satisfied_condition_succeeds_with_the_condition_as_outputs(
    make_run: RunFactory, kube: KubeClient
) -> None:
    await make_pod(
        kube,
        {
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "PodReady", "message": "all good"}
            ]
        },
    )
    run = make_run("waitFor", POD_READY)
    assert (await run.once()).kind is OutcomeKind.DONE
    assert run.state.outputs == {
        "type": "Ready",
        "status": "True",
        "reason": "PodReady",
        "message": "all good",
    }


async def test_waits_saying_what_it_waits_for_and_what_it_saw(
    make_run: RunFactory, kube: KubeClient
) -> None:
    await make_pod(kube, ready("False", "ContainersNotReady"))
    run = make_run("waitFor", POD_READY)
    outcome = await run.once()
    assert outcome.kind is OutcomeKind.WAIT
    assert outcome.delay == 5
    assert run.state.status is StepStatus.WAITING
    assert run.state.message.startswith(
        "waiting for Pod default/web to have condition Ready=True; "
        "saw Ready=False (ContainersNotReady)"
    )


async def test_a_missing_object_or_condition_is_waited_for(
    make_run: RunFactory, kube: KubeClient, clock: FakeClock
) -> None:
    run = make_run("waitFor", POD_READY)
    assert (await run.once()).kind is OutcomeKind.WAIT
    assert "saw it does not exist" in run.state.message
    await make_pod(kube)
    clock.advance(5)
    assert (await run.once()).kind is OutcomeKind.WAIT
    assert "saw no Ready condition" in run.state.message
    await set_status(kube, ready("True"))
    clock.advance(5)
    assert (await run.once()).kind is OutcomeKind.DONE


async def test_a_condition_from_an_older_generation_does_not_count(
    make_run: RunFactory, kube: KubeClient, clock: FakeClock
) -> None:
    await kube.create(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "api"},
            "spec": {"replicas": 1},
        },
        "default",
    )
    await kube.patch("apps/v1", "Deployment", "api", "default", {"spec": {"replicas": 2}})
    await kube.patch(
        "apps/v1",
        "Deployment",
        "api",
        "default",
        {
            "status": {
                "observedGeneration": 1,
                "conditions": [{"type": "Available", "status": "True"}],
            }
        },
        subresource="status",
    )
    run = make_run(
        "waitFor",
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "api",
            "condition": {"type": "Available"},
        },
    )
    assert (await run.once()).kind is OutcomeKind.WAIT
    assert "Available=True from generation 1, the object is at 2" in run.state.message
    await kube.patch(
        "apps/v1",
        "Deployment",
        "api",
        "default",
        {"status": {"observedGeneration": 2}},
        subresource="status",
    )
    clock.advance(5)
    assert (await run.once()).kind is OutcomeKind.DONE


async def test_a_json_path_in_kubectl_braces_is_compared_with_the_value(
    make_run: RunFactory, kube: KubeClient, clock: FakeClock
) -> None:
    await make_pod(kube, {"phase": "Pending"})
    run = make_run(
        "waitFor",
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": "web",
            "jsonPath": "{.status.phase}",
            "value": "Running",
        },
    )
    assert (await run.once()).kind is OutcomeKind.WAIT
    assert "to have {.status.phase} = 'Running'; saw 'Pending'" in run.state.message
    await set_status(kube, {"phase": "Running"})
    clock.advance(5)
    assert (await run.once()).kind is OutcomeKind.DONE
    assert run.state.outputs == {"value": "Running", "matches": 1}


async def test_a_json_path_filter_selects_the_condition(
    make_run: RunFactory, kube: KubeClient
) -> None:
    await make_pod(
        kube,
        {
            "conditions": [
                {"type": "Initialized", "status": "True"},
                {"type": "Ready", "status": "False"},
            ]
        },
    )
    run = make_run(
        "waitFor",
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": "web",
            "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
            "value": "True",
        },
    )
    assert (await run.once()).kind is OutcomeKind.WAIT
    assert "saw 'False'" in run.state.message


async def test_every_match_of_a_wildcard_must_have_the_value(
    make_run: RunFactory, kube: KubeClient, clock: FakeClock
) -> None:
    await make_pod(
        kube, {"containerStatuses": [{"name": "a", "ready": True}, {"name": "b", "ready": False}]}
    )
    run = make_run(
        "waitFor",
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": "web",
            "jsonPath": ".status.containerStatuses[*].ready",
            "value": "true",
        },
    )
    assert (await run.once()).kind is OutcomeKind.WAIT
    assert "saw 'true', 'false'" in run.state.message
    await set_status(
        kube, {"containerStatuses": [{"name": "a", "ready": True}, {"name": "b", "ready": True}]}
    )
    clock.advance(5)
    assert (await run.once()).kind is OutcomeKind.DONE
    assert run.state.outputs == {"value": "true", "matches": 2}


async def test_an_invalid_json_path_fails_for_good(make_run: RunFactory) -> None:
    run = make_run(
        "waitFor",
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": "web",
            "jsonPath": ".status.conditions[?(@.type==",
            "value": "x",
        },
    )
    assert (await run.once()).kind is OutcomeKind.FAILED
    assert run.state.message.startswith(
        "invalid parameters for action 'waitFor': "
        "with.jsonPath: '.status.conditions[?(@.type==' is not a valid JSONPath"
    )


async def test_times_out_counting_from_the_first_pass(
    make_run: RunFactory, kube: KubeClient, clock: FakeClock
) -> None:
    await make_pod(kube, ready("False"))
    run = make_run("waitFor", {**POD_READY, "timeout": "1m"})
    await run.once()
    for _ in range(5):
        clock.advance(10)
        assert (await run.once()).kind is OutcomeKind.WAIT
    clock.advance(8)
    outcome = await run.once()
    assert outcome.kind is OutcomeKind.WAIT
    assert outcome.delay == pytest.approx(2)  # never looks again later than the deadline
    clock.advance(2)
    assert (await run.once()).kind is OutcomeKind.FAILED
    assert run.state.message == (
        "timed out after 1m waiting for Pod default/web to have condition Ready=True; "
        "last saw Ready=False"
    )


async def test_looks_less_often_the_longer_it_waits(
    make_run: RunFactory, kube: KubeClient, clock: FakeClock
) -> None:
    await make_pod(kube, ready("False"))
    run = make_run("waitFor", POD_READY)
    delays = []
    for elapsed in (0, 60, 300, 3600):
        clock.now = START + timedelta(seconds=elapsed)
        delays.append((await run.once()).delay)
    assert delays == [5, 6, 30, 60]


async def test_a_cluster_scoped_object_is_read_without_a_namespace(
    make_run: RunFactory, kube: KubeClient
) -> None:
    await kube.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
    await kube.patch("v1", "Node", "n1", None, {"status": ready("True")}, subresource="status")
    run = make_run(
        "waitFor",
        {
            "apiVersion": "v1",
            "kind": "Node",
            "name": "n1",
            "namespace": "ignored",
            "condition": {"type": "Ready"},
        },
    )
    assert (await run.once()).kind is OutcomeKind.DONE


async def make_config_map(kube: KubeClient, namespace: str) -> None:
    await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    await kube.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "flags"},
            "data": {"ready": "yes"},
        },
        namespace,
    )


FLAGS_READY = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "name": "flags",
    "namespace": "other",
    "jsonPath": ".data.ready",
    "value": "yes",
}


async def test_an_object_in_another_namespace_is_refused_without_reading_it(
    make_run: RunFactory, kube: KubeClient, k8s_emulator: Emulator
) -> None:
    await make_config_map(kube, "other")
    k8s_emulator.requests.reset()
    run = make_run("waitFor", FLAGS_READY)
    assert (await run.once()).kind is OutcomeKind.FAILED
    assert run.state.message == (
        "with.namespace: ConfigMap flags in namespace 'other' is refused: a Pipeline acts only "
        "in its own namespace ('default') unless the operator runs with --allow-cross-namespace "
        "(chart value allowCrossNamespace), so that its authors cannot use the operator's "
        "rights elsewhere"
    )
    assert k8s_emulator.requests.count("get", "configmaps") == 0


async def test_an_object_in_another_namespace_is_read_when_the_operator_allows_it(
    make_run: RunFactory, kube: KubeClient
) -> None:
    await make_config_map(kube, "other")
    run = make_run("waitFor", FLAGS_READY)
    run.extras[ALLOW_CROSS_NAMESPACE] = True
    assert (await run.once()).kind is OutcomeKind.DONE
    assert run.state.outputs == {"value": "yes", "matches": 1}


def secret(**extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {
            "name": "tls",
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": '{"data":{"tls.key":"a2V5"}}',
                "cert-manager.io/issuer-name": "ca",
            },
            "managedFields": [
                {
                    "manager": "kubectl",
                    "operation": "Update",
                    "fieldsV1": {"f:data": {"f:tls.key": {}}},
                }
            ],
        },
        "data": {"tls.key": "a2V5"},
        **extra,
    }


@pytest.mark.parametrize(
    "path",
    [
        ".data['tls.key']",
        ".data",
        ".metadata.managedFields[*].manager",
        ".metadata.annotations['kubectl.kubernetes.io/last-applied-configuration']",
    ],
)
async def test_a_secrets_data_is_never_seen(
    make_run: RunFactory, kube: KubeClient, clock: FakeClock, path: str
) -> None:
    await kube.create(secret(), "default")
    run = make_run(
        "waitFor",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "name": "tls",
            "jsonPath": path,
            "value": "x",
            "timeout": "1m",
        },
    )
    assert (await run.once()).kind is OutcomeKind.WAIT
    assert "; saw no value there" in run.state.message
    clock.advance(60)
    assert (await run.once()).kind is OutcomeKind.FAILED
    assert "a2V5" not in run.state.message


async def test_a_secrets_type_and_metadata_can_be_waited_for(
    make_run: RunFactory, kube: KubeClient
) -> None:
    await kube.create(secret(), "default")
    for path, value in (
        (".type", "kubernetes.io/tls"),
        (".metadata.annotations['cert-manager.io/issuer-name']", "ca"),
    ):
        run = make_run(
            "waitFor",
            {"apiVersion": "v1", "kind": "Secret", "name": "tls", "jsonPath": path, "value": value},
        )
        assert (await run.once()).kind is OutcomeKind.DONE, run.state.message


async def test_a_kind_the_server_does_not_serve_is_waited_for(make_run: RunFactory) -> None:
    run = make_run(
        "waitFor",
        {
            "apiVersion": "example.dev/v1",
            "kind": "Widget",
            "name": "w",
            "condition": {"type": "Ready"},
        },
    )
    assert (await run.once()).kind is OutcomeKind.WAIT
    assert "does not serve kind 'Widget' in 'example.dev/v1'" in run.state.message


async def test_a_server_error_while_reading_is_retried(
    make_run: RunFactory, k8s_emulator: Emulator
) -> None:
    k8s_emulator.inject(verb="get", resource="pods", status=503)
    run = make_run("waitFor", POD_READY)
    assert (await run.once()).kind is OutcomeKind.RETRY
    assert "reading Pod default/web: 503" in run.state.message


def test_poll_delay_starts_at_five_seconds_and_is_capped_at_a_minute() -> None:
    assert poll_delay(0) == 5
    assert poll_delay(120) == 12
    assert poll_delay(10_000) == 60


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("{.status.phase}", ["Running"]),
        (".status.phase", ["Running"]),
        ("$.status.phase", ["Running"]),
        ("status.phase", ["Running"]),
        (".status.conditions[0].type", ["Ready"]),
        (".status.conditions[?(@.type=='Ready')].status", ["True"]),
        (".metadata.labels['app.kubernetes.io/name']", ["web"]),
        (".status.missing", []),
    ],
)
def test_kubectl_style_paths(path: str, expected: list[str]) -> None:
    obj = {
        "metadata": {"labels": {"app.kubernetes.io/name": "web"}},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }
    assert [as_text(v) for v in compile_path(path).findall(obj)] == expected


def test_values_are_compared_as_kubectl_prints_them() -> None:
    assert [as_text(v) for v in (True, 3, None, "x", {"a": 1})] == [
        "true",
        "3",
        "null",
        "x",
        '{"a":1}',
    ]


def test_two_templates_are_not_one_path() -> None:
    with pytest.raises(ValueError, match="is not a valid JSONPath"):
        compile_path("{.a}{.b}")
