"""kubesteps plan: what a pass would do, for the spec and the status, doing nothing."""

from __future__ import annotations

import copy
import hashlib
import json
import pathlib
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from kubesteps.cli import main
from kubesteps.plan.dry_run import RunPlan, StepPlan, plan_run
from kubesteps.plan.validate import SpecError

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def manifest(steps: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kubesteps.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "shop", "namespace": "default"},
        "spec": {"steps": steps, **spec},
    }


def greet(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "action": "python",
        "with": {"function": "kubesteps.examples.greet", "args": {}},
        **extra,
    }


def planned(body: dict[str, Any], status: dict[str, Any] | None = None) -> RunPlan:
    result = plan_run(body, status=status, now=NOW)
    assert isinstance(result, RunPlan), result
    return result


def verdicts(plan: RunPlan) -> dict[str, tuple[str, str]]:
    return {s.name: (s.verdict, s.detail) for s in plan.steps}


def test_a_new_pipeline_runs_its_steps_and_skips_by_the_when_that_decided_it() -> None:
    body = manifest(
        [
            greet("build"),
            greet("eu-only", when=["true", "params.region == 'eu'"]),
            greet("after-build", when=["steps.build.outputs.who == 'world'"]),
        ],
        params=[{"name": "region", "value": "us"}],
    )

    plan = planned(body)

    assert plan.headline == "no run yet: run 1 would start"
    found = verdicts(plan)
    assert found["build"] == ("run", "action python")
    assert found["eu-only"] == ("skip", "when[1] `params.region == 'eu'` is false: skipped")
    # It reads an output no step gave yet: only the run can tell.
    assert found["after-build"][0] == "undecided"
    assert found["after-build"][1].startswith(
        "when[0] `steps.build.outputs.who == 'world'` is decided when the step is reached"
    )


def test_a_switch_names_the_branch_taken_and_a_for_each_its_items() -> None:
    body = manifest(
        [
            {
                "name": "deploy",
                "switch": {
                    "steps": [
                        greet("to-eu", when=["params.region == 'eu'"]),
                        greet("to-us", when=["params.region == 'us'"]),
                        greet("anywhere"),
                    ]
                },
            },
            {
                "name": "check",
                "forEach": {
                    "items": "params.zones",
                    "step": {"action": "python", "with": {"function": "kubesteps.examples.greet"}},
                },
            },
        ],
        params=[{"name": "region", "value": "us"}, {"name": "zones", "value": ["a", "b"]}],
    )

    plan = planned(body)

    assert [(s.name, s.verdict, s.depth) for s in plan.steps] == [
        ("deploy", "run", 0),
        ("to-eu", "skip", 1),
        ("to-us", "run", 1),
        ("anywhere", "skip", 1),
        ("check", "run", 0),
        ("check-0", "run", 1),
        ("check-1", "run", 1),
    ]
    found = verdicts(plan)
    assert found["to-eu"][1] == "not taken: its when[0] `params.region == 'eu'` is false"
    assert found["anywhere"][1] == "not taken: branch 'to-us' is taken"
    assert found["check-1"][1] == "item b; action python"


def test_the_status_says_what_is_done_what_waits_and_until_when() -> None:
    body = manifest(
        [
            greet("build"),
            {"name": "soak", "action": "delay", "with": {"duration": "1h"}},
            greet("release"),
        ]
    )
    spec_hash = _spec_hash(body)
    status = {
        "run": {"number": 2, "id": "shop-2", "phase": "Running", "specHash": spec_hash},
        "steps": [
            {"name": "build", "phase": "Succeeded", "run": 2, "outputs": {"who": "x"}},
            {
                "name": "soak",
                "phase": "Waiting",
                "run": 2,
                "message": "delaying for 1h",
                "nextRunAt": "2026-03-01T12:40:00Z",
            },
        ],
    }

    plan = planned(body, status)

    assert plan.headline == "run 2 (Running)"
    assert [(s.name, s.verdict) for s in plan.steps] == [
        ("build", "done"),
        ("soak", "wait"),
        ("release", "run"),
    ]
    assert plan.steps[1].until == datetime(2026, 3, 1, 12, 40, tzinfo=UTC)
    assert (
        "soak                           wait       until 2026-03-01T12:40:00Z: delaying "
        "for 1h" in plan.render()
    )


