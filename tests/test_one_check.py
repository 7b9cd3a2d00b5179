"""One check, three doors: `kubesteps validate`, the operator's pass and `kubesteps run`
refuse every bad input of the repository alike, with the same message for each problem.

The bad inputs are the malformed table (``tests/pipeline/malformed.py``), which the other
tests take theirs from. The operator's pass runs against the API emulator serving a CRD
that admits anything, as a cluster with an older CRD would: what the operator itself
refuses is what is compared here (the CRD's own refusals are tested in
``tests/controller/test_malformed.py``).
"""

from __future__ import annotations

import asyncio
import copy
import re
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from kubesteps.cli import main
from kubesteps.controller.reconciler import Reconciler
from kubesteps.kube.client import Credentials, KubeClient
from kubesteps.kube.conditions import find
from kubesteps.pipeline.crd import crd
from kubesteps.plan.validate import SHOWN_PROBLEMS, SpecError, validate
from kubesteps.testing import Emulator
from tests.pipeline.malformed import MALFORMED, Malformed

API = "kubesteps.dev/v1alpha1"


def _named(case: Malformed) -> dict[str, Any]:
    manifest = copy.deepcopy(case.manifest)
    if "name" in manifest["metadata"]:
        manifest["metadata"]["name"] = re.sub(r"[^a-z0-9-]", "-", case.id)[:63].strip("-")
    return manifest


CASES = [(case, _named(case)) for case in MALFORMED]


def _name(manifest: dict[str, Any]) -> str:
    return str(manifest["metadata"].get("name", "<no name>"))


def _problems(manifest: dict[str, Any]) -> list[SpecError]:
    result = validate(manifest)
    assert isinstance(result, list), f"{_name(manifest)} passed validate()"
    return result


def _lines(path: Path, manifest: dict[str, Any]) -> list[str]:
    return [f"{path}: Pipeline/{_name(manifest)}: {problem}" for problem in _problems(manifest)]


def _permissive_crd() -> dict[str, Any]:
    definition = crd()
    version = definition["spec"]["versions"][0]
    version["schema"] = {
        "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    }
    return definition


async def _operator_messages(postable: list[dict[str, Any]]) -> dict[str, str]:
    """The operator's pass over each Pipeline, stored through the API: Ready's message."""
    emulator = Emulator()
    emulator.register_crd(_permissive_crd())
    messages: dict[str, str] = {}
    async with emulator.serving() as url, KubeClient(Credentials(server=url, insecure=True)) as api:
        reconciler = Reconciler(lambda: api)
        for manifest in postable:
            await api.create(manifest)
            body = await api.get(API, "Pipeline", _name(manifest), "default")
            assert body is not None
            result = await reconciler.reconcile(body)
            assert result.outcome == "invalid", f"{_name(manifest)}: {result}"
            stored = await api.get(API, "Pipeline", _name(manifest), "default")
            ready = find(((stored or {}).get("status") or {}).get("conditions", []), "Ready")
            assert ready is not None
            assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
            messages[_name(manifest)] = str(ready["message"])
    return messages


def _message(manifest: dict[str, Any]) -> str:
    """What validate printed, line by line, as one status message (the first ones)."""
    problems = _problems(manifest)
    text = "; ".join(str(problem) for problem in problems[:SHOWN_PROBLEMS])
    more = len(problems) - SHOWN_PROBLEMS
    return text + (f"; and {more} more" if more > 0 else "")


def test_every_bad_input_gets_the_same_verdict_and_messages_from_all_three(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump_all([manifest for _, manifest in CASES]))
    for case, manifest in CASES:  # each fixture's own expectation holds, at its field
        assert any(
            problem.path == case.validate.path and case.validate.message in problem.message
            for problem in _problems(manifest)
        ), f"{case.id}: {_problems(manifest)}"
    expected = [line for _, manifest in CASES for line in _lines(path, manifest)]

    checked = CliRunner().invoke(main, ["validate", str(path)])
    assert checked.exit_code == 1
    assert checked.output.splitlines() == expected

    ran = CliRunner().invoke(
        main, ["run", str(path), "--state", str(tmp_path / "s.db"), "--budget", "5"]
    )
    assert ran.exit_code == 1, ran.output
    printed = ran.output.splitlines()
    assert printed[: len(expected)] == expected, "run reports problems as validate does"
    rows = {line.split()[0]: line for line in printed if line.startswith("default/")}
    for _, manifest in CASES:
        if _name(manifest) == "<no name>":
            continue  # nothing can store it; validate's line is all there is
        row = rows[f"default/{_name(manifest)}"]
        assert row.split()[1:3] == ["False", "InvalidSpec"]
        assert row.endswith(_message(manifest))

    postable = [
        m
        for _, m in CASES
        if m.get("kind") == "Pipeline" and m.get("apiVersion") == API and _name(m) != "<no name>"
    ]
    assert len(postable) >= len(CASES) - 5
    operator = asyncio.run(_operator_messages(postable))
    for manifest in postable:
        assert operator[_name(manifest)] == _message(manifest)
