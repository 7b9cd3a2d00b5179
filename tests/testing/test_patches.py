"""The patch formats, as pure functions."""

from __future__ import annotations

import pytest

from kubesteps.testing import ApiError
from kubesteps.testing.patches import json_patch, merge_patch, strategic_merge_patch


def test_merge_patch_merges_objects_and_replaces_lists() -> None:
    target = {"a": {"b": 1, "c": 2}, "l": [1, 2]}
    assert merge_patch(target, {"a": {"b": 3, "c": None}, "l": [3]}) == {"a": {"b": 3}, "l": [3]}


def test_merge_patch_leaves_the_target_untouched() -> None:
    target = {"a": {"b": 1}}
    merge_patch(target, {"a": {"b": 2}})
    assert target == {"a": {"b": 1}}


def test_json_patch_applies_every_operation() -> None:
    doc = {"a": [1, 2], "b": {"c": 1}}
    ops = [
        {"op": "add", "path": "/a/-", "value": 3},
        {"op": "replace", "path": "/b/c", "value": 2},
        {"op": "copy", "from": "/b", "path": "/d"},
        {"op": "move", "from": "/d/c", "path": "/e"},
        {"op": "remove", "path": "/a/0"},
        {"op": "test", "path": "/e", "value": 2},
    ]
    assert json_patch(doc, ops) == {"a": [2, 3], "b": {"c": 2}, "d": {}, "e": 2}


def test_json_patch_escapes_slashes_in_keys() -> None:
    doc = {"metadata": {"annotations": {}}}
    ops = [{"op": "add", "path": "/metadata/annotations/kopf.zalando.org~1last", "value": "x"}]
    assert json_patch(doc, ops)["metadata"]["annotations"] == {"kopf.zalando.org/last": "x"}


def test_json_patch_replace_of_a_missing_member_adds_it_as_kube_apiserver_does() -> None:
    assert json_patch({"a": {}}, [{"op": "replace", "path": "/a/b", "value": 1}]) == {"a": {"b": 1}}


def test_json_patch_test_of_a_missing_member_equals_null() -> None:
    assert json_patch({}, [{"op": "test", "path": "/a", "value": None}]) == {}


@pytest.mark.parametrize(
    ("ops", "reason"),
    [
        ([{"op": "replace", "path": "/missing/x", "value": 1}], "Invalid"),
        ([{"op": "replace", "path": "/a/1", "value": 1}], "Invalid"),
        ([{"op": "remove", "path": "/a/5"}], "Invalid"),
        ([{"op": "test", "path": "/a", "value": []}], "Invalid"),
        ([{"op": "frobnicate", "path": "/a"}], "BadRequest"),
        ([{"op": "add", "path": "a", "value": 1}], "BadRequest"),
        ({"op": "add"}, "BadRequest"),
    ],
)
def test_json_patch_errors_name_their_reason(ops: object, reason: str) -> None:
    with pytest.raises(ApiError) as caught:
        json_patch({"a": [1]}, ops)
    assert caught.value.reason == reason


def test_strategic_merge_patch_deletes_named_items() -> None:
    target = {"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}
    patched = strategic_merge_patch(target, {"env": [{"name": "A", "$patch": "delete"}]})
    assert patched == {"env": [{"name": "B", "value": "2"}]}


def test_strategic_merge_patch_replaces_unkeyed_lists() -> None:
    assert strategic_merge_patch({"args": ["a", "b"]}, {"args": ["c"]}) == {"args": ["c"]}


def test_strategic_merge_patch_replace_directive_replaces_a_map() -> None:
    patched = strategic_merge_patch({"m": {"a": 1, "b": 2}}, {"m": {"$patch": "replace", "c": 3}})
    assert patched == {"m": {"c": 3}}


def test_strategic_merge_patch_deletes_from_primitive_lists() -> None:
    patched = strategic_merge_patch(
        {"finalizers": ["a", "b"]}, {"$deleteFromPrimitiveList/finalizers": ["a"]}
    )
    assert patched == {"finalizers": ["b"]}