def test_a_changed_work_starts_a_new_run_and_a_throttled_step_waits_for_its_interval() -> None:
    body = manifest([greet("report", throttle={"interval": "1h"}), greet("notify")])
    status = {
        "run": {"number": 4, "id": "shop-4", "phase": "Succeeded", "specHash": "old"},
        "steps": [
            {"name": "report", "phase": "Succeeded", "run": 4},
            {"name": "notify", "phase": "Succeeded", "run": 4},
        ],
        "lastRuns": {"report": "2026-03-01T11:30:00+00:00"},
    }

    plan = planned(body, status)

    assert plan.headline == "the work changed since run 4: run 5 would start"
    report, notify = plan.steps
    assert (report.verdict, report.until) == ("throttled", datetime(2026, 3, 1, 12, 30, tzinfo=UTC))
    assert report.detail == "ran at 2026-03-01T11:30:00Z; at most once per 1h"
    assert notify.verdict == "run"  # the old run's success does not count for the new one


def test_a_failed_run_says_what_would_run_again_on_a_retry() -> None:
    body = manifest([greet("build"), greet("test")])
    status = {
        "run": {"number": 1, "id": "shop-1", "phase": "Failed", "specHash": _spec_hash(body)},
        "steps": [
            {"name": "build", "phase": "Succeeded", "run": 1},
            {"name": "test", "phase": "Failed", "run": 1, "message": "3 tests failed"},
        ],
    }

    plan = planned(body, status)

    assert plan.notes[0].startswith("nothing runs until a retry (kubesteps.dev/retry)")
    assert verdicts(plan)["test"] == ("failed", "3 tests failed")


def test_planning_changes_nothing_it_was_given() -> None:
    body = manifest([greet("build", when=["params.on"])], params=[{"name": "on", "value": True}])
    status = {"run": {"number": 1, "phase": "Running", "specHash": "x"}, "steps": []}
    before = copy.deepcopy((body, status))

    planned(body, status)

    assert (body, status) == before


def test_an_invalid_pipeline_gets_validates_errors() -> None:
    result = plan_run(manifest([{"name": "x", "action": "delay", "with": {}}]), now=NOW)

    assert isinstance(result, list)
    assert all(isinstance(e, SpecError) for e in result)
    assert str(result[0]).startswith("spec.steps[0].with: give either duration")


@pytest.mark.slow  # waits seconds of real time (backoffs, leases, whole runs)
def test_the_cli_plans_from_the_state_kubesteps_run_left_and_writes_nothing(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "p.yaml"
    body = manifest(
        [
            greet("build"),
            {"name": "soak", "action": "delay", "with": {"duration": "1h"}},
            greet("release"),
        ]
    )
    path.write_text(yaml.safe_dump(body))
    state = tmp_path / "state.db"
    ran = CliRunner().invoke(
        main, ["run", str(path), "--state", str(state), "--quiet", "--budget", "3"]
    )
    assert ran.exit_code == 2, ran.output  # still waiting
    files = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in tmp_path.iterdir()}

    result = CliRunner().invoke(main, ["plan", str(path), "--state", str(state), "-o", "json"])

    assert result.exit_code == 0, result.output
    (shown,) = json.loads(result.output)
    assert shown["headline"] == "run 1 (Running)"
    assert [(s["name"], s["verdict"]) for s in shown["steps"]] == [
        ("build", "done"),
        ("soak", "wait"),
        ("release", "run"),
    ]
    assert shown["steps"][1]["detail"].startswith("delaying for 1h")
    assert {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in tmp_path.iterdir()} == files


def test_the_cli_reports_an_invalid_pipeline_and_exits_1(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(manifest([{"name": "x", "action": "delay", "with": {}}])))

    result = CliRunner().invoke(main, ["plan", str(path)])

    assert result.exit_code == 1
    assert f"{path}: Pipeline/shop: spec.steps[0].with: give either duration" in result.output


def test_a_step_plan_renders_its_time_with_its_reason() -> None:
    step = StepPlan("soak", "wait", "delaying", datetime(2026, 3, 1, tzinfo=UTC))
    assert step.to_dict() == {
        "name": "soak",
        "verdict": "wait",
        "depth": 0,
        "detail": "delaying",
        "until": "2026-03-01T00:00:00Z",
    }


def _spec_hash(body: dict[str, Any]) -> str:
    from kubesteps.plan.validate import prepare

    prepared = prepare(body)
    assert not isinstance(prepared, list)
    return prepared.plan.spec_hash
