"""The emulator checked against the real thing: the same API calls on both, answer by answer.

Each scenario runs on the project's emulator (in this process) and on the session's
kube-apiserver (with the project's CRD), each time in a fresh namespace of the same name;
``differential.py`` says what is compared and how. Every difference is either fixed in the
emulator or declared here (``known=``) and listed in docs/testing.md.
"""

from __future__ import annotations

import copy
import ssl
import uuid
from typing import Any

import pytest
import yaml

from kubesteps.testing import Emulator
from kubesteps.testing.control_plane import ControlPlane
from tests.pipeline.malformed import MALFORMED

from .conftest import REPO
from .differential import (
    APPLY,
    JSON,
    JSON_PATCH,
    MERGE,
    STRATEGIC,
    TABLE,
    Known,
    Scenario,
    Seen,
    Server,
    Step,
    differences,
    run,
)

API = "kubesteps.dev/v1alpha1"
PIPELINES = "/apis/kubesteps.dev/v1alpha1/namespaces/{ns}/pipelines"
CONFIGMAPS = "/api/v1/namespaces/{ns}/configmaps"
PODS = "/api/v1/namespaces/{ns}/pods"
DOCS = REPO / "docs" / "testing.md"

NO_APPLY = Known("the emulator has no server-side apply: it answers 415", "No server-side apply")
BUILT_IN_TABLES = Known(
    "most built-in kinds' Tables have only Name and Age in the emulator",
    "built-in kinds get only Name and Age",
)
NOT_VALIDATED = Known(
    "the emulator does not validate built-in kinds (a Pod's containers may not change)",
    "Built-in types are not validated",
)
NAMESPACE_DELETION = Known(
    "the emulator has no namespace controller: a deleted namespace is"
    " emptied and gone at once (the real one is Terminating)",
    "a deleted namespace is gone at once",
)
VERSION_MISMATCH = Known(
    "with a wrong apiVersion the real server also warns of the fields it could not decode",
    "warns of every field but",
)


def delay(name: str) -> dict[str, Any]:
    return {"name": name, "action": "delay", "with": {"duration": "1s"}}


