"""``json_diff``: the JSON patch (RFC 6902) between two documents. Applied to the first by
the emulator's patch code (the same the API server's semantics are tested against), it
gives the second; it is never larger than replacing the value whole."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kubesteps.kube.json_diff import json_diff, pointer, size
from kubesteps.testing.patches import json_patch

keys = st.sampled_from(["a", "b", "phase", "x/y", "m~n", "", "0"])
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(allow_nan=False, width=16)
    | st.text(max_size=4)
)
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=25,
)


@settings(max_examples=100, deadline=None)
@given(
    old=st.dictionaries(keys, documents, max_size=5),
    new=st.dictionaries(keys, documents, max_size=5),
)
def test_the_diff_applied_to_the_old_document_gives_the_new_one(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    before = copy.deepcopy(old)
    operations = json_diff(old, new, "/status")

    patched = json_patch({"status": old}, operations)

    assert patched == {"status": new}
    assert json.dumps(patched, sort_keys=True) == json.dumps({"status": new}, sort_keys=True)
    assert old == before, "the diff does not change its input"
    assert size(operations) <= size([{"op": "replace", "path": "/status", "value": new}])


@given(document=documents)
def test_a_document_has_no_diff_with_itself(document: Any) -> None:
    assert json_diff(document, copy.deepcopy(document), "/status") == []


def test_one_changed_list_entry_is_one_small_operation() -> None:
    records = [
        {
            "name": f"step-{i}",
            "phase": "Succeeded",
            "message": "completed",
            "startedAt": "2026-03-01T12:00:00Z",
        }
        for i in range(50)
    ]
    changed = copy.deepcopy(records)
    changed[30]["phase"] = "Failed"
    changed.append({"name": "step-50", "phase": "Running"})

    operations = json_diff({"steps": records}, {"steps": changed}, "/status")

    assert operations == [
        {"op": "replace", "path": "/status/steps/30/phase", "value": "Failed"},
        {"op": "add", "path": "/status/steps/-", "value": {"name": "step-50", "phase": "Running"}},
    ]


def test_a_shorter_list_loses_entries_from_its_end_first() -> None:
    entries = [{"name": f"a step with a long name {i}", "phase": "Succeeded"} for i in range(4)]

    operations = json_diff({"l": entries}, {"l": entries[:2]}, "")

    assert operations == [{"op": "remove", "path": "/l/3"}, {"op": "remove", "path": "/l/2"}]


def test_a_value_is_replaced_whole_where_that_is_smaller() -> None:
    assert json_diff({"l": [1, 2, 3, 4]}, {"l": [1, 2]}, "") == [
        {"op": "replace", "path": "/l", "value": [1, 2]}
    ]


def test_true_and_one_are_different_values() -> None:
    assert json_diff({"a": 1}, {"a": True}, "") == [{"op": "replace", "path": "/a", "value": True}]
    assert json_diff({"a": [{"b": 1}]}, {"a": [{"b": True}]}, "") == [
        {"op": "replace", "path": "/a/0/b", "value": True}
    ]
    assert json_diff({"a": 1}, {"a": 1.0}, "") == []


def test_pointers_escape_slash_and_tilde() -> None:
    assert pointer("a/b", "c~d", 3) == "/a~1b/c~0d/3"
    assert json_diff({"k/1": 1}, {}, "/status") == [{"op": "remove", "path": "/status/k~11"}]
