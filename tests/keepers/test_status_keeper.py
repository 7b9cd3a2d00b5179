"""The status keeper (``ConditionsKeeper``) against a fake status store: an object in memory
with a resourceVersion, merge patches, and other writers that get in between.

Conflicts: a write refused with 409 is re-read and replayed on top of what the other writer
left, unless the other writer moved the run on (then the pass must decide again). Size: a
status over its budget is trimmed, the least useful parts first. Records: a keeper for run
N keeps only run N's records (and the successes it is told to carry).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from kubesteps.engine import StepState, StepStatus
from kubesteps.keepers.status_keeper import (
    MAX_STATUS_BYTES,
    ConditionsKeeper,
    StaleStatusError,
)
from kubesteps.keepers.summary import Summary
from kubesteps.kube.api_errors import ApiError

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DONE = Summary(
    ready="True", reason="Succeeded", message="all steps are done", reconciling=False, stalled=False
)


def merge(target: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """An RFC 7386 merge patch, as the API server applies one to ``status``."""
    result = dict(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


class FakeStatusStore:
    """One object. ``before_write`` runs before each patch is applied: another writer."""

    def __init__(self, status: dict[str, Any] | None = None) -> None:
        self.version = 1
        self.body: dict[str, Any] = {
            "metadata": {
                "name": "p",
                "namespace": "default",
                "generation": 1,
                "resourceVersion": "1",
            },
            "status": status or {},
        }
        self.patches: list[Mapping[str, Any]] = []
        self.reads = 0
        self.before_write: list[Callable[[FakeStatusStore], None]] = []

    def write(self, status: Mapping[str, Any]) -> None:
        self.version += 1
        self.body["status"] = merge(self.body["status"], status)
        self.body["metadata"]["resourceVersion"] = str(self.version)

    async def patch(self, status: Mapping[str, Any], resource_version: str | None) -> Any:
        if self.before_write:
            self.before_write.pop(0)(self)
        self.patches.append(copy.deepcopy(dict(status)))
        if resource_version is not None and resource_version != str(self.version):
            raise ApiError(409, "Conflict", "the object has been modified")
        self.write(status)
        return copy.deepcopy(self.body)

    async def read(self) -> Any:
        self.reads += 1
        return copy.deepcopy(self.body)

    async def remove_annotations(self, expected: Mapping[str, str]) -> Any:
        return copy.deepcopy(self.body)


def keeper(store: FakeStatusStore, **kwargs: Any) -> ConditionsKeeper:
    return ConditionsKeeper(
        store, copy.deepcopy(store.body), clock=lambda: NOW, flush_running_after=None, **kwargs
    )


def succeeded(name: str, **fields: Any) -> StepState:
    return StepState(
        name=name,
        status=StepStatus.SUCCEEDED,
        attempts=1,
        started_at=NOW,
        finished_at=NOW,
        **fields,
    )


def steps(store: FakeStatusStore) -> dict[str, dict[str, Any]]:
    return {record["name"]: record for record in store.body["status"].get("steps", [])}


async def test_a_write_refused_by_a_conflict_is_replayed_on_top_of_the_other_writers_change() -> (
    None
):
    store = FakeStatusStore()
    store.before_write.append(lambda s: s.write({"observedBy": "someone else"}))
    kept = keeper(store)
    await kept.set_step_state(succeeded("a"))

    await kept.commit(DONE)

    assert len(store.patches) == 2, "one refused write, then its replay"
    assert store.reads == 1
    assert store.body["status"]["observedBy"] == "someone else"
    assert steps(store)["a"]["phase"] == "Succeeded"
    assert kept.resource_version == str(store.version)


async def test_a_conflict_with_a_writer_that_moved_the_run_on_is_not_written_over() -> None:
    store = FakeStatusStore({"run": {"number": 1, "id": "p-1"}})
    store.before_write.append(lambda s: s.write({"run": {"number": 2, "id": "p-2"}}))
    kept = keeper(store)
    await kept.set_step_state(succeeded("a"))

    with pytest.raises(StaleStatusError, match="moved on while this pass worked"):
        await kept.commit(DONE)

    assert len(store.patches) == 1
    assert store.body["status"]["run"]["number"] == 2
    assert "steps" not in store.body["status"]


async def test_conflicts_past_the_attempts_give_the_409_to_the_caller() -> None:
    store = FakeStatusStore()
    store.before_write.extend(
        [lambda s, n=n: s.write({"observedBy": f"writer {n}"}) for n in range(3)]
    )
    kept = keeper(store, conflict_attempts=3)
    await kept.set_step_state(succeeded("a"))

    with pytest.raises(ApiError) as refused:
        await kept.commit(DONE)

    assert refused.value.status == 409
    assert len(store.patches) == 3
    assert "steps" not in store.body["status"]


async def test_an_unchanged_status_is_not_written_again() -> None:
    store = FakeStatusStore()
    kept = keeper(store)
    await kept.set_step_state(succeeded("a"))
    await kept.commit(DONE)

    again = keeper(store)
    await again.commit(DONE)

    assert len(store.patches) == 1


async def test_a_status_over_its_budget_loses_the_largest_outputs_first_and_keeps_the_phases() -> (
    None
):
    store = FakeStatusStore()
    kept = keeper(store)
    for n in range(200):  # 100 outputs of 7 KB: 700 KB, over the 512 KiB budget
        size = 7000 if n % 2 else 100  # half the steps return big outputs
        await kept.set_step_state(succeeded(f"s{n}", outputs={"blob": "x" * size}))

    await kept.commit(DONE)

    written = steps(store)
    assert len(store.body["status"]["steps"]) == 200
    assert len(str(store.body["status"])) < MAX_STATUS_BYTES * 1.05
    assert all(record["phase"] == "Succeeded" for record in written.values())
    dropped = [name for name, r in written.items() if r["outputs"] == {"outputsDropped": True}]
    assert dropped, "nothing was trimmed"
    assert all(int(name[1:]) % 2 for name in dropped), "a small output went before big ones"
    assert written["s0"]["outputs"] == {"blob": "x" * 100}


async def test_records_of_an_earlier_run_are_pruned_and_carried_successes_kept() -> None:
    store = FakeStatusStore(
        {
            "steps": [
                {"name": "old-ok", "phase": "Succeeded", "run": 1, "attempts": 1},
                {"name": "old-failed", "phase": "Failed", "run": 1, "attempts": 3},
                {"name": "carried", "phase": "Succeeded", "run": 1, "attempts": 1},
                {"name": "carried-failed", "phase": "Failed", "run": 1, "attempts": 1},
            ]
        }
    )
    kept = keeper(store, run=2, carry=frozenset({"carried", "carried-failed"}))

    assert await kept.get_step_state("old-ok") is None
    assert await kept.get_step_state("carried-failed") is None
    carried = await kept.get_step_state("carried")
    assert carried is not None
    assert carried.status is StepStatus.SUCCEEDED

    await kept.set_step_state(succeeded("new"))
    await kept.commit(DONE)

    written = steps(store)
    assert set(written) == {"carried", "new"}
    assert (written["carried"]["run"], written["carried"]["fromRun"]) == (2, 1)
    assert written["new"]["run"] == 2


async def test_a_keeper_that_cannot_read_the_spec_keeps_every_record() -> None:
    store = FakeStatusStore(
        {
            "steps": [
                {"name": "a", "phase": "Succeeded", "run": 1, "attempts": 1},
                {"name": "b", "phase": "Failed", "run": 3, "attempts": 2},
            ]
        }
    )
    kept = keeper(store, run=None)

    assert {name for name in ("a", "b") if await kept.get_step_state(name)} == {"a", "b"}