def pipeline(
    name: str, *steps: str, labels: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    return {
        "apiVersion": API,
        "kind": "Pipeline",
        "metadata": meta,
        "spec": {"steps": [delay(s) for s in steps or ("first",)]},
        **extra,
    }


def configmap(
    name: str, data: dict[str, str], labels: dict[str, str] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, **({"labels": labels} if labels else {})}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def ready(status: str, reason: str) -> dict[str, Any]:
    return {
        "conditions": [
            {
                "type": "Ready",
                "status": status,
                "reason": reason,
                "message": "",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }
        ],
        "currentStep": "first",
    }


def edited(step: str, change: Any) -> Any:
    """The object an earlier step answered, changed by ``change(obj)`` (in place)."""

    def body(seen: Seen) -> JSON:
        obj = seen.obj(step)
        change(obj)
        return obj

    return body


def at_rv(step: str, patch: dict[str, Any]) -> Any:
    """A merge patch carrying the resourceVersion an earlier step answered."""

    def body(seen: Seen) -> JSON:
        return {
            **patch,
            "metadata": {**patch.get("metadata", {}), "resourceVersion": seen.rv(step)},
        }

    return body


def since(step: str, **query: str) -> Any:
    return lambda seen: {"resourceVersion": seen.rv(step), **query}


def containers(body: JSON) -> JSON:
    return [{"name": c["name"], "image": c["image"]} for c in body["spec"]["containers"]]


def _set(path: list[str], value: Any) -> Any:
    def change(obj: dict[str, Any]) -> None:
        node = obj
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value

    return change


def _pop_rv(obj: dict[str, Any]) -> None:
    obj["metadata"].pop("resourceVersion")
    obj["spec"]["suspend"] = True


LIFECYCLE = Scenario(
    "pipeline lifecycle",
    [
        Step("create", "POST", PIPELINES, pipeline("a", status=ready("True", "Succeeded"))),
        Step("create again", "POST", PIPELINES, pipeline("a")),
        Step("get", "GET", PIPELINES + "/a"),
        Step("get missing", "GET", PIPELINES + "/missing"),
        Step("list", "GET", PIPELINES),
        Step(
            "update spec",
            "PUT",
            PIPELINES + "/a",
            edited("create", _set(["spec", "steps"], [delay("first"), delay("second")])),
        ),
        Step(
            "stale update",
            "PUT",
            PIPELINES + "/a",
            edited("create", _set(["spec", "suspend"], True)),
        ),
        Step(
            "update without resourceVersion",
            "PUT",
            PIPELINES + "/a",
            edited("update spec", _pop_rv),
        ),
        Step(
            "update labels only",
            "PUT",
            PIPELINES + "/a",
            edited("update spec", _set(["metadata", "labels"], {"team": "a"})),
        ),
        Step(
            "status: spec is ignored",
            "PUT",
            PIPELINES + "/a/status",
            edited(
                "update labels only",
                lambda obj: obj.update(
                    status=ready("False", "Running"), spec={"steps": [delay("other")]}
                ),
            ),
        ),
        Step(
            "main: status is ignored",
            "PUT",
            PIPELINES + "/a",
            edited("status: spec is ignored", _set(["status"], ready("True", "Succeeded"))),
        ),
        Step(
            "main: status and spec",
            "PUT",
            PIPELINES + "/a",
            edited(
                "status: spec is ignored",
                lambda obj: obj.update(
                    status=ready("True", "Succeeded"), spec={"steps": [delay("third")]}
                ),
            ),
        ),
        Step("get after", "GET", PIPELINES + "/a"),
        Step("delete", "DELETE", PIPELINES + "/a"),
        Step("get deleted", "GET", PIPELINES + "/a"),
        Step("delete deleted", "DELETE", PIPELINES + "/a"),
        Step(
            "create held",
            "POST",
            PIPELINES,
            {
                **pipeline("held"),
                "metadata": {"name": "held", "finalizers": ["kubesteps.dev/hold"]},
            },
        ),
        Step("delete held by a finalizer", "DELETE", PIPELINES + "/held"),
        Step("delete it again", "DELETE", PIPELINES + "/held"),
        Step(
            "a new finalizer is refused",
            "PATCH",
            PIPELINES + "/held",
            {"metadata": {"finalizers": ["kubesteps.dev/hold", "kubesteps.dev/more"]}},
            content_type=MERGE,
        ),
        Step(
            "the last finalizer goes",
            "PATCH",
            PIPELINES + "/held",
            {"metadata": {"finalizers": None}},
            content_type=MERGE,
        ),
        Step("get released", "GET", PIPELINES + "/held"),
    ],
)

CONFIGMAP = Scenario(
    "configmap",
    [
        Step("create", "POST", CONFIGMAPS, configmap("c", {"a": "1", "b": "2"}, {"app": "x"})),
        Step("create again", "POST", CONFIGMAPS, configmap("c", {})),
        Step("get", "GET", CONFIGMAPS + "/c"),
        Step("list by label", "GET", CONFIGMAPS, query={"labelSelector": "app=x"}),
        Step("list by name", "GET", CONFIGMAPS, query={"fieldSelector": "metadata.name=c"}),
        # (The controller manager puts kube-root-ca.crt in every namespace: selectors leave it out.)
        Step(
            "list by other names",
            "GET",
            CONFIGMAPS,
            query={"fieldSelector": "metadata.name!=c,metadata.name!=kube-root-ca.crt"},
        ),
        Step("list by unknown field", "GET", CONFIGMAPS, query={"fieldSelector": "data.a=1"}),
        Step("bad label selector", "GET", CONFIGMAPS, query={"labelSelector": "app in x"}),
        Step(
            "stale update",
            "PUT",
            CONFIGMAPS + "/c",
            lambda seen: {
                **seen.obj("create"),
                "data": {"a": "9"},
                "metadata": {**seen.obj("create")["metadata"], "resourceVersion": "1"},
            },
        ),
        Step(
            "unconditional update",
            "PUT",
            CONFIGMAPS + "/c",
            lambda seen: configmap("c", {"a": "1", "b": "2", "c": "3"}, {"app": "x"}),
        ),
        Step(
            "no-op update", "PUT", CONFIGMAPS + "/c", lambda seen: seen.obj("unconditional update")
        ),
        Step(
            "strategic merge",
            "PATCH",
            CONFIGMAPS + "/c",
            {"data": {"a": None, "d": "4"}, "metadata": {"labels": {"tier": "t"}}},
            content_type=STRATEGIC,
        ),
        Step(
            "merge patch",
            "PATCH",
            CONFIGMAPS + "/c",
            {"metadata": {"labels": {"app": None}}, "data": {"b": "22"}},
            content_type=MERGE,
        ),
        Step(
            "merge patch, stale",
            "PATCH",
            CONFIGMAPS + "/c",
            at_rv("create", {"data": {"b": "0"}}),
            content_type=MERGE,
        ),
        Step(
            "json patch",
            "PATCH",
            CONFIGMAPS + "/c",
            [
                {"op": "test", "path": "/data/b", "value": "22"},
                {"op": "replace", "path": "/data/b", "value": "23"},
                {"op": "add", "path": "/data/e", "value": "5"},
            ],
            content_type=JSON_PATCH,
        ),
        Step(
            "json patch, failed test",
            "PATCH",
            CONFIGMAPS + "/c",
            [
                {"op": "test", "path": "/data/b", "value": "nope"},
                {"op": "replace", "path": "/data/b", "value": "0"},
            ],
            content_type=JSON_PATCH,
        ),
        Step(
            "json patch, missing path",
            "PATCH",
            CONFIGMAPS + "/c",
            [{"op": "replace", "path": "/data/zzz", "value": "0"}],
            content_type=JSON_PATCH,
        ),
        Step("get after", "GET", CONFIGMAPS + "/c"),
        Step("table", "GET", CONFIGMAPS, accept=TABLE, query={"labelSelector": "tier=t"}),
        Step(
            "a secret",
            "POST",
            "/api/v1/namespaces/{ns}/secrets",
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "s", "labels": {"app": "x"}},
                "type": "Opaque",
                "data": {"a": "MQ==", "b": "Mg=="},
            },
        ),
        Step(
            "table of secrets",
            "GET",
            "/api/v1/namespaces/{ns}/secrets",
            accept=TABLE,
            query={"labelSelector": "app=x"},
        ),
        Step("delete", "DELETE", CONFIGMAPS + "/c"),
        Step("list after", "GET", CONFIGMAPS, query={"labelSelector": "tier=t"}),
    ],
)

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p"},
    "spec": {
        "containers": [
            {"name": "one", "image": "busybox:1"},
            {"name": "two", "image": "busybox:1"},
        ],
    },
}
STRATEGIC_LISTS = Scenario(
    "strategic merge of a keyed list",
    [
        Step("create pod", "POST", PODS, POD, pick=containers),
        Step(
            "image of one container",
            "PATCH",
            PODS + "/p",
            {"spec": {"containers": [{"name": "two", "image": "busybox:2"}]}},
            content_type=STRATEGIC,
            pick=containers,
        ),
        Step(
            "the same by merge patch replaces the list",
            "PATCH",
            PODS + "/p",
            {"spec": {"containers": [{"name": "two", "image": "busybox:3"}]}},
            content_type=MERGE,
            pick=containers,
            known=NOT_VALIDATED,
        ),
        Step(
            "strategic merge deletes by key",
            "PATCH",
            PODS + "/p",
            {"spec": {"containers": [{"name": "one", "$patch": "delete"}]}},
            content_type=STRATEGIC,
            pick=containers,
            known=NOT_VALIDATED,
        ),
        Step("table of pods", "GET", PODS, accept=TABLE, known=BUILT_IN_TABLES),
        Step(
            "delete a pod answers the pod",
            "DELETE",
            PODS + "/p",
            pick=lambda body: [body["kind"], body["metadata"]["name"]],
        ),
    ],
)

