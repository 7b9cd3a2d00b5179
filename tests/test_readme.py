"""The README's examples are the ones CI runs: no block can drift from working code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from kubesteps.pipeline.model import Pipeline
from kubesteps.plan.validate import validate

from . import console

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_the_readme_starts_with_the_two_commands() -> None:
    first = blocks("sh")[0]
    assert first.splitlines()[0].startswith("make demo")
    assert first.splitlines()[1].startswith("make test")


def test_the_pipeline_in_the_readme_is_the_hello_example_and_valid() -> None:
    (shown,) = [b for b in blocks("yaml") if "kind: Pipeline" in b]
    example = yaml.safe_load((ROOT / "examples" / "hello.yaml").read_text())
    assert yaml.safe_load(shown) == example
    assert isinstance(validate(example), Pipeline)


def test_every_python_block_is_an_excerpt_of_an_example_ci_runs() -> None:
    sources = [p.read_text() for p in (ROOT / "examples" / "library").glob("*.py")]
    python = blocks("python")
    assert python
    assert [b for b in python if not any(b in source for source in sources)] == []


def test_every_linked_document_exists() -> None:
    links = re.findall(r"\]\(((?:docs|examples)/[^)#]+)\)", README)
    assert links
    assert [link for link in links if not (ROOT / link).exists()] == []


@pytest.mark.slow
def test_every_console_block_runs_as_pasted_and_prints_what_it_shows(tmp_path: Path) -> None:
    sessions = console.blocks(README)
    assert len(sessions) >= 2
    for commands in sessions:
        printed = console.run(commands, tmp_path)
        assert len(printed) == len(commands)
        for command, output in zip(commands, printed, strict=True):
            assert console.normal(output) == console.normal(command.output), command.line


def test_what_the_readme_says_is_polled_is_what_the_code_polls() -> None:
    import kopf

    from kubesteps.actions.approval import APPROVAL_RECHECK
    from kubesteps.actions.common import FIRST_POLL, LONGEST_POLL
    from kubesteps.controller.operator import settings_hook

    text = " ".join(README.split())
    assert "Nothing polls" not in text
    assert (
        f"(`waitFor`, `job`) {FIRST_POLL:g} s after its first look, then every tenth of "
        "the time waited so far, at most once a minute"
    ) in text
    assert LONGEST_POLL == 60
    assert f"an `approval` every {APPROVAL_RECHECK:g} s" in text
    settings = kopf.OperatorSettings()
    settings_hook(settings, {})
    assert settings.watching.server_timeout == 5 * 60
    assert "the watch is re-opened every 5 minutes" in text


def test_cel_in_the_docs_reads_only_fields_a_spec_has() -> None:
    from kubesteps.pipeline.model import PipelineSpec

    fields = {field.alias or name for name, field in PipelineSpec.model_fields.items()}
    texts = [README, *(p.read_text() for p in (ROOT / "docs").glob("*.md"))]
    used = {name for text in texts for name in re.findall(r"self\.spec\.(\w+)", text)}
    assert used <= fields, f"docs read spec fields no Pipeline has: {used - fields}"


def test_ci_runs_exactly_the_readmes_test_command() -> None:
    script = (ROOT / ".ci" / "run").read_text().splitlines()
    commands = [
        line.strip()
        for line in script
        if line.strip()
        and not line.lstrip().startswith("#")
        and not line.startswith(("set ", "cd ", "export "))
    ]
    assert commands == ["make test"]
    assert blocks("sh")[0].splitlines()[1].split("#")[0].strip() == "make test"
