"""The `kubesteps run` command: exit codes, messages, the table, and state between runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from kubesteps.cli import main

from .conftest import Calls

ROOT = Path(__file__).resolve().parents[2]


def pipeline(name: str, *steps: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kubesteps.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": name},
        "spec": {"steps": list(steps), **spec},
    }


def delay(name: str, duration: str) -> dict[str, Any]:
    return {"name": name, "action": "delay", "with": {"duration": duration}}


def write(path: Path, *documents: Any) -> Path:
    path.write_text(yaml.safe_dump_all(documents))
    return path


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, ["run", *map(str, args)])


def table_rows(output: str) -> list[list[str]]:
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("PIPELINE"))
    return [line.split() for line in lines[start:]]


def test_all_ready_exits_0_and_prints_transitions_then_the_table(
    calls: Calls, tmp_path: Path
) -> None:
    manifests = write(
        tmp_path / "pipelines.yaml",
        pipeline("first", calls.step("a"), calls.step("b")),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "not-a-pipeline"}},
        pipeline("second", calls.step("c")),
    )

    result = run(manifests, "--state", tmp_path / "state.db")

    assert result.exit_code == 0, result.output
    assert calls.count == 3
    assert "first                a                        Succeeded" in result.output
    rows = table_rows(result.output)
    assert [row[:3] for row in rows] == [
        ["PIPELINE", "READY", "REASON"],
        ["default/first", "True", "Succeeded"],
        ["a", "Succeeded", "attempts=1"],
        ["b", "Succeeded", "attempts=1"],
        ["default/second", "True", "Succeeded"],
        ["c", "Succeeded", "attempts=1"],
    ]


def test_quiet_prints_only_the_table(calls: Calls, tmp_path: Path) -> None:
    manifests = write(tmp_path / "p.yaml", pipeline("p", calls.step("a")))

    result = run(manifests, "--state", tmp_path / "state.db", "--quiet")

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].startswith("PIPELINE")


def test_an_invalid_pipeline_exits_1_naming_the_field(calls: Calls, tmp_path: Path) -> None:
    manifests = write(
        tmp_path / "p.yaml",
        pipeline("ok", calls.step("a")),
        pipeline("bad", delay("pause", "soon")),
    )

    result = run(manifests, "--state", tmp_path / "state.db")

    assert result.exit_code == 1, result.output
    bad = next(line for line in result.output.splitlines() if line.startswith("default/bad"))
    assert bad.split()[1:3] == ["False", "InvalidSpec"]
    assert "spec.steps[0].with.duration: invalid duration 'soon'" in bad
    assert calls.count == 1, "the valid Pipeline still runs"


def test_a_failed_pipeline_exits_1_with_the_steps_message(tmp_path: Path) -> None:
    manifests = write(
        tmp_path / "p.yaml",
        pipeline(
            "doomed",
            {"name": "call", "action": "python", "with": {"function": "tests.local.not_installed"}},
        ),
    )

    result = run(manifests, "--state", tmp_path / "state.db")

    assert result.exit_code == 1, result.output
    assert table_rows(result.output)[1][:5] == ["default/doomed", "False", "Failed", "1", "call"]
    assert "no python action 'tests.local.not_installed' is installed" in result.output


def test_a_pipeline_still_waiting_when_the_budget_runs_out_exits_2(
    calls: Calls, tmp_path: Path
) -> None:
    manifests = write(
        tmp_path / "p.yaml",
        pipeline("done", calls.step("a")),
        pipeline("slow", delay("pause", "1h")),
    )

    result = run(manifests, "--state", tmp_path / "state.db", "--budget", "0.2")

    assert result.exit_code == 2, result.output
    slow = next(row for row in table_rows(result.output) if row[0] == "default/slow")
    assert slow[1:5] == ["False", "Waiting", "1", "pause"]


def test_a_suspended_pipeline_is_not_ready_and_exits_2(calls: Calls, tmp_path: Path) -> None:
    manifests = write(tmp_path / "p.yaml", pipeline("paused", calls.step("a"), suspend=True))

    result = run(manifests, "--state", tmp_path / "state.db")

    assert result.exit_code == 2, result.output
    assert table_rows(result.output)[1][:3] == ["default/paused", "False", "Suspended"]
    assert calls.count == 0


def test_a_failure_outranks_a_wait(tmp_path: Path) -> None:
    manifests = write(
        tmp_path / "p.yaml",
        pipeline("bad", delay("pause", "soon")),
        pipeline("slow", delay("pause", "1h")),
    )

    result = run(manifests, "--state", tmp_path / "state.db", "--budget", "0.2")

    assert result.exit_code == 1, result.output


def test_a_second_run_keeps_the_status_and_reruns_only_after_a_spec_change(
    calls: Calls, tmp_path: Path
) -> None:
    state = tmp_path / "state.db"
    manifests = write(tmp_path / "p.yaml", pipeline("p", calls.step("a", v=1)))
    assert run(manifests, "--state", state).exit_code == 0

    again = run(manifests, "--state", state)

    assert again.exit_code == 0, again.output
    assert calls.count == 1
    assert again.output.startswith("PIPELINE"), "no step ran, so no transition is printed"
    assert table_rows(again.output)[2][:3] == ["a", "Succeeded", "attempts=1"]

    write(manifests, pipeline("p", calls.step("a", v=2)))
    changed = run(manifests, "--state", state)

    assert changed.exit_code == 0, changed.output
    assert calls.count == 2
    assert "p                    a                        Succeeded" in changed.output


def test_the_state_file_defaults_to_a_directory_under_the_working_directory(
    calls: Calls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifests = write(tmp_path / "p.yaml", pipeline("p", calls.step("a")))
    monkeypatch.chdir(tmp_path)

    result = run(manifests)

    assert result.exit_code == 0, result.output
    assert (tmp_path / ".kubesteps" / "state.db").is_file()


def test_a_directory_is_searched_for_yaml_files(calls: Calls, tmp_path: Path) -> None:
    (tmp_path / "more").mkdir()
    write(tmp_path / "a.yaml", pipeline("a", calls.step("x")))
    write(tmp_path / "more" / "b.yml", pipeline("b", calls.step("x")))
    (tmp_path / "notes.txt").write_text("not: [yaml")

    result = run(tmp_path, "--state", tmp_path / "state.db")

    assert result.exit_code == 0, result.output
    assert [row[0] for row in table_rows(result.output) if "/" in row[0]] == [
        "default/a",
        "default/b",
    ]


def test_invalid_yaml_is_refused_naming_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: Pipeline\nmetadata: [\n")

    result = run(broken, "--state", tmp_path / "state.db")

    assert result.exit_code == 1
    assert f"Error: {broken}: not valid YAML" in result.output
    assert isinstance(result.exception, SystemExit), "a clean error, not a traceback"


def test_a_pipeline_given_twice_is_refused_naming_both_files(tmp_path: Path) -> None:
    one = write(tmp_path / "one.yaml", pipeline("p", delay("d", "1s")))
    two = write(
        tmp_path / "two.yaml",
        {**pipeline("p", delay("d", "2s")), "metadata": {"name": "p", "namespace": "default"}},
    )

    result = run(one, two, "--state", tmp_path / "state.db")

    assert result.exit_code == 1
    assert f"Error: {two}: Pipeline default/p is already defined in {one}" in " ".join(
        result.output.split()
    )
    assert not (tmp_path / "state.db").exists(), "nothing runs when the input is wrong"


def test_a_pipeline_without_a_name_is_refused(tmp_path: Path) -> None:
    manifests = write(tmp_path / "p.yaml", {**pipeline("x", delay("d", "1s")), "metadata": {}})

    result = run(manifests, "--state", tmp_path / "state.db")

    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"{manifests}: Pipeline/<no name>: metadata.name: is required"
    ]


def test_files_without_pipelines_are_refused(tmp_path: Path) -> None:
    manifests = write(tmp_path / "p.yaml", {"apiVersion": "v1", "kind": "ConfigMap"})

    result = run(manifests, "--state", tmp_path / "state.db")

    assert result.exit_code == 1
    assert "Error: no Pipeline manifests found" in result.output


@pytest.mark.slow
def test_the_installed_command_applies_and_waits_in_the_embedded_api(tmp_path: Path) -> None:
    command = Path(sys.executable).with_name("kubesteps")

    done = subprocess.run(
        [
            str(command),
            "run",
            str(ROOT / "examples" / "apply-and-wait.yaml"),
            "--state",
            str(tmp_path / "state.db"),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    rows = table_rows(done.stdout)
    assert rows[1][:3] == ["default/apply-and-wait", "True", "Succeeded"]
    assert [row[:2] for row in rows[2:]] == [
        ["settings", "Succeeded"],
        ["settings-visible", "Succeeded"],
    ]


def test_every_pipeline_of_a_file_runs_and_what_is_not_run_is_named(
    calls: Calls, tmp_path: Path
) -> None:
    manifests = write(
        tmp_path / "p.yaml",
        pipeline("first", calls.step("a")),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}},
        pipeline("second", calls.step("b")),
        {"apiVersion": "tekton.dev/v1", "kind": "Pipeline", "metadata": {"name": "theirs"}},
        pipeline("third", calls.step("c")),
    )

    result = run(manifests, "--state", tmp_path / "state.db")

    assert result.exit_code == 0, result.output
    assert calls.count == 3
    assert result.output.splitlines()[:2] == [
        f"ignoring {manifests} ConfigMap/settings: not a Pipeline",
        f"ignoring {manifests} Pipeline/theirs: not a kubesteps Pipeline "
        "(apiVersion tekton.dev/v1)",
    ]
    assert [row[0] for row in table_rows(result.output) if "/" in row[0]] == [
        "default/first",
        "default/second",
        "default/third",
    ]


def test_name_runs_only_the_pipelines_it_names(calls: Calls, tmp_path: Path) -> None:
    manifests = write(
        tmp_path / "p.yaml",
        pipeline("first", calls.step("a")),
        pipeline("second", calls.step("b")),
        pipeline("third", calls.step("c")),
    )

    result = run(
        manifests, "--state", tmp_path / "state.db", "--name", "second", "--name", "default/third"
    )

    assert result.exit_code == 0, result.output
    assert f"ignoring {manifests} Pipeline/first: not named by --name" in result.output
    assert [row[0] for row in table_rows(result.output) if "/" in row[0]] == [
        "default/second",
        "default/third",
    ]
    assert calls.count == 2


def test_a_name_that_names_nothing_is_refused_with_a_suggestion(
    calls: Calls, tmp_path: Path
) -> None:
    manifests = write(tmp_path / "p.yaml", pipeline("release", calls.step("a")))

    result = run(manifests, "--state", tmp_path / "state.db", "--name", "relase")

    assert result.exit_code == 1
    assert (
        "Error: --name relase: no such Pipeline in the files — did you mean 'release'?"
        in result.output
    )
    assert calls.count == 0


def test_outputs_prints_what_each_step_returned(calls: Calls, tmp_path: Path) -> None:
    manifests = write(
        tmp_path / "p.yaml", pipeline("p", calls.step("a"), delay("pause", "10ms"), calls.step("b"))
    )

    result = run(manifests, "--state", tmp_path / "state.db", "--outputs")

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    start = lines.index("OUTPUTS")
    assert [line.split(maxsplit=2) for line in lines[start + 1 :]] == [
        ["default/p", "a", '{"call": 1}'],
        ["default/p", "b", '{"call": 2}'],
    ]


def test_an_invalid_pipeline_is_reported_line_by_line_as_validate_does(
    calls: Calls, tmp_path: Path
) -> None:
    manifests = write(
        tmp_path / "p.yaml",
        pipeline("bad", delay("pause", "soon"), {**delay("x", "1s"), "retires": 1}),
    )

    result = run(manifests, "--state", tmp_path / "state.db")
    checked = CliRunner().invoke(main, ["validate", str(manifests)])

    assert result.exit_code == checked.exit_code == 1
    assert (
        result.output.splitlines()[:2]
        == checked.output.splitlines()
        == [
            f"{manifests}: Pipeline/bad: spec.steps[0].with.duration: invalid duration 'soon': "
            "expected a number at position 0; expected a number followed by a unit (h, m, s or "
            "ms), repeated: e.g. 500ms, 30s, 1h30m [step 'pause']",
            f"{manifests}: Pipeline/bad: spec.steps[1].retires: unknown field 'retires' — did "
            "you mean 'retry'? [step 'x']",
        ]
    )


def test_the_table_names_each_foreach_sub_step_by_its_item(tmp_path: Path) -> None:
    manifests = write(
        tmp_path / "p.yaml",
        pipeline(
            "fan",
            {
                "name": "regions",
                "forEach": {
                    "items": "['eu-west-1', 'us-east-2']",
                    "step": {"action": "delay", "with": {"duration": "10ms"}},
                },
            },
        ),
    )

    result = run(manifests, "--state", tmp_path / "state.db", "--quiet")

    assert result.exit_code == 0, result.output
    assert [row[:3] for row in table_rows(result.output)[3:]] == [
        ["regions-0", "(eu-west-1)", "Succeeded"],
        ["regions-1", "(us-east-2)", "Succeeded"],
    ]


def test_param_options_set_values_parsed_as_yaml(calls: Calls, tmp_path: Path) -> None:
    step = calls.step("greet", who="${ params.who }", n="${ params.count * 2 }")
    manifests = write(
        tmp_path / "p.yaml",
        pipeline(
            "inputs", step, params=[{"name": "who", "value": "ann"}, {"name": "count", "value": 1}]
        ),
    )

    result = run(
        manifests, "--state", tmp_path / "state.db", "--param", "who=bob", "--param", "count=21"
    )

    assert result.exit_code == 0, result.output
    assert calls.args == [{"who": "bob", "n": 42}]


def test_a_param_no_pipeline_declares_is_refused(tmp_path: Path) -> None:
    manifests = write(tmp_path / "p.yaml", pipeline("plain", delay("pause", "1s")))

    result = run(manifests, "--state", tmp_path / "state.db", "--param", "region=eu")

    assert result.exit_code == 1
    assert (
        "--param region: no Pipeline in the files declares a param 'region' (spec.params)"
    ) in result.output


def test_a_param_value_outside_its_enum_is_refused_as_validate_would(tmp_path: Path) -> None:
    manifests = write(
        tmp_path / "p.yaml",
        pipeline(
            "sized",
            delay("pause", "1s"),
            params=[{"name": "size", "value": "small", "enum": ["small", "large"]}],
        ),
    )

    result = run(manifests, "--state", tmp_path / "state.db", "--param", "size=huge")

    assert result.exit_code == 1
    assert 'spec.params[0].value: "huge" is not one of the allowed values' in result.output