NAMESPACES = Scenario(
    "namespaces",
    [
        Step(
            "create",
            "POST",
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "{ns}-n"}},
        ),
        Step("get", "GET", "/api/v1/namespaces/{ns}-n"),
        Step(
            "table",
            "GET",
            "/api/v1/namespaces",
            accept=TABLE,
            query={"fieldSelector": "metadata.name={ns}-n"},
        ),
        Step(
            "a configmap in it", "POST", "/api/v1/namespaces/{ns}-n/configmaps", configmap("c", {})
        ),
        Step("delete", "DELETE", "/api/v1/namespaces/{ns}-n", known=NAMESPACE_DELETION),
    ],
)

PATCHES = Scenario(
    "pipeline patches",
    [
        Step("create", "POST", PIPELINES, pipeline("p", labels={"team": "a", "tier": "t"})),
        Step(
            "merge patch spec and labels",
            "PATCH",
            PIPELINES + "/p",
            {"spec": {"suspend": True}, "metadata": {"labels": {"team": "b"}}},
            content_type=MERGE,
        ),
        Step(
            "merge patch null removes",
            "PATCH",
            PIPELINES + "/p",
            {"spec": {"suspend": None}, "metadata": {"labels": {"tier": None}}},
            content_type=MERGE,
        ),
        Step(
            "merge patch, no change",
            "PATCH",
            PIPELINES + "/p",
            {"metadata": {"labels": {"team": "b"}}},
            content_type=MERGE,
        ),
        Step(
            "merge patch, stale",
            "PATCH",
            PIPELINES + "/p",
            at_rv("create", {"spec": {"suspend": False}}),
            content_type=MERGE,
        ),
        Step(
            "merge patch, current",
            "PATCH",
            PIPELINES + "/p",
            lambda seen: {
                "metadata": {"resourceVersion": seen.rv("merge patch, no change")},
                "spec": {"historyLimit": 3},
            },
            content_type=MERGE,
        ),
        Step(
            "json patch add",
            "PATCH",
            PIPELINES + "/p",
            [{"op": "add", "path": "/spec/steps/-", "value": delay("second")}],
            content_type=JSON_PATCH,
        ),
        Step(
            "json patch, failed test",
            "PATCH",
            PIPELINES + "/p",
            [
                {"op": "test", "path": "/spec/steps/0/name", "value": "nope"},
                {"op": "remove", "path": "/spec/steps/0"},
            ],
            content_type=JSON_PATCH,
        ),
        Step(
            "json patch, test on a missing member",
            "PATCH",
            PIPELINES + "/p",
            [
                {"op": "test", "path": "/metadata/finalizers", "value": None},
                {"op": "add", "path": "/metadata/finalizers", "value": ["kubesteps.dev/x"]},
            ],
            content_type=JSON_PATCH,
        ),
        Step(
            "json patch, remove a finalizer",
            "PATCH",
            PIPELINES + "/p",
            [{"op": "remove", "path": "/metadata/finalizers"}],
            content_type=JSON_PATCH,
        ),
        Step(
            "strategic merge on a custom resource",
            "PATCH",
            PIPELINES + "/p",
            {"spec": {"suspend": True}},
            content_type=STRATEGIC,
        ),
        Step(
            "merge patch of status",
            "PATCH",
            PIPELINES + "/p/status",
            {"status": ready("True", "Succeeded"), "spec": {"suspend": True}},
            content_type=MERGE,
        ),
        Step(
            "json patch of status",
            "PATCH",
            PIPELINES + "/p/status",
            [{"op": "replace", "path": "/status/currentStep", "value": "second"}],
            content_type=JSON_PATCH,
        ),
        # The status keeper's guarded write: the version it read, set first, makes it
        # conditional (409 when stale) as a merge patch's metadata.resourceVersion does.
        Step(
            "json patch of status, stale version",
            "PATCH",
            PIPELINES + "/p/status",
            lambda seen: [
                {"op": "replace", "path": "/metadata/resourceVersion", "value": seen.rv("create")},
                {"op": "replace", "path": "/status/currentStep", "value": "third"},
            ],
            content_type=JSON_PATCH,
        ),
        Step(
            "json patch of status, current version",
            "PATCH",
            PIPELINES + "/p/status",
            lambda seen: [
                {
                    "op": "replace",
                    "path": "/metadata/resourceVersion",
                    "value": seen.rv("json patch of status"),
                },
                {
                    "op": "add",
                    "path": "/status/conditions/-",
                    "value": {
                        "type": "Extra",
                        "status": "True",
                        "reason": "Added",
                        "message": "",
                        "lastTransitionTime": "2026-03-01T12:00:00Z",
                    },
                },
                {"op": "replace", "path": "/status/conditions/0/reason", "value": "Replaced"},
            ],
            content_type=JSON_PATCH,
        ),
        Step(
            "patch into the schema's refusal",
            "PATCH",
            PIPELINES + "/p",
            {"spec": {"steps": []}},
            content_type=MERGE,
        ),
        Step(
            "patch of a missing object",
            "PATCH",
            PIPELINES + "/nothing",
            {"spec": {"suspend": True}},
            content_type=MERGE,
        ),
        Step("get after", "GET", PIPELINES + "/p"),
    ],
)

