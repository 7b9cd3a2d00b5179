"""apply: create-or-patch through the emulator, with the Pipeline as owner when asked."""

from __future__ import annotations

from typing import Any

import pytest

from kubesteps.actions.common import ALLOW_CROSS_NAMESPACE
from kubesteps.engine import OutcomeKind, StepStatus
from kubesteps.kube.client import KubeClient
from kubesteps.testing import Emulator

from .conftest import PIPELINE_UID, FakeClock, RunFactory, pipeline_object


def config_map(name: str = "settings", **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": dict(data)}


async def make_namespace(kube: KubeClient, name: str) -> None:
    await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


async def test_creates_the_object_in_the_pipeline_namespace_and_reports_it(
    make_run: RunFactory, k8s_emulator: Emulator
) -> None:
    run = make_run("apply", {"manifest": config_map(mode="fast")})
    assert (await run.once()).kind is OutcomeKind.DONE
    stored = k8s_emulator.object("configmaps", "settings", "default")
    assert stored is not None
    assert stored["data"] == {"mode": "fast"}
    assert run.state.outputs == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "settings",
        "namespace": "default",
        "uid": stored["metadata"]["uid"],
        "resourceVersion": stored["metadata"]["resourceVersion"],
    }


async def test_owned_by_default_with_the_pipeline_as_controller(
    make_run: RunFactory, k8s_emulator: Emulator
) -> None:
    await make_run("apply", {"manifest": config_map()}).once()
    stored = k8s_emulator.object("configmaps", "settings", "default")
    assert stored is not None
    assert stored["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "kubesteps.dev/v1alpha1",
            "kind": "Pipeline",
            "name": "demo",
            "uid": PIPELINE_UID,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


async def test_not_owned_when_owned_is_false(make_run: RunFactory, k8s_emulator: Emulator) -> None:
    await make_run("apply", {"manifest": config_map(), "owned": False}).once()
    stored = k8s_emulator.object("configmaps", "settings", "default")
    assert stored is not None
    assert "ownerReferences" not in stored["metadata"]


async def test_a_second_apply_patches_the_same_object(
    make_run: RunFactory, k8s_emulator: Emulator
) -> None:
    first = make_run("apply", {"manifest": config_map(mode="fast")})
    await first.once()
    second = make_run("apply", {"manifest": config_map(mode="safe")})
    assert (await second.once()).kind is OutcomeKind.DONE
    assert first.state.outputs is not None
    assert second.state.outputs is not None
    assert second.state.outputs["uid"] == first.state.outputs["uid"]
    assert int(second.state.outputs["resourceVersion"]) > int(
        first.state.outputs["resourceVersion"]
    )
    stored = k8s_emulator.object("configmaps", "settings", "default")
    assert stored is not None
    assert stored["data"] == {"mode": "safe"}
    assert len(stored["metadata"]["ownerReferences"]) == 1


async def test_with_namespace_wins_over_the_manifest_namespace(
    make_run: RunFactory, k8s_emulator: Emulator, kube: KubeClient
) -> None:
    await make_namespace(kube, "elsewhere")
    manifest = config_map()
    manifest["metadata"]["namespace"] = "default"
    run = make_run("apply", {"manifest": manifest, "namespace": "elsewhere", "owned": False})
    run.extras[ALLOW_CROSS_NAMESPACE] = True
    assert (await run.once()).kind is OutcomeKind.DONE
    assert k8s_emulator.object("configmaps", "settings", "elsewhere") is not None
    assert k8s_emulator.object("configmaps", "settings", "default") is None


def refusal(field: str, what: str, namespace: str, own: str = "default") -> str:
    return (
        f"{field}: {what} in namespace {namespace!r} is refused: a Pipeline acts only in its "
        f"own namespace ({own!r}) unless the operator runs with --allow-cross-namespace (chart "
        "value allowCrossNamespace), so that its authors cannot use the operator's rights "
        "elsewhere"
    )


@pytest.mark.parametrize(
    ("where", "field"),
    [
        ({"namespace": "elsewhere"}, "with.namespace"),
        ({"manifest_namespace": "elsewhere"}, "with.manifest.metadata.namespace"),
        ({"namespace": "elsewhere", "manifest_namespace": "default"}, "with.namespace"),
    ],
)
async def test_another_namespace_is_refused_before_any_write(
    make_run: RunFactory,
    k8s_emulator: Emulator,
    kube: KubeClient,
    where: dict[str, str],
    field: str,
) -> None:
    await make_namespace(kube, "elsewhere")
    manifest = config_map()
    if "manifest_namespace" in where:
        manifest["metadata"]["namespace"] = where["manifest_namespace"]
    with_: dict[str, Any] = {"manifest": manifest, "owned": False}
    if "namespace" in where:
        with_["namespace"] = where["namespace"]
    k8s_emulator.requests.reset()
    run = make_run("apply", with_)
    assert (await run.once()).kind is OutcomeKind.FAILED
    assert run.state.message == refusal(field, "ConfigMap settings", "elsewhere")
    assert k8s_emulator.requests.count("create") == k8s_emulator.requests.count("patch") == 0
    assert k8s_emulator.object("configmaps", "settings", "elsewhere") is None


async def test_another_namespace_is_refused_even_when_the_operator_setting_is_not_true(
    make_run: RunFactory, kube: KubeClient
) -> None:
    await make_namespace(kube, "elsewhere")
    run = make_run("apply", {"manifest": config_map(), "namespace": "elsewhere", "owned": False})
    run.extras[ALLOW_CROSS_NAMESPACE] = "false"  # only a real True allows it
    assert (await run.once()).kind is OutcomeKind.FAILED


async def test_the_pipelines_own_namespace_may_be_named(
    make_run: RunFactory, k8s_emulator: Emulator, kube: KubeClient
) -> None:
    await make_namespace(kube, "team-a")
    manifest = config_map()
    manifest["metadata"]["namespace"] = "team-a"
    run = make_run(
        "apply",
        {"manifest": manifest, "namespace": "team-a"},
        pipeline=pipeline_object(namespace="team-a"),
    )
    assert (await run.once()).kind is OutcomeKind.DONE
    assert k8s_emulator.object("configmaps", "settings", "team-a") is not None


async def test_an_object_of_another_namespace_is_refused_as_such_before_its_ownership(
    make_run: RunFactory, kube: KubeClient
) -> None:
    await make_namespace(kube, "elsewhere")
    run = make_run("apply", {"manifest": config_map(), "namespace": "elsewhere"})
    assert (await run.once()).kind is OutcomeKind.FAILED
    assert run.state.message == refusal("with.namespace", "ConfigMap settings", "elsewhere")


async def test_an_owned_object_in_another_namespace_is_refused(
    make_run: RunFactory, k8s_emulator: Emulator, kube: KubeClient
) -> None:
    await make_namespace(kube, "elsewhere")
    manifest = config_map()
    manifest["metadata"]["namespace"] = "elsewhere"
    run = make_run("apply", {"manifest": manifest})
    run.extras[ALLOW_CROSS_NAMESPACE] = True
    assert (await run.once()).kind is OutcomeKind.FAILED
    assert run.state.status is StepStatus.FAILED
    assert run.state.message.startswith(
        "with.owned: ConfigMap elsewhere/settings is in namespace 'elsewhere' but the "
        "Pipeline is in 'default'"
    )
    assert "owned: false" in run.state.message
    assert k8s_emulator.object("configmaps", "settings", "elsewhere") is None


async def test_an_owned_cluster_scoped_object_is_refused(
    make_run: RunFactory, k8s_emulator: Emulator
) -> None:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}
    run = make_run("apply", {"manifest": namespace})
    assert (await run.once()).kind is OutcomeKind.FAILED
    assert "Namespace team-a is cluster-scoped and cannot be owned" in run.state.message
    assert k8s_emulator.object("namespaces", "team-a") is None


