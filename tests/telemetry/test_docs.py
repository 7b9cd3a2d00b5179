"""docs/observability.md lists exactly the metrics the operator exports, with their types
and labels, and marks the opt-in ones correctly."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from kubesteps.telemetry.metrics import OperatorMetrics

DOC = Path(__file__).resolve().parents[2] / "docs" / "observability.md"


@dataclass(frozen=True)
class Documented:
    kind: str
    labels: frozenset[str]
    optional_labels: frozenset[str]
    opt_in: bool


def _documented() -> dict[str, Documented]:
    rows: dict[str, Documented] = {}
    for line in DOC.read_text().splitlines():
        if not line.startswith("| `kubesteps_"):
            continue
        name, kind, labels = (cell.strip() for cell in line.strip("|").split("|")[:3])
        optional = "".join(re.findall(r"\(\+[^)]*\)", labels))
        rows[name.strip("`")] = Documented(
            kind=kind.split()[0],
            labels=frozenset(re.findall(r"`(\w+)`", labels)),
            optional_labels=frozenset(re.findall(r"`(\w+)`", optional)),
            opt_in="(opt-in)" in kind,
        )
    return rows


def _exported(metrics: OperatorMetrics) -> dict[str, tuple[str, frozenset[str]]]:
    """Exposed name -> (type, label names), after one observation of every kind."""
    metrics.observe_reconcile("retry", 0.1, 5.0, namespace="ops")
    metrics.observe_step("http", "retrying", 0.1, namespace="ops")
    metrics.observe_status_write(conflict=True)
    metrics.observe_api_error("patch", 409)
    metrics.observe_run("Created", "Succeeded", namespace="ops")
    metrics.observe_schedule_suspended(namespace="ops")
    metrics.track_pipeline(
        "u1", namespace="ops", name="p1", ready="False", reason="Retrying", retrying_steps=1
    )
    exported = {}
    for family in text_string_to_metric_families(metrics.render()):
        name = family.name + ("_total" if family.type == "counter" else "")
        labels = {label for sample in family.samples for label in sample.labels} - {"le"}
        exported[name] = (family.type, frozenset(labels))
    return exported


def test_the_metrics_table_matches_everything_the_operator_can_export() -> None:
    documented = _documented()
    exported = _exported(OperatorMetrics(per_namespace_labels=True, per_object_metrics=True))

    assert set(documented) == set(exported)
    for name, (kind, labels) in exported.items():
        assert documented[name].kind == kind, name
        assert documented[name].labels == labels, name


def test_the_table_marks_what_exists_only_with_opt_ins() -> None:
    documented = _documented()
    exported = _exported(OperatorMetrics())

    assert set(exported) == {name for name, doc in documented.items() if not doc.opt_in}
    for name, (_, labels) in exported.items():
        assert labels == documented[name].labels - documented[name].optional_labels, name