SERVER_SIDE_APPLY = Scenario(
    "server-side apply",
    [
        Step(
            "apply creates",
            "PATCH",
            CONFIGMAPS + "/s",
            yaml.safe_dump(configmap("s", {"a": "1"})),
            content_type=APPLY,
            query={"fieldManager": "alpha"},
            known=NO_APPLY,
        ),
        Step(
            "another manager's conflict",
            "PATCH",
            CONFIGMAPS + "/s",
            yaml.safe_dump(configmap("s", {"a": "2"})),
            content_type=APPLY,
            query={"fieldManager": "beta"},
            known=NO_APPLY,
        ),
        Step(
            "forced",
            "PATCH",
            CONFIGMAPS + "/s",
            yaml.safe_dump(configmap("s", {"a": "2"})),
            content_type=APPLY,
            query={"fieldManager": "beta", "force": "true"},
            known=NO_APPLY,
        ),
        Step(
            "apply a pipeline",
            "PATCH",
            PIPELINES + "/s",
            yaml.safe_dump(pipeline("s")),
            content_type=APPLY,
            query={"fieldManager": "alpha"},
            known=NO_APPLY,
        ),
    ],
)


RUN = {
    "id": "r1",
    "number": 3,
    "phase": "Succeeded",
    "specHash": "h",
    "startedAt": "2026-01-01T00:00:00Z",
    "trigger": "create",
}
WATCH = Scenario(
    "watch",
    [
        Step("create w1", "POST", PIPELINES, pipeline("w1")),
        Step(
            "label w1",
            "PATCH",
            PIPELINES + "/w1",
            {"metadata": {"labels": {"x": "1"}}},
            content_type=MERGE,
        ),
        Step("create w2", "POST", PIPELINES, pipeline("w2", labels={"x": "1"})),
        Step(
            "status of w2",
            "PATCH",
            PIPELINES + "/w2/status",
            {"status": ready("True", "Done")},
            content_type=MERGE,
        ),
        Step(
            "relabel w1",
            "PATCH",
            PIPELINES + "/w1",
            {"metadata": {"labels": {"x": "2"}}},
            content_type=MERGE,
        ),
        Step("delete w2", "DELETE", PIPELINES + "/w2"),
        Step("watch from create", "GET", PIPELINES, watch=True, query=since("create w1")),
        Step(
            "watch from a later version", "GET", PIPELINES, watch=True, query=since("status of w2")
        ),
        Step(
            "watch with a selector",
            "GET",
            PIPELINES,
            watch=True,
            query=since("create w1", labelSelector="x=1"),
        ),
        Step(
            "watch with a field selector",
            "GET",
            PIPELINES,
            watch=True,
            query=since("create w1", fieldSelector="metadata.name=w2"),
        ),
        Step("watch without a version", "GET", PIPELINES, watch=True),
        Step("watch from 0", "GET", PIPELINES, watch=True, query={"resourceVersion": "0"}),
        Step(
            "watch from a too old version",
            "GET",
            PIPELINES,
            watch=True,
            query={"resourceVersion": "1"},
        ),
        # (Not for a built-in kind: whether version 1 is still in a real server's watch cache of
        # ConfigMaps depends on how many were written since it started.)
    ],
)

