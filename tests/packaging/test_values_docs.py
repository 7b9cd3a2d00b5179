"""docs/install.md documents the chart: its sections, and a values table that is never stale."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import jsonschema
import pytest
import yaml


@pytest.fixture(scope="module")
def generator(chart_dir: Path) -> ModuleType:
    """charts/kubesteps/gen_values_table.py, which is a script rather than a package module."""
    name = "kubesteps_chart_gen_values_table"
    spec = importlib.util.spec_from_file_location(name, chart_dir / "gen_values_table.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Dataclasses look their module up in sys.modules while the module executes.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_values_table_in_install_docs_is_current(generator: ModuleType) -> None:
    assert generator.DOC_FILE.read_text() == generator.expected_document(), (
        f"the configuration table in docs/install.md is stale; regenerate it with "
        f"`{generator.REGENERATE}`"
    )


def test_values_table_in_the_readme_is_current(generator: ModuleType) -> None:
    assert generator.README_FILE.read_text() == generator.expected_document(
        generator.README_FILE
    ), f"the configuration table in README.md is stale; regenerate it with `{generator.REGENERATE}`"


@pytest.mark.parametrize(
    "heading", ["## Install on a cluster", "## Upgrade", "## Uninstall", "## Configuration"]
)
def test_the_readme_has_the_install_section(generator: ModuleType, heading: str) -> None:
    assert heading in generator.README_FILE.read_text().splitlines()


def test_values_table_lists_every_setting_with_its_default(generator: ModuleType) -> None:
    document = generator.DOC_FILE.read_text()
    assert "| `replicaCount` | `1` | Number of operator pods." in document
    assert (
        "| `rbac.extraRules` | `[]` | Extra PolicyRules for the operator: grant what your "
        "Pipelines apply/wait for" in document
    )
    assert '| `leaderElection.leaseName` | `"kubesteps-operator"` |' in document


@pytest.mark.parametrize(
    "heading",
    [
        "## Install on a cluster",
        "## Upgrade",
        "## Uninstall",
        "## High availability",
        "## Configuration",
        "## What is tested, and how",
    ],
)
def test_install_docs_have_the_section(generator: ModuleType, heading: str) -> None:
    assert heading in generator.DOC_FILE.read_text().splitlines()


def test_install_docs_show_the_crd_step_before_helm_upgrade(generator: ModuleType) -> None:
    document = generator.DOC_FILE.read_text()
    upgrade = document[document.index("## Upgrade") : document.index("## Uninstall")]
    assert upgrade.index("kubectl apply -f charts/kubesteps/crds/") < upgrade.index("helm upgrade")


def test_a_commented_key_is_one_row_even_when_it_is_a_mapping(generator: ModuleType) -> None:
    text = (
        "# How big the pod is.\n"
        "resources:\n"
        "  requests:\n"
        "    cpu: 10m\n"
        "section:\n"
        "  # A nested setting,\n"
        "  # described on two lines.\n"
        "  nested: [a]\n"
    )
    rows = generator.collect_rows(text)
    assert [(row.key, row.default, row.description) for row in rows] == [
        ("resources", {"requests": {"cpu": "10m"}}, "How big the pod is."),
        ("section.nested", ["a"], "A nested setting, described on two lines."),
    ]
    assert generator.render_table(rows).splitlines()[2] == (
        '| `resources` | `{"requests": {"cpu": "10m"}}` | How big the pod is. |'
    )


def test_an_undocumented_setting_is_refused(generator: ModuleType) -> None:
    text = "# Documented.\nfirst: 1\n\n# Detached by the blank line.\n\nsecond: 2\n"
    with pytest.raises(generator.ValuesDocError, match=r"line 6: `second` has no description"):
        generator.collect_rows(text)


def test_missing_markers_are_reported(generator: ModuleType) -> None:
    with pytest.raises(generator.ValuesDocError, match="needs the markers"):
        generator.splice("# Install\nno table here\n", "| table |")


def test_default_values_satisfy_the_values_schema(chart_dir: Path) -> None:
    schema = json.loads((chart_dir / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    values = yaml.safe_load((chart_dir / "values.yaml").read_text())
    assert list(jsonschema.Draft7Validator(schema).iter_errors(values)) == []
