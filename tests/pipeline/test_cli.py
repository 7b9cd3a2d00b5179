"""`kubesteps crd` and `kubesteps validate`."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest
import yaml
from click.testing import CliRunner

from kubesteps import yamlio
from kubesteps.cli import main
from kubesteps.pipeline.crd import crd_yaml

from .malformed import delay, pipeline


def _write(path: pathlib.Path, *documents: object) -> pathlib.Path:
    path.write_text(yaml.safe_dump_all(documents))
    return path


def test_crd_prints_the_generated_crd() -> None:
    result = CliRunner().invoke(main, ["crd"])

    assert result.exit_code == 0
    assert result.output == crd_yaml()


def test_validate_reports_ok_per_pipeline(tmp_path: pathlib.Path) -> None:
    second = pipeline(delay("first"))
    second["metadata"]["name"] = "second"
    path = _write(tmp_path / "two.yaml", pipeline(delay("first")), second)

    result = CliRunner().invoke(main, ["validate", str(path)])

    assert result.exit_code == 0
    assert result.output.splitlines() == [f"OK {path} demo", f"OK {path} second"]


def test_validate_prints_each_error_and_exits_1(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path / "bad.yaml", pipeline(delay("Bad"), delay("x", timeout="1d")))

    result = CliRunner().invoke(main, ["validate", str(path)])

    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{path}: Pipeline/demo: spec.steps[0].name: must be a DNS-1123")
    assert lines[1].startswith(f"{path}: Pipeline/demo: spec.steps[1].timeout: ")


def test_validate_skips_other_kinds(tmp_path: pathlib.Path) -> None:
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    path = _write(tmp_path / "mixed.yaml", config_map, pipeline(delay("first")))

    result = CliRunner().invoke(main, ["validate", str(path)])

    assert result.exit_code == 0
    assert result.output.splitlines() == [
        f"SKIP {path} ConfigMap/c: not a Pipeline",
        f"OK {path} demo",
    ]


def test_validate_walks_directories(tmp_path: pathlib.Path) -> None:
    (tmp_path / "nested").mkdir()
    good = _write(tmp_path / "a.yaml", pipeline(delay("first")))
    bad = _write(tmp_path / "nested" / "b.yml", pipeline({"name": "x"}))
    (tmp_path / "notes.txt").write_text("not yaml at all: [")

    result = CliRunner().invoke(main, ["validate", str(tmp_path)])

    assert result.exit_code == 1
    assert result.output.splitlines()[0] == f"OK {good} demo"
    assert result.output.splitlines()[1].startswith(f"{bad}: Pipeline/demo: spec.steps[0]: ")


def test_validate_reports_broken_yaml(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("spec: [unclosed\n")

    result = CliRunner().invoke(main, ["validate", str(path)])

    assert result.exit_code == 1
    assert result.output.startswith(f"{path}: not valid YAML:")
    # libyaml's C loader keeps the place of the problem: file, line and column (1-based).
    assert f'in "{path}", line 2, column 1' in result.output


def test_yaml_is_read_with_libyaml_and_errors_keep_their_place() -> None:
    assert yamlio.C_LOADER  # PyYAML's wheels ship libyaml; the pure loader is ~10x slower
    assert yamlio.load_all("a: 1\n---\nb: [2, 3]\n") == [{"a": 1}, {"b": [2, 3]}]
    with pytest.raises(yamlio.YAMLError) as caught:
        yamlio.load("a: 1\nb: [2,\n  c: d: e\n")
    problem = caught.value.problem_mark  # type: ignore[attr-defined]
    assert (problem.line + 1, problem.column + 1) == (3, 7)
    assert "line 3, column 7" in str(caught.value)


@pytest.mark.slow
def test_help_imports_no_opentelemetry() -> None:
    probe = (
        "import sys\nfrom kubesteps.cli import main\n"
        "try:\n    main(['--help'], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry', "
        "'kubesteps.engine'))))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "Usage: " in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_validate_needs_existing_files() -> None:
    result = CliRunner().invoke(main, ["validate", "/nonexistent/pipeline.yaml"])

    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_the_examples_validate_from_the_command_line() -> None:
    examples = pathlib.Path(__file__).resolve().parents[2] / "examples"

    result = CliRunner().invoke(main, ["validate", *map(str, sorted(examples.glob("*.yaml")))])

    assert result.exit_code == 0, result.output
    assert all(line.startswith("OK ") for line in result.output.splitlines())


def test_validate_names_the_step_of_each_problem_and_the_file_of_bad_yaml(
    tmp_path: pathlib.Path,
) -> None:
    good = tmp_path / "steps.yaml"
    good.write_text(
        "apiVersion: kubesteps.dev/v1alpha1\nkind: Pipeline\n"
        "metadata: {name: demo}\nspec:\n  steps:\n"
        "    - name: fetch\n      action: pyhton\n      with: {}\n"
    )
    broken = tmp_path / "broken.yaml"
    broken.write_text("a: [b\n")

    result = CliRunner().invoke(main, ["validate", str(good), str(broken)])

    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].endswith("[step 'fetch']")
    assert "unknown action 'pyhton'" in lines[0]
    assert f'in "{broken}", line' in result.output


def test_a_kind_one_edit_away_from_pipeline_is_an_error_not_a_skip(
    tmp_path: pathlib.Path,
) -> None:
    typo = pipeline(delay("first"))
    typo["kind"] = "Pipline"
    path = _write(tmp_path / "typo.yaml", typo)

    result = CliRunner().invoke(main, ["validate", str(path)])

    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"{path}: Pipeline/demo: kind: must be 'Pipeline'; got a string ('Pipline') — did you "
        "mean 'Pipeline'?"
    ]


def test_a_pipeline_of_another_group_is_skipped_saying_whose_it_is(
    tmp_path: pathlib.Path,
) -> None:
    tekton = {"apiVersion": "tekton.dev/v1", "kind": "Pipeline", "metadata": {"name": "t"}}
    path = _write(tmp_path / "tekton.yaml", tekton)

    result = CliRunner().invoke(main, ["validate", str(path)])

    assert result.exit_code == 0
    assert result.output.splitlines() == [
        f"SKIP {path} Pipeline/t: not a kubesteps Pipeline (apiVersion tekton.dev/v1)"
    ]


def test_validate_reports_every_problem_at_once_in_field_order(tmp_path: pathlib.Path) -> None:
    path = _write(
        tmp_path / "bad.yaml",
        pipeline(
            delay("b", when=["steps.a.phase == 'Succeeded'"]),
            {
                "name": "a",
                "action": "waitFor",
                "with": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": "x",
                    "jsonPath": "{.a[",
                    "value": "1",
                },
            },
            suspend="no",
        ),
    )

    result = CliRunner().invoke(main, ["validate", str(path)])

    assert result.exit_code == 1
    assert [line.split(": ")[2] for line in result.output.splitlines()] == [
        "spec.steps[1].with.jsonPath",
        "spec.suspend",
    ]


def test_the_validate_example_of_the_spec_reference_prints_what_it_shows(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import re

    doc = (pathlib.Path(__file__).resolve().parents[2] / "docs" / "pipeline-spec.md").read_text()
    manifest = next(
        b for b in re.findall(r"```yaml\n(.*?)```", doc, flags=re.S) if "kind: Pipline" in b
    )
    shown = re.search(r"prints every problem at once.*?```text\n(.*?)```", doc, flags=re.S)
    assert shown is not None
    (tmp_path / "demo.yaml").write_text(manifest)
    monkeypatch.chdir(tmp_path)

    result = CliRunner().invoke(main, ["validate", "demo.yaml"])

    assert result.exit_code == 1
    assert result.output.splitlines() == shown.group(1).splitlines()


def _uses(template: str) -> dict[str, object]:
    return pipeline({"name": "t", "uses": {"template": template}})


TEMPLATE = {
    "apiVersion": "kubesteps.dev/v1alpha1",
    "kind": "PipelineTemplate",
    "metadata": {"name": "steps", "namespace": "default"},
    "spec": {"steps": [delay("one")]},
}


def test_validate_takes_templates_from_the_same_file(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path / "both.yaml", TEMPLATE, _uses("steps"))

    result = CliRunner().invoke(main, ["validate", str(path)])

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [f"OK {path} PipelineTemplate/steps", f"OK {path} demo"]


def test_validate_takes_templates_from_a_directory(tmp_path: pathlib.Path) -> None:
    (tmp_path / "templates").mkdir()
    _write(tmp_path / "templates" / "t.yaml", TEMPLATE)
    path = _write(tmp_path / "p.yaml", _uses("step"))

    result = CliRunner().invoke(
        main, ["validate", str(path), "--templates", str(tmp_path / "templates")]
    )

    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"{path}: Pipeline/demo: spec.steps[0].uses.template: no PipelineTemplate 'step' in "
        "namespace 'default' (there are: steps) — did you mean 'steps'? [step 't']"
    ]


def test_validate_says_when_it_cannot_read_the_templates(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path / "p.yaml", _uses("steps"))

    result = CliRunner().invoke(main, ["validate", str(path)])

    assert result.exit_code == 1
    assert "which cannot be read here" in result.output


def test_run_runs_a_template_from_the_same_file(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path / "both.yaml", TEMPLATE, _uses("steps"))

    result = CliRunner().invoke(
        main, ["run", str(path), "--state", str(tmp_path / "s.db"), "--budget", "20"]
    )

    assert result.exit_code == 0, result.output
    assert "t-one" in result.output


def test_crd_prints_the_template_crd() -> None:
    result = CliRunner().invoke(main, ["crd", "--kind", "PipelineTemplate"])

    assert result.exit_code == 0
    assert yaml.safe_load(result.output)["spec"]["names"]["kind"] == "PipelineTemplate"