TABLES = Scenario(
    "tables and selectors",
    [
        Step("create t1", "POST", PIPELINES, pipeline("t1", labels={"team": "a"})),
        Step("create t2", "POST", PIPELINES, pipeline("t2", labels={"team": "b"})),
        Step("create t3", "POST", PIPELINES, pipeline("t3")),
        Step(
            "status of t1",
            "PATCH",
            PIPELINES + "/t1/status",
            {"status": {**ready("True", "Succeeded"), "run": RUN}},
            content_type=MERGE,
        ),
        Step(
            "a status the schema refuses",
            "PATCH",
            PIPELINES + "/t2/status",
            {"status": {"run": {"number": 3}}},
            content_type=MERGE,
        ),
        Step("table", "GET", PIPELINES, accept=TABLE),
        Step("table of one", "GET", PIPELINES + "/t1", accept=TABLE),
        Step(
            "table of a selection",
            "GET",
            PIPELINES,
            accept=TABLE,
            query={"labelSelector": "team=b"},
        ),
        Step("label =", "GET", PIPELINES, query={"labelSelector": "team=a"}),
        Step("label in", "GET", PIPELINES, query={"labelSelector": "team in (a,b)"}),
        Step("label !=", "GET", PIPELINES, query={"labelSelector": "team!=a"}),
        Step("label notin", "GET", PIPELINES, query={"labelSelector": "team notin (a)"}),
        Step("label exists", "GET", PIPELINES, query={"labelSelector": "team"}),
        Step("label absent", "GET", PIPELINES, query={"labelSelector": "!team"}),
        Step("two labels", "GET", PIPELINES, query={"labelSelector": "team=a,team!=b"}),
        Step("field =", "GET", PIPELINES, query={"fieldSelector": "metadata.name=t2"}),
        Step("field !=", "GET", PIPELINES, query={"fieldSelector": "metadata.name!=t2"}),
        Step(
            "field namespace",
            "GET",
            PIPELINES,
            query=lambda seen: {"fieldSelector": "metadata.namespace=default"},
        ),
        Step(
            "field and label",
            "GET",
            PIPELINES,
            query={"fieldSelector": "metadata.name!=t1", "labelSelector": "team"},
        ),
        Step(
            "field not selectable", "GET", PIPELINES, query={"fieldSelector": "spec.suspend=true"}
        ),
        Step(
            "field selector malformed", "GET", PIPELINES, query={"fieldSelector": "metadata.name"}
        ),
    ],
)


