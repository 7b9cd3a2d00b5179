"""Every example Pipeline is valid, both for validate() and for the CRD schema."""

from __future__ import annotations

import pathlib

import pytest
import yaml

from kubesteps.plan.validate import templates_in, validate, validate_template

from .crd_schema import schema_errors

EXAMPLES = sorted((pathlib.Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


def test_the_examples_are_there() -> None:
    names = {path.name for path in EXAMPLES}
    assert {
        "hello.yaml",
        "parallel.yaml",
        "approval.yaml",
        "apply-and-wait.yaml",
        "job.yaml",
        "http.yaml",
    } <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_an_example_says_what_it_shows_and_where_it_runs(path: pathlib.Path) -> None:
    header = path.read_text().split("apiVersion:", 1)[0]

    assert "Shows:" in header
    assert "Needs a cluster:" in header


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_an_example_validates(path: pathlib.Path) -> None:
    for manifest in yaml.safe_load_all(path.read_text()):
        if manifest["kind"] == "PipelineTemplate":
            checked = validate_template(manifest)
            assert not isinstance(checked, list), [str(error) for error in checked]
            continue
        templates, _ = templates_in(list(yaml.safe_load_all(path.read_text())))
        result = validate(manifest, {name: t for (_, name), t in templates.items()} or None)
        assert not isinstance(result, list), [str(error) for error in result]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_an_example_passes_the_crd_schema(path: pathlib.Path) -> None:
    for manifest in yaml.safe_load_all(path.read_text()):
        assert schema_errors(manifest) == []


LOCAL = [
    path
    for path in EXAMPLES
    if "Needs a cluster: no" in path.read_text() and "approval" not in path.name
]


@pytest.mark.slow  # waits seconds of real time (backoffs, leases, whole runs)
@pytest.mark.parametrize("path", LOCAL, ids=lambda path: path.name)
def test_an_example_that_needs_no_cluster_runs_to_ready_with_kubesteps_run(
    path: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    from click.testing import CliRunner

    from kubesteps.cli import main

    result = CliRunner().invoke(
        main, ["run", str(path), "--state", str(tmp_path / "s.db"), "--quiet", "--budget", "30"]
    )

    assert result.exit_code == 0, result.output


def test_the_authoring_examples_are_among_those_run() -> None:
    assert {"params-and-switch.yaml", "finally.yaml", "schedule.yaml"} <= {
        path.name for path in LOCAL
    }
