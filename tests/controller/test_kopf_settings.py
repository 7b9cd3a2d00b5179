"""The kopf settings the operator runs with: the diff base kopf keeps in the
last-handled-configuration annotation is the essence kopf itself would build."""

from __future__ import annotations

import copy
from typing import Any

import kopf
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubesteps.controller.operator import EssenceDiffBaseStorage

BODY: dict[str, Any] = {
    "apiVersion": "kubesteps.dev/v1alpha1",
    "kind": "Pipeline",
    "metadata": {
        "name": "p",
        "namespace": "default",
        "uid": "u-1",
        "generation": 3,
        "resourceVersion": "42",
        "creationTimestamp": "2026-03-01T12:00:00Z",
        "labels": {"team": "a"},
        "annotations": {
            "kubesteps.dev/approve.deploy": "alice",
            "kubectl.kubernetes.io/last-applied-configuration": "{}",
            "kopf.zalando.org/last-handled-configuration": '{"spec": {}}',
            "kopf.zalando.org/reconcile": '{"started": "2026-03-01T12:00:00Z"}',
        },
        "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "u-0"}],
        "managedFields": [{"manager": "kubectl", "operation": "Update"}],
        "finalizers": ["kubesteps.dev/cleanup"],
    },
    "spec": {"steps": [{"name": "a", "action": "delay", "with": {"seconds": 1}}], "suspend": False},
    "status": {
        "steps": [{"name": "a", "phase": "Succeeded"}],
        "observedGeneration": 3,
        "conditions": [{"type": "Ready", "status": "True"}],
    },
}


def essences(body: dict[str, Any], extra: Any = None) -> tuple[Any, Any]:
    ours = EssenceDiffBaseStorage().build(body=kopf.Body(copy.deepcopy(body)), extra_fields=extra)
    kopfs = kopf.AnnotationsDiffBaseStorage().build(
        body=kopf.Body(copy.deepcopy(body)), extra_fields=extra
    )
    return ours, kopfs


def test_the_essence_is_kopfs_without_copying_the_status() -> None:
    ours, kopfs = essences(BODY)

    assert ours == kopfs
    assert "status" not in ours
    assert ours["metadata"]["annotations"] == {"kubesteps.dev/approve.deploy": "alice"}


@pytest.mark.parametrize("extra", [[("status", "observedGeneration")], []])
def test_with_extra_fields_asked_for_it_is_kopfs_own(extra: Any) -> None:
    ours, kopfs = essences(BODY, extra)

    assert ours == kopfs


def test_a_deployments_replicaset_keeps_its_own_storage_key() -> None:
    body = {
        **BODY,
        "kind": "ReplicaSet",
        "metadata": {
            **BODY["metadata"],
            "ownerReferences": [
                {"kind": "Deployment", "name": "d", "uid": "u-2", "apiVersion": "apps/v1"}
            ],
            "annotations": {"kopf.zalando.org/last-handled-configuration-ofDRS": "{}", "x": "1"},
        },
    }
    ours, kopfs = essences(body)

    assert ours == kopfs


metadata = st.fixed_dictionaries(
    {},
    optional={
        "name": st.text(max_size=5),
        "labels": st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
        "annotations": st.dictionaries(
            st.sampled_from(
                [
                    "a",
                    "kopf.zalando.org/x",
                    "kubesteps.dev/y",
                    "kubectl.kubernetes.io/last-applied-configuration",
                ]
            ),
            st.text(max_size=5),
            max_size=4,
        ),
        "managedFields": st.lists(st.dictionaries(st.text(max_size=3), st.text(max_size=3))),
    },
)
values = st.recursive(
    st.none() | st.integers() | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=150, deadline=None)
@given(
    meta=metadata,
    spec=values,
    status=values,
    more=st.dictionaries(st.sampled_from(["data", "extra"]), values, max_size=2),
)
def test_any_body_gets_the_essence_kopf_would_build(
    meta: dict[str, Any], spec: Any, status: Any, more: dict[str, Any]
) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Thing",
        "metadata": meta,
        "spec": spec,
        "status": status,
        **more,
    }
    ours, kopfs = essences(body)

    assert ours == kopfs