async def test_a_cluster_scoped_object_is_applied_without_a_namespace(
    make_run: RunFactory, k8s_emulator: Emulator
) -> None:
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "team-a", "namespace": "ignored", "labels": {"t": "a"}},
    }
    run = make_run("apply", {"manifest": namespace, "owned": False})
    assert (await run.once()).kind is OutcomeKind.DONE
    stored = k8s_emulator.object("namespaces", "team-a")
    assert stored is not None
    # The server adds the name label to every namespace (the emulator as a real one does).
    assert stored["metadata"]["labels"] == {"t": "a", "kubernetes.io/metadata.name": "team-a"}
    assert run.state.outputs is not None
    assert run.state.outputs["namespace"] == ""


async def test_with_namespace_on_a_cluster_scoped_kind_is_refused(make_run: RunFactory) -> None:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}
    run = make_run("apply", {"manifest": namespace, "owned": False, "namespace": "default"})
    assert (await run.once()).kind is OutcomeKind.FAILED
    assert run.state.message.startswith("with.namespace: Namespace is cluster-scoped")


async def test_a_kind_the_server_does_not_serve_is_retried(make_run: RunFactory) -> None:
    manifest = {"apiVersion": "example.dev/v1", "kind": "Widget", "metadata": {"name": "w"}}
    run = make_run("apply", {"manifest": manifest})
    assert (await run.once()).kind is OutcomeKind.RETRY
    assert "does not serve kind 'Widget' in 'example.dev/v1'" in run.state.message


async def test_a_server_error_is_retried_and_the_next_attempt_applies(
    make_run: RunFactory, k8s_emulator: Emulator, clock: FakeClock
) -> None:
    k8s_emulator.inject(verb="create", resource="configmaps", status=500)
    run = make_run("apply", {"manifest": config_map()})
    outcome = await run.once()
    assert outcome.kind is OutcomeKind.RETRY
    assert "applying ConfigMap default/settings: 500 InternalError" in run.state.message
    assert k8s_emulator.object("configmaps", "settings", "default") is None
    clock.advance(outcome.delay or 0)
    assert (await run.once()).kind is OutcomeKind.DONE
    assert k8s_emulator.object("configmaps", "settings", "default") is not None


async def test_a_refusal_fails_for_good_with_the_server_message(
    make_run: RunFactory, k8s_emulator: Emulator
) -> None:
    k8s_emulator.inject(
        verb="create", resource="configmaps", status=422, message="data.mode: Invalid value"
    )
    run = make_run("apply", {"manifest": config_map()})
    assert (await run.once()).kind is OutcomeKind.FAILED
    assert run.state.message == (
        "applying ConfigMap default/settings: 422 Invalid: data.mode: Invalid value"
    )


async def test_a_manifest_without_a_name_is_refused_before_any_request(
    make_run: RunFactory, k8s_emulator: Emulator
) -> None:
    k8s_emulator.requests.reset()
    run = make_run("apply", {"manifest": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}})
    assert (await run.once()).kind is OutcomeKind.FAILED
    assert "with.manifest.metadata.name" in run.state.message
    assert k8s_emulator.requests.total == 0
