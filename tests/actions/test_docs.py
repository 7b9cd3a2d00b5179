"""What docs/actions.md says an action's ``ctx`` has, it has."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from kubesteps.actions.base import ActionContext
from kubesteps.engine import RunContext, SimpleStep, StepContext, StepsEngine

DOC = (Path(__file__).resolve().parents[2] / "docs" / "actions.md").read_text()


def test_every_ctx_attribute_the_actions_doc_names_exists() -> None:
    step = SimpleStep(name="s", run=lambda: None)
    clock = lambda: datetime(2026, 1, 1, tzinfo=UTC)  # noqa: E731
    ctx = ActionContext(
        step=StepContext(
            step=step,
            previous=None,
            run=RunContext(clock),
            control=StepsEngine([step]),
            attempt=2,
            started_at=clock(),
        ),
        pipeline={"metadata": {"name": "p", "namespace": "default"}},
        kube=None,
        clock=clock,
    )
    named = set(re.findall(r"`ctx((?:\.\w+)+)(?:\(\))?`", DOC))
    assert {".step.attempt", ".name", ".kube"} <= named
    for path in named:
        value: object = ctx
        for part in path.strip(".").split("."):
            assert hasattr(value, part), f"ctx{path}: {type(value).__name__} has no {part!r}"
            value = getattr(value, part)
    assert ctx.step.attempt == 2