def _malformed_steps() -> list[Step]:
    steps = []
    for case in MALFORMED:
        manifest = copy.deepcopy(case.manifest)
        meta = manifest.setdefault("metadata", {})
        if isinstance(meta, dict):
            meta.pop("namespace", None)
            if "name" in meta:
                meta["name"] = case.id[:63]
        steps.append(
            Step(
                f"malformed: {case.id}",
                "POST",
                PIPELINES,
                manifest,
                query={"fieldValidation": "Strict"},
                pick=lambda body: "accepted",
            )
        )
    return steps


SCHEMA = Scenario(
    "schema refusals",
    [
        Step(
            "unknown field, warned",
            "POST",
            PIPELINES,
            {**pipeline("warned"), "spec": {"steps": [delay("first")], "stepz": 1}},
        ),
        Step(
            "unknown field, strict",
            "POST",
            PIPELINES,
            {**pipeline("strict"), "spec": {"steps": [delay("first")], "stepz": 1}},
            query={"fieldValidation": "Strict"},
        ),
        Step(
            "unknown field, ignored",
            "POST",
            PIPELINES,
            {**pipeline("ignored"), "spec": {"steps": [delay("first")], "stepz": 1}},
            query={"fieldValidation": "Ignore"},
        ),
        Step(
            "no spec",
            "POST",
            PIPELINES,
            {"apiVersion": API, "kind": "Pipeline", "metadata": {"name": "nospec"}},
        ),
        Step("bad name", "POST", PIPELINES, pipeline("Not_A_Name")),
        Step("no name", "POST", PIPELINES, {**pipeline("x"), "metadata": {}}),
        Step(
            "generated name",
            "POST",
            PIPELINES,
            {**pipeline("x"), "metadata": {"generateName": "gen-"}},
            pick=lambda body: body["metadata"]["name"][:4],
        ),
        Step(
            "other namespace in the body",
            "POST",
            PIPELINES,
            {**pipeline("x"), "metadata": {"name": "x", "namespace": "elsewhere"}},
        ),
        Step(
            "resourceVersion on create",
            "POST",
            PIPELINES,
            {**pipeline("x"), "metadata": {"name": "x", "resourceVersion": "5"}},
        ),
        Step(
            "wrong apiVersion",
            "POST",
            PIPELINES,
            {**pipeline("x"), "apiVersion": "kubesteps.dev/v9"},
            known=VERSION_MISMATCH,
        ),
        Step("wrong kind", "POST", PIPELINES, {**pipeline("x"), "kind": "Pipelines"}),
        Step("wrong kind of a built-in", "POST", CONFIGMAPS, {**configmap("x", {}), "kind": "Map"}),
        Step(
            "a built-in without a name", "POST", CONFIGMAPS, {**configmap("x", {}), "metadata": {}}
        ),
        Step("a built-in with a bad label", "POST", CONFIGMAPS, configmap("x", {}, {"a": "-"})),
        Step("not json", "POST", PIPELINES, "{nope"),
        *_malformed_steps(),
    ],
)


def event(name: str, reason: str, kind: str = "Pipeline", about: str = "x") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name},
        "involvedObject": {"apiVersion": API, "kind": kind, "name": about, "namespace": "{ns}"},
        "reason": reason,
        "message": "m",
        "type": "Normal",
        "source": {"component": "c"},
    }


