"""The emulator's API semantics, each checked over real HTTP."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from typing import Any

import aiohttp
import pytest

from kubesteps.testing import Emulator

from .widgets import WIDGET_CRD, WIDGETS, widget

JSON_PATCH = {"Content-Type": "application/json-patch+json"}
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}
STRATEGIC_PATCH = {"Content-Type": "application/strategic-merge-patch+json"}
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


async def create(http: aiohttp.ClientSession, body: dict[str, Any], url: str = WIDGETS) -> Any:
    response = await http.post(url, json=body)
    assert response.status == 201, await response.text()
    return await response.json()


async def patch(
    http: aiohttp.ClientSession, url: str, body: Any, headers: dict[str, str] = MERGE_PATCH
) -> aiohttp.ClientResponse:
    return await http.patch(url, data=json.dumps(body), headers=headers)


async def test_created_objects_get_server_metadata(http: aiohttp.ClientSession) -> None:
    meta = (await create(http, widget("w")))["metadata"]
    assert meta["uid"]
    assert meta["creationTimestamp"].endswith("Z")
    assert meta["generation"] == 1
    assert meta["namespace"] == "default"
    assert int(meta["resourceVersion"]) > 0


async def test_resource_versions_grow_across_resources(http: aiohttp.ClientSession) -> None:
    first = await create(http, {"metadata": {"name": "cm"}, "data": {}}, CONFIGMAPS)
    second = await create(http, widget("w"))
    assert int(second["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])


async def test_generate_name_gets_a_random_suffix(http: aiohttp.ClientSession) -> None:
    body = widget("")
    body["metadata"] = {"generateName": "w-"}
    name = (await create(http, body))["metadata"]["name"]
    assert name.startswith("w-")
    assert len(name) == 7


class Scripted(random.Random):
    """Draws the given characters, in order, wherever the emulator picks from an alphabet."""

    def __init__(self, script: str) -> None:
        super().__init__(0)
        self._script = iter(script)

    def choice(self, seq: Sequence[Any]) -> Any:
        return next(self._script)


async def test_a_generated_name_that_is_taken_is_drawn_again() -> None:
    emulator = Emulator(rng=Scripted("bbbbb" + "bbbbb" + "ccccc"))
    body = {"metadata": {"generateName": "w-"}, "data": {}}
    async with emulator.serving() as url, aiohttp.ClientSession() as http:
        first = await create(http, body, url + CONFIGMAPS)
        second = await create(http, body, url + CONFIGMAPS)

    assert (first["metadata"]["name"], second["metadata"]["name"]) == ("w-bbbbb", "w-ccccc")


async def test_a_generated_name_taken_at_every_draw_answers_already_exists() -> None:
    emulator = Emulator(rng=Scripted("b" * 5 * 9))
    body = {"metadata": {"generateName": "w-"}, "data": {}}
    async with emulator.serving() as url, aiohttp.ClientSession() as http:
        await create(http, body, url + CONFIGMAPS)
        response = await http.post(url + CONFIGMAPS, json=body)
        refusal = await response.json()

    assert (response.status, refusal["reason"]) == (409, "AlreadyExists")


async def test_list_carries_kind_api_version_and_latest_revision(
    http: aiohttp.ClientSession,
) -> None:
    created = await create(http, widget("w"))
    listing = await (await http.get(WIDGETS)).json()
    assert listing["kind"] == "WidgetList"
    assert listing["apiVersion"] == "example.dev/v1"
    assert listing["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert [item["metadata"]["name"] for item in listing["items"]] == ["w"]


async def test_failed_json_patch_test_answers_422(http: aiohttp.ClientSession) -> None:
    await create(http, widget("w"))
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": None},
        {"op": "add", "path": "/metadata/finalizers", "value": ["x/y"]},
    ]
    response = await patch(http, f"{WIDGETS}/w", ops, JSON_PATCH)
    assert response.status == 422
    assert (await response.json())["reason"] == "Invalid"
    assert "finalizers" not in (await (await http.get(f"{WIDGETS}/w")).json())["metadata"]


async def test_json_patch_with_a_passing_test_applies(http: aiohttp.ClientSession) -> None:
    revision = (await create(http, widget("w")))["metadata"]["resourceVersion"]
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": revision},
        {"op": "add", "path": "/metadata/finalizers", "value": ["x/y"]},
    ]
    response = await patch(http, f"{WIDGETS}/w", ops, JSON_PATCH)
    assert response.status == 200
    assert (await response.json())["metadata"]["finalizers"] == ["x/y"]


async def test_missing_object_answers_not_found_status(http: aiohttp.ClientSession) -> None:
    response = await http.get(f"{WIDGETS}/nope")
    body = await response.json()
    assert response.status == 404
    assert body["kind"] == "Status"
    assert body["status"] == "Failure"
    assert body["reason"] == "NotFound"
    assert body["details"] == {"name": "nope", "group": "example.dev", "kind": "widgets"}
    assert body["message"] == 'widgets.example.dev "nope" not found'


async def test_creating_twice_answers_already_exists(http: aiohttp.ClientSession) -> None:
    await create(http, widget("w"))
    response = await http.post(WIDGETS, json=widget("w"))
    assert response.status == 409
    assert (await response.json())["reason"] == "AlreadyExists"


async def test_malformed_body_answers_bad_request(http: aiohttp.ClientSession) -> None:
    response = await http.post(
        WIDGETS, data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    assert (await response.json())["reason"] == "BadRequest"


async def test_wrong_kind_of_a_custom_resource_answers_invalid_at_kind(
    http: aiohttp.ClientSession,
) -> None:
    # As kube-apiserver answers it (tests/cluster/test_differential.py compares the two).
    response = await http.post(WIDGETS, json={**widget("w"), "kind": "Gadget"})
    assert response.status == 422
    body = await response.json()
    assert (
        body["message"] == 'Gadget.example.dev "w" is invalid: kind: Invalid value:'
        ' "Gadget": must be Widget'
    )
    assert body["details"]["kind"] == "Gadget"
    assert [cause["field"] for cause in body["details"]["causes"]] == ["kind"]


async def test_wrong_kind_of_a_built_in_answers_bad_request(http: aiohttp.ClientSession) -> None:
    response = await http.post(
        "/api/v1/namespaces/default/configmaps",
        json={"apiVersion": "v1", "kind": "ConfigMapp", "metadata": {"name": "c"}},
    )
    assert response.status == 400
    assert "ConfigMapp" in (await response.json())["message"]


async def test_post_to_a_named_object_answers_method_not_allowed(
    http: aiohttp.ClientSession,
) -> None:
    response = await http.post(f"{WIDGETS}/w", json=widget("w"))
    assert response.status == 405
    assert (await response.json())["reason"] == "MethodNotAllowed"


async def test_unknown_resource_answers_not_found(http: aiohttp.ClientSession) -> None:
    response = await http.get("/apis/example.dev/v1/namespaces/default/gadgets")
    assert response.status == 404


async def test_namespaces_are_listed_and_cluster_scoped(http: aiohttp.ClientSession) -> None:
    await create(http, {"metadata": {"name": "team-a"}}, "/api/v1/namespaces")
    listing = await (await http.get("/api/v1/namespaces")).json()
    names = [item["metadata"]["name"] for item in listing["items"]]
    assert {"default", "kube-system", "team-a"} <= set(names)
    namespace = await (await http.get("/api/v1/namespaces/team-a")).json()
    assert "namespace" not in namespace["metadata"]
    assert namespace["status"] == {"phase": "Active"}


async def test_creating_in_a_missing_namespace_answers_not_found(
    http: aiohttp.ClientSession,
) -> None:
    response = await http.post("/apis/example.dev/v1/namespaces/ghost/widgets", json=widget("w"))
    assert response.status == 404
    assert (await response.json())["message"] == 'namespaces "ghost" not found'


async def test_deleting_a_namespace_deletes_its_objects(http: aiohttp.ClientSession) -> None:
    await create(http, {"metadata": {"name": "team-a"}}, "/api/v1/namespaces")
    await create(http, widget("w"), "/apis/example.dev/v1/namespaces/team-a/widgets")
    assert (await http.delete("/api/v1/namespaces/team-a")).status == 200
    response = await http.get("/apis/example.dev/v1/namespaces/team-a/widgets/w")
    assert response.status == 404


async def test_listing_across_namespaces(http: aiohttp.ClientSession) -> None:
    await create(http, {"metadata": {"name": "team-a"}}, "/api/v1/namespaces")
    await create(http, widget("a"), "/apis/example.dev/v1/namespaces/team-a/widgets")
    await create(http, widget("b"))
    listing = await (await http.get("/apis/example.dev/v1/widgets")).json()
    found = [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in listing["items"]]
    assert found == [("default", "b"), ("team-a", "a")]


async def test_status_writes_change_only_the_status(http: aiohttp.ClientSession) -> None:
    created = await create(http, widget("w"))
    body = {"spec": {"size": 4}, "metadata": {"labels": {"x": "y"}}, "status": {"phase": "Running"}}
    response = await patch(http, f"{WIDGETS}/w/status", body)
    updated = await response.json()
    assert response.status == 200
    assert updated["status"] == {"phase": "Running"}
    assert updated["spec"] == created["spec"]
    assert "labels" not in updated["metadata"]
    assert updated["metadata"]["generation"] == 1
    assert int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])


async def test_main_resource_writes_ignore_the_status(http: aiohttp.ClientSession) -> None:
    await create(http, widget("w"))
    await patch(http, f"{WIDGETS}/w/status", {"status": {"phase": "Running"}})
    response = await patch(http, f"{WIDGETS}/w", {"status": {"phase": "Hacked"}})
    assert (await response.json())["status"] == {"phase": "Running"}


async def test_status_in_a_create_is_dropped(http: aiohttp.ClientSession) -> None:
    created = await create(http, {**widget("w"), "status": {"phase": "Done"}})
    assert "status" not in created


async def test_generation_bumps_on_spec_changes_only(http: aiohttp.ClientSession) -> None:
    await create(http, widget("w"))
    relabelled = await (
        await patch(http, f"{WIDGETS}/w", {"metadata": {"labels": {"a": "b"}}})
    ).json()
    respecced = await (await patch(http, f"{WIDGETS}/w", {"spec": {"mode": "slow"}})).json()
    assert relabelled["metadata"]["generation"] == 1
    assert respecced["metadata"]["generation"] == 2


async def test_a_no_op_patch_keeps_the_resource_version(http: aiohttp.ClientSession) -> None:
    created = await create(http, widget("w"))
    response = await patch(http, f"{WIDGETS}/w", {"spec": {"size": 1}})
    same = created["metadata"]["resourceVersion"]
    assert (await response.json())["metadata"]["resourceVersion"] == same


async def test_stale_resource_version_in_a_patch_answers_conflict(
    http: aiohttp.ClientSession,
) -> None:
    created = await create(http, widget("w"))
    await patch(http, f"{WIDGETS}/w", {"spec": {"mode": "slow"}})
    stale = {
        "metadata": {"resourceVersion": created["metadata"]["resourceVersion"]},
        "spec": {"mode": "fast"},
    }
    response = await patch(http, f"{WIDGETS}/w", stale)
    assert response.status == 409
    assert (await response.json())["reason"] == "Conflict"


async def test_replace_with_a_stale_resource_version_answers_conflict(
    http: aiohttp.ClientSession,
) -> None:
    created = await create(http, widget("w"))
    await patch(http, f"{WIDGETS}/w", {"spec": {"mode": "slow"}})
    response = await http.put(f"{WIDGETS}/w", json=created)
    assert response.status == 409


async def test_replace_of_a_custom_resource_needs_a_resource_version(
    http: aiohttp.ClientSession,
) -> None:
    await create(http, widget("w"))
    response = await http.put(f"{WIDGETS}/w", json=widget("w", mode="slow"))
    body = await response.json()
    assert response.status == 422
    assert body["details"]["causes"][0]["field"] == "metadata.resourceVersion"


async def test_replace_with_the_current_version_applies(http: aiohttp.ClientSession) -> None:
    created = await create(http, widget("w"))
    created["spec"]["mode"] = "slow"
    response = await http.put(f"{WIDGETS}/w", json=created)
    replaced = await response.json()
    assert response.status == 200
    assert replaced["spec"]["mode"] == "slow"
    assert replaced["metadata"]["generation"] == 2
    assert replaced["metadata"]["uid"] == created["metadata"]["uid"]


async def test_replace_of_the_status_keeps_the_spec(http: aiohttp.ClientSession) -> None:
    created = await create(http, widget("w"))
    body = {**created, "spec": {"size": 5}, "status": {"phase": "Done"}}
    replaced = await (await http.put(f"{WIDGETS}/w/status", json=body)).json()
    assert replaced["status"] == {"phase": "Done"}
    assert replaced["spec"] == created["spec"]


async def test_unconditional_replace_of_a_builtin_applies(http: aiohttp.ClientSession) -> None:
    await create(http, {"metadata": {"name": "cm"}, "data": {"a": "1"}}, CONFIGMAPS)
    response = await http.put(
        f"{CONFIGMAPS}/cm", json={"metadata": {"name": "cm"}, "data": {"a": "2"}}
    )
    assert (await response.json())["data"] == {"a": "2"}


async def test_merge_patch_null_removes_a_field(http: aiohttp.ClientSession) -> None:
    await create(http, widget("w", note="hello"))
    patched = await (await patch(http, f"{WIDGETS}/w", {"spec": {"note": None}})).json()
    assert "note" not in patched["spec"]


async def test_strategic_merge_patch_on_a_custom_resource_is_unsupported(
    http: aiohttp.ClientSession,
) -> None:
    await create(http, widget("w"))
    response = await patch(http, f"{WIDGETS}/w", {"spec": {"size": 2}}, STRATEGIC_PATCH)
    assert response.status == 415


async def test_strategic_merge_patch_merges_named_lists(http: aiohttp.ClientSession) -> None:
    containers = [{"name": "app", "image": "app:1"}, {"name": "sidecar", "image": "side:1"}]
    deployment = {
        "metadata": {"name": "d"},
        "spec": {"template": {"spec": {"containers": containers}}},
    }
    await create(http, deployment, "/apis/apps/v1/namespaces/default/deployments")
    body = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
                    "containers": [{"name": "app", "image": "app:2"}],
                }
            }
        }
    }
    response = await patch(
        http, "/apis/apps/v1/namespaces/default/deployments/d", body, STRATEGIC_PATCH
    )
    spec = (await response.json())["spec"]["template"]["spec"]
    assert spec == {
        "containers": [{"name": "app", "image": "app:2"}, {"name": "sidecar", "image": "side:1"}]
    }


async def test_server_side_apply_is_reported_unsupported(http: aiohttp.ClientSession) -> None:
    await create(http, widget("w"))
    response = await http.patch(
        f"{WIDGETS}/w", data=b"spec: {}", headers={"Content-Type": "application/apply-patch+yaml"}
    )
    assert response.status == 415
    assert "server-side apply" in (await response.json())["message"]


async def test_yaml_bodies_are_accepted(http: aiohttp.ClientSession) -> None:
    body = b"metadata:\n  name: cm\ndata:\n  a: '1'\n"
    response = await http.post(CONFIGMAPS, data=body, headers={"Content-Type": "application/yaml"})
    assert response.status == 201


async def test_delete_with_finalizers_marks_then_removes(http: aiohttp.ClientSession) -> None:
    await create(http, {**widget("w"), "metadata": {"name": "w", "finalizers": ["x/y"]}})
    marked = await (await http.delete(f"{WIDGETS}/w")).json()
    assert marked["metadata"]["deletionTimestamp"]
    assert marked["metadata"]["generation"] == 2
    assert (await http.get(f"{WIDGETS}/w")).status == 200
    response = await patch(http, f"{WIDGETS}/w", {"metadata": {"finalizers": None}})
    assert response.status == 200
    assert (await http.get(f"{WIDGETS}/w")).status == 404


async def test_no_new_finalizers_while_deleting(http: aiohttp.ClientSession) -> None:
    await create(http, {**widget("w"), "metadata": {"name": "w", "finalizers": ["x/y"]}})
    await http.delete(f"{WIDGETS}/w")
    response = await patch(http, f"{WIDGETS}/w", {"metadata": {"finalizers": ["x/y", "x/z"]}})
    assert response.status == 422
    assert (await response.json())["details"]["causes"][0]["reason"] == "FieldValueForbidden"


async def test_delete_without_finalizers_removes_at_once(http: aiohttp.ClientSession) -> None:
    await create(http, widget("w"))
    response = await http.delete(f"{WIDGETS}/w", json={"propagationPolicy": "Background"})
    assert response.status == 200
    assert (await http.get(f"{WIDGETS}/w")).status == 404


# What follows was found by tests/cluster/test_differential.py on a real kube-apiserver.


async def test_delete_answers_a_status_once_the_object_is_gone(
    http: aiohttp.ClientSession,
) -> None:
    created = await create(http, widget("w"))
    body = await (await http.delete(f"{WIDGETS}/w")).json()
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {
            "name": "w",
            "group": "example.dev",
            "kind": "widgets",
            "uid": created["metadata"]["uid"],
        },
    }
    await create(http, {"metadata": {"name": "c"}}, CONFIGMAPS)
    body = await (await http.delete(f"{CONFIGMAPS}/c")).json()
    assert (body["kind"], body["details"]["kind"]) == ("Status", "configmaps")
    assert "group" not in body["details"]  # the core group is left out, as in errors


async def test_delete_of_a_pod_answers_the_pod(http: aiohttp.ClientSession) -> None:
    pods = "/api/v1/namespaces/default/pods"
    await create(http, {"metadata": {"name": "p"}, "spec": {"containers": []}}, pods)
    body = await (await http.delete(f"{pods}/p")).json()
    assert (body["kind"], body["metadata"]["name"]) == ("Pod", "p")


async def test_the_write_removing_the_last_finalizer_answers_the_last_revision(
    http: aiohttp.ClientSession,
) -> None:
    await create(http, {**widget("w"), "metadata": {"name": "w", "finalizers": ["x/y"]}})
    marked = await (await http.delete(f"{WIDGETS}/w")).json()
    response = await patch(http, f"{WIDGETS}/w", {"metadata": {"finalizers": None}})
    released = await response.json()
    assert released["metadata"]["resourceVersion"] == marked["metadata"]["resourceVersion"]
    assert "finalizers" not in released["metadata"]


async def test_lists_are_shaped_as_a_real_server_shapes_them(
    http: aiohttp.ClientSession,
) -> None:
    await create(http, {"metadata": {"name": "c"}, "data": {}}, CONFIGMAPS)
    await create(http, widget("w"))
    configmaps = await (await http.get(CONFIGMAPS)).json()
    # A built-in list's items are not self-describing; empty data is left out (omitempty).
    assert configmaps["items"][0].keys() == {"metadata"}
    assert configmaps["metadata"].keys() == {"resourceVersion"}
    widgets = await (await http.get(WIDGETS)).json()
    assert (widgets["items"][0]["kind"], widgets["metadata"]["continue"]) == ("Widget", "")


async def test_a_namespace_gets_its_name_label_and_finalizer_and_no_generation(
    http: aiohttp.ClientSession,
) -> None:
    body = await create(http, {"metadata": {"name": "team-a"}}, "/api/v1/namespaces")
    assert body["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team-a"}
    assert body["spec"] == {"finalizers": ["kubernetes"]}
    assert "generation" not in body["metadata"]


async def test_a_resource_version_on_create_is_a_bare_internal_error(
    http: aiohttp.ClientSession,
) -> None:
    response = await http.post(
        WIDGETS, json={**widget("w"), "metadata": {"name": "w", "resourceVersion": "3"}}
    )
    assert response.status == 500
    body = await response.json()
    assert "reason" not in body
    assert body["message"] == "resourceVersion should not be set on objects to be created"


async def test_delete_precondition_mismatch_answers_conflict(
    http: aiohttp.ClientSession,
) -> None:
    await create(http, widget("w"))
    response = await http.delete(f"{WIDGETS}/w", json={"preconditions": {"uid": "other"}})
    assert response.status == 409
    assert (await http.get(f"{WIDGETS}/w")).status == 200


async def test_delete_collection_honours_the_label_selector(http: aiohttp.ClientSession) -> None:
    for name, team in (("a", "red"), ("b", "blue")):
        await create(http, {**widget(name), "metadata": {"name": name, "labels": {"team": team}}})
    before = await (await http.get(WIDGETS)).json()
    deleted = await (await http.delete(WIDGETS, params={"labelSelector": "team=red"})).json()
    listing = await (await http.get(WIDGETS)).json()
    assert [item["metadata"]["name"] for item in listing["items"]] == ["b"]
    # The answer lists what was deleted as it was listed, as kube-apiserver answers.
    assert deleted["items"] == [before["items"][0]]
    assert deleted["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("tier=web", ["a"]),
        ("tier==web", ["a"]),
        ("tier!=web", ["b", "c"]),
        ("tier in (web, db)", ["a", "b"]),
        ("tier notin (web)", ["b", "c"]),
        ("tier", ["a", "b"]),
        ("!tier", ["c"]),
        ("tier,env=prod", ["b"]),
    ],
)
async def test_label_selectors_filter_lists(
    http: aiohttp.ClientSession, selector: str, expected: list[str]
) -> None:
    labels: dict[str, dict[str, str]] = {
        "a": {"tier": "web"},
        "b": {"tier": "db", "env": "prod"},
        "c": {},
    }
    for name, label_set in labels.items():
        await create(http, {**widget(name), "metadata": {"name": name, "labels": label_set}})
    listing = await (await http.get(WIDGETS, params={"labelSelector": selector})).json()
    assert [item["metadata"]["name"] for item in listing["items"]] == expected


async def test_an_unparseable_label_selector_answers_bad_request(
    http: aiohttp.ClientSession,
) -> None:
    response = await http.get(WIDGETS, params={"labelSelector": "a in b"})
    assert response.status == 400


async def test_field_selectors_filter_by_name_and_namespace(http: aiohttp.ClientSession) -> None:
    await create(http, widget("a"))
    await create(http, widget("b"))
    by_name = await (await http.get(WIDGETS, params={"fieldSelector": "metadata.name=b"})).json()
    everywhere = await (
        await http.get(
            "/apis/example.dev/v1/widgets", params={"fieldSelector": "metadata.namespace!=default"}
        )
    ).json()
    assert [item["metadata"]["name"] for item in by_name["items"]] == ["b"]
    assert everywhere["items"] == []


async def test_unsupported_field_selectors_answer_bad_request(
    http: aiohttp.ClientSession,
) -> None:
    response = await http.get(WIDGETS, params={"fieldSelector": "spec.size=1"})
    assert response.status == 400
    assert "field label not supported: spec.size" in (await response.json())["message"]


async def test_version_is_served(http: aiohttp.ClientSession) -> None:
    version = await (await http.get("/version")).json()
    assert (version["major"], version["minor"]) == ("1", "32")


async def test_core_discovery_lists_what_kopf_needs(http: aiohttp.ClientSession) -> None:
    assert (await (await http.get("/api")).json())["versions"] == ["v1"]
    core = await (await http.get("/api/v1")).json()
    names = {entry["name"] for entry in core["resources"]}
    assert core["groupVersion"] == "v1"
    assert {"namespaces", "events", "secrets", "configmaps", "pods", "pods/status"} <= names


async def test_group_discovery_lists_builtin_and_custom_groups(
    http: aiohttp.ClientSession,
) -> None:
    groups = await (await http.get("/apis")).json()
    names = {group["name"] for group in groups["groups"]}
    assert {
        "apps",
        "batch",
        "coordination.k8s.io",
        "events.k8s.io",
        "apiextensions.k8s.io",
        "example.dev",
    } <= names
    batch = await (await http.get("/apis/batch/v1")).json()
    assert "jobs" in {entry["name"] for entry in batch["resources"]}
    group = await (await http.get("/apis/example.dev")).json()
    assert group["preferredVersion"]["groupVersion"] == "example.dev/v1"


async def test_custom_resource_discovery_has_status_and_short_names(
    http: aiohttp.ClientSession,
) -> None:
    resources = (await (await http.get("/apis/example.dev/v1")).json())["resources"]
    by_name = {entry["name"]: entry for entry in resources}
    assert by_name["widgets"]["shortNames"] == ["wd"]
    assert by_name["widgets"]["kind"] == "Widget"
    assert "shortNames" not in by_name["widgets/status"]


async def test_a_crd_created_over_http_is_served_and_established(
    k8s_emulator: Emulator,
) -> None:
    async with aiohttp.ClientSession(base_url=k8s_emulator.url) as http:
        crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
        created = await create(http, WIDGET_CRD, crds)
        conditions = {c["type"]: c["status"] for c in created["status"]["conditions"]}
        assert conditions == {"NamesAccepted": "True", "Established": "True"}
        assert (await http.post(WIDGETS, json=widget("w"))).status == 201


async def test_an_invalid_crd_is_rejected(http: aiohttp.ClientSession) -> None:
    crd = {
        **WIDGET_CRD,
        "metadata": {"name": "gadgets.example.dev"},
        "spec": {**WIDGET_CRD["spec"], "names": {"kind": "Gadget"}},
    }
    response = await http.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crd)
    body = await response.json()
    assert response.status == 422
    assert "spec.names.plural" in [cause["field"] for cause in body["details"]["causes"]]


async def test_deleting_a_crd_stops_serving_its_kind(http: aiohttp.ClientSession) -> None:
    await create(http, widget("w"))
    crd = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.dev"
    assert (await http.delete(crd)).status == 200
    assert (await http.get(WIDGETS)).status == 404
    assert (await http.get("/apis/example.dev/v1")).status == 404


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/namespaces/default/events",
        "/apis/events.k8s.io/v1/namespaces/default/events",
    ],
)
async def test_events_can_be_posted_and_patched(http: aiohttp.ClientSession, url: str) -> None:
    event = {"metadata": {"name": "w.1"}, "reason": "Created", "message": "ok", "count": 1}
    await create(http, event, url)
    response = await patch(http, f"{url}/w.1", {"count": 2})
    assert (await response.json())["count"] == 2


async def test_an_injected_fault_is_answered_and_not_applied(
    emulator: Emulator,
    http: aiohttp.ClientSession,
) -> None:
    await create(http, widget("w"))
    fault = emulator.inject(verb="patch", resource="widgets", subresource="status", status=409)
    response = await patch(http, f"{WIDGETS}/w/status", {"status": {"phase": "Done"}})
    assert response.status == 409
    assert (await response.json())["reason"] == "Conflict"
    assert "status" not in (await (await http.get(f"{WIDGETS}/w")).json())
    assert fault.hits == 1


async def test_an_injected_fault_runs_out_after_its_times(
    emulator: Emulator,
    http: aiohttp.ClientSession,
) -> None:
    emulator.inject(verb="create", resource="widgets.example.dev", status=500, times=2)
    statuses = [(await http.post(WIDGETS, json=widget("w"))).status for _ in range(3)]
    assert statuses == [500, 500, 201]


async def test_an_injected_fault_matches_only_its_subresource(
    emulator: Emulator,
    http: aiohttp.ClientSession,
) -> None:
    await create(http, widget("w"))
    emulator.inject(verb="patch", resource="widgets", subresource="status", status=500)
    assert (await patch(http, f"{WIDGETS}/w", {"spec": {"mode": "slow"}})).status == 200


async def test_an_injected_throttle_carries_retry_after(
    emulator: Emulator,
    http: aiohttp.ClientSession,
) -> None:
    emulator.inject(verb="list", status=429, retry_after=3)
    response = await http.get(WIDGETS)
    assert response.status == 429
    assert response.headers["Retry-After"] == "3"
    assert (await response.json())["details"]["retryAfterSeconds"] == 3


async def test_requests_are_counted_by_verb_and_resource(
    emulator: Emulator,
    http: aiohttp.ClientSession,
) -> None:
    emulator.requests.reset()
    await create(http, widget("w"))
    await patch(http, f"{WIDGETS}/w/status", {"status": {"phase": "Done"}})
    await http.get(WIDGETS)
    assert emulator.requests.count("create", "widgets.example.dev") == 1
    assert emulator.requests.count("patch", "widgets.example.dev/status") == 1
    assert emulator.requests.count("list") == 1
    assert emulator.requests.total == 3
    emulator.requests.reset()
    assert emulator.requests.total == 0


async def test_dry_run_is_refused_rather_than_applied(http: aiohttp.ClientSession) -> None:
    response = await http.post(WIDGETS, json=widget("w"), params={"dryRun": "All"})
    assert response.status == 400
    assert (await http.get(f"{WIDGETS}/w")).status == 404


async def test_an_observer_sees_every_write_as_it_is_stored(
    http: aiohttp.ClientSession, emulator: Emulator
) -> None:
    seen: list[tuple[str, str]] = []
    stop = emulator.observe("widgets", lambda e: seen.append((e.type, e.obj["metadata"]["name"])))

    await create(http, widget("a"))
    assert (await patch(http, f"{WIDGETS}/a", {"metadata": {"labels": {"x": "y"}}})).status == 200
    assert (await http.delete(f"{WIDGETS}/a")).status == 200
    stop()
    await create(http, widget("b"))

    assert seen == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]
    assert emulator.watches("widgets") == 0  # an observer is not a watch


TABLE = {"Accept": "application/json;as=Table;g=meta.k8s.io;v=v1"}


async def test_built_in_tables_have_the_real_servers_columns(http: aiohttp.ClientSession) -> None:
    await create(
        http, {"metadata": {"name": "c"}, "data": {"a": "1"}, "binaryData": {"b": ""}}, CONFIGMAPS
    )
    body = await (await http.get(CONFIGMAPS, headers=TABLE)).json()
    assert [(c["name"], c["type"]) for c in body["columnDefinitions"]] == [
        ("Name", "string"),
        ("Data", "string"),
        ("Age", "string"),
    ]
    assert body["rows"][0]["cells"][:2] == ["c", 2]
    body = await (await http.get("/api/v1/namespaces/default", headers=TABLE)).json()
    assert [c["name"] for c in body["columnDefinitions"]] == ["Name", "Status", "Age"]
    assert body["rows"][0]["cells"][:2] == ["default", "Active"]
    # A custom resource without printer columns: Name and Age as a date.
    await create(http, widget("w"))
    body = await (await http.get(WIDGETS, headers=TABLE)).json()
    assert body["columnDefinitions"][-1]["name"] == "Age"