def names(body: JSON) -> JSON:
    return [item["metadata"]["name"] for item in body["items"]]


LEASE = {
    "apiVersion": "coordination.k8s.io/v1",
    "kind": "Lease",
    "metadata": {"name": "l"},
    "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15},
}
LEASES = "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases"
# What kopf, kubectl describe and leader election do besides the above.
EVENTS_AND_LEASES = Scenario(
    "events, leases and collections",
    [
        Step(
            "event 1",
            "POST",
            "/api/v1/namespaces/{ns}/events",
            event("e1", "Started"),
            pick=lambda body: body["reason"],
        ),
        Step(
            "event 2",
            "POST",
            "/api/v1/namespaces/{ns}/events",
            event("e2", "Done"),
            pick=lambda body: body["reason"],
        ),
        Step(
            "event 3",
            "POST",
            "/api/v1/namespaces/{ns}/events",
            event("e3", "Started", kind="ConfigMap"),
            pick=lambda body: body["reason"],
        ),
        Step(
            "events of one object",
            "GET",
            "/api/v1/namespaces/{ns}/events",
            pick=names,
            query={"fieldSelector": "involvedObject.kind=Pipeline,involvedObject.name=x"},
        ),
        Step(
            "events by reason",
            "GET",
            "/api/v1/namespaces/{ns}/events",
            pick=names,
            query={"fieldSelector": "reason=Started"},
        ),
        Step(
            "events by type and source",
            "GET",
            "/api/v1/namespaces/{ns}/events",
            pick=names,
            query={"fieldSelector": "type=Normal,source=c,involvedObject.kind!=ConfigMap"},
        ),
        Step("create a lease", "POST", LEASES, LEASE),
        Step(
            "renew it",
            "PUT",
            LEASES + "/l",
            edited("create a lease", _set(["spec", "holderIdentity"], "b")),
        ),
        Step(
            "a stale renewal",
            "PUT",
            LEASES + "/l",
            edited("create a lease", _set(["spec", "holderIdentity"], "c")),
        ),
        Step("configmap 1", "POST", CONFIGMAPS, configmap("d1", {"a": "1"}, {"batch": "x"})),
        Step("configmap 2", "POST", CONFIGMAPS, configmap("d2", {"a": "1"}, {"batch": "x"})),
        Step(
            "delete a collection",
            "DELETE",
            CONFIGMAPS,
            query={"labelSelector": "batch=x"},
            pick=names,
        ),
        Step("what is left of it", "GET", CONFIGMAPS, query={"labelSelector": "batch=x"}),
    ],
)

SCENARIOS = [
    LIFECYCLE,
    CONFIGMAP,
    STRATEGIC_LISTS,
    NAMESPACES,
    PATCHES,
    SERVER_SIDE_APPLY,
    WATCH,
    TABLES,
    SCHEMA,
    EVENTS_AND_LEASES,
]


@pytest.fixture(scope="module")
def emulator_crd() -> dict[str, Any]:
    crd: dict[str, Any] = yaml.safe_load(
        (REPO / "crds" / "pipelines.kubesteps.dev.yaml").read_text()
    )
    return crd


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name.replace(" ", "-"))
async def test_the_emulator_answers_as_the_real_server(
    control_plane: ControlPlane, emulator_crd: dict[str, Any], scenario: Scenario
) -> None:
    namespace = f"diff-{uuid.uuid4().hex[:8]}"
    real = Server(
        "kube-apiserver",
        control_plane.url,
        control_plane.admin.token,
        ssl.create_default_context(cafile=str(control_plane.ca_path)),
    )
    emulator = Emulator()
    emulator.register_crd(copy.deepcopy(emulator_crd))
    async with emulator.serving() as url:
        emulated = await run(Server("emulator", url), scenario, namespace)
    actual = await run(real, scenario, namespace)

    problems = differences(scenario, emulated, actual)
    assert not problems, "\n\n".join(problems)


def test_every_declared_difference_is_listed_in_the_docs() -> None:
    docs = " ".join(DOCS.read_text().split())
    declared = {step.known for scenario in SCENARIOS for step in scenario.steps if step.known}
    assert declared
    missing = [known.docs for known in declared if " ".join(known.docs.split()) not in docs]
    assert not missing, f"declared differences that docs/testing.md does not list: {missing}"
