"""`kubesteps demo`: the operator at work on this machine, no cluster needed.

One process runs the Kubernetes API emulator (serving the Pipeline CRD) and the real
operator (kopf, our handlers) against it, applies the example Pipelines, prints every step
transition it sees in their status, approves approval steps the way a person would (an
annotation), and ends with the table `kubectl get pipelines` would show.

Examples say how the demo treats them in a comment line:
``# kubesteps-demo: skip <why>`` (e.g. Jobs need a real cluster) or
``# kubesteps-demo: approve <step>`` (the demo sets the approval annotation).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kopf

from kubesteps.controller.operator import Connection, build_registry, settings_hook
from kubesteps.kube.client import Credentials, KubeClient
from kubesteps.kube.conditions import find
from kubesteps.kube.meta import meta_of
from kubesteps.local.runner import step_label
from kubesteps.pipeline.crd import crd, template_crd
from kubesteps.pipeline.model import API_VERSION
from kubesteps.pipeline.params import approval_annotation
from kubesteps.pipeline.template import TEMPLATE_KIND
from kubesteps.yamlio import load_all

Echo = Callable[[str], None]
_MARKER = re.compile(r"^#\s*kubesteps-demo:\s*(skip|approve)\s*(.*)$", re.MULTILINE)


@dataclass
class Example:
    path: Path
    manifest: dict[str, Any]
    approve: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.manifest["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.manifest["metadata"].get("namespace") or "default")


def load_examples(directory: Path, echo: Echo) -> list[Example]:
    examples = []
    for path in sorted(directory.glob("*.yaml")):
        text = path.read_text()
        markers = _MARKER.findall(text)
        skip = [why for verb, why in markers if verb == "skip"]
        if skip:
            echo(f"skipping {path.name}: {skip[0]}")
            continue
        for document in load_all(text):
            if isinstance(document, dict) and document.get("kind") in ("Pipeline", TEMPLATE_KIND):
                approve = [step.strip() for verb, step in markers if verb == "approve"]
                examples.append(Example(path, document, approve))
    # The templates first: a Pipeline that uses one finds it at its first pass.
    return sorted(examples, key=lambda example: example.manifest["kind"] != TEMPLATE_KIND)


async def run_demo(directory: Path, *, budget: float = 90.0, echo: Echo = print) -> bool:
    """Run the demo; True when every example Pipeline ended Ready."""
    # kopf's own chatter (signals in a thread, streams left at shutdown) is not the demo.
    kopf_logger = logging.getLogger("kopf")
    level = kopf_logger.level
    kopf_logger.setLevel(logging.ERROR)
    try:
        return await _demo(directory, budget, echo)
    finally:
        kopf_logger.setLevel(level)


async def _demo(directory: Path, budget: float, echo: Echo) -> bool:
    from kubesteps.testing.emulator import Emulator
    from kubesteps.testing.operator_runner import run_operator

    examples = load_examples(directory, echo)
    if not examples:
        raise ValueError(f"no example Pipelines in {directory}")
    emulator = Emulator()
    emulator.register_crd(crd())
    emulator.register_crd(template_crd())
    async with emulator.serving() as url, KubeClient(Credentials(server=url, insecure=True)) as api:
        echo(f"Kubernetes API emulator at {url}; starting the operator")
        connection = Connection(kopf.ConnectionInfo(server=url, insecure=True))
        registry = build_registry(connection)
        async with run_operator(
            registry, emulator, wait_for=["pipelines"], settings_hook=lambda s: settings_hook(s, {})
        ):
            for example in examples:
                await api.create(example.manifest)
                kind = example.manifest["kind"].lower()
                echo(f"applied {example.path.name}: {kind}/{example.name}")
            pipelines = [e for e in examples if e.manifest["kind"] == "Pipeline"]
            bodies = await _watch(api, pipelines, budget, echo)
    echo("")
    echo(summary_table(list(bodies.values())))
    return all(_ready(body) == "True" for body in bodies.values())


async def _watch(
    api: KubeClient, examples: list[Example], budget: float, echo: Echo
) -> dict[str, dict[str, Any]]:
    seen: dict[tuple[str, str], tuple[str, str]] = {}
    approved: set[tuple[str, str]] = set()
    bodies: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + budget
    while True:
        for example in examples:
            body = await api.get(API_VERSION, "Pipeline", example.name, example.namespace)
            if body is None:
                continue
            bodies[example.name] = body
            for record in (body.get("status") or {}).get("steps", []):
                key = (example.name, record["name"])
                now = (record["phase"], record.get("message", ""))
                if seen.get(key) != now:
                    seen[key] = now
                    echo(f"{example.name:<16} {step_label(record):<20} {now[0]:<10} {now[1]}")
                if (
                    record["phase"] == "Waiting"
                    and record["name"] in example.approve
                    and key not in approved
                ):
                    approved.add(key)
                    echo(
                        f"{example.name:<16} approving {record['name']} (as a person would: "
                        f"kubectl annotate pipeline {example.name} "
                        f"{approval_annotation(record['name'])}=demo)"
                    )
                    await api.patch(
                        API_VERSION,
                        "Pipeline",
                        example.name,
                        example.namespace,
                        {
                            "metadata": {
                                "annotations": {approval_annotation(record["name"]): "demo"}
                            }
                        },
                    )
        if all(_settled(bodies.get(e.name)) for e in examples) or time.monotonic() > deadline:
            return bodies
        await asyncio.sleep(0.2)


def _ready_condition(body: Mapping[str, Any] | None) -> Mapping[str, Any]:
    conditions = ((body or {}).get("status") or {}).get("conditions", [])
    return find(conditions, "Ready") or {}


def _ready(body: Mapping[str, Any] | None) -> str:
    return str(_ready_condition(body).get("status", "Unknown"))


def _settled(body: Mapping[str, Any] | None) -> bool:
    ready = _ready_condition(body)
    generation = meta_of(body or {}).generation
    if ready.get("observedGeneration") != generation:
        return False
    return ready.get("status") == "True" or ready.get("reason") in ("Failed", "InvalidSpec")


def summary_table(bodies: list[dict[str, Any]]) -> str:
    lines = [f"{'NAME':<18} {'READY':<6} {'REASON':<19} {'RUN':<5} {'STEP':<18} STEPS"]
    for body in bodies:
        ready = _ready_condition(body)
        status = body.get("status") or {}
        run = (status.get("run") or {}).get("number") or "-"
        steps = ", ".join(f"{step_label(s)}={s['phase']}" for s in status.get("steps", []))
        lines.append(
            f"{body['metadata']['name']:<18} {ready.get('status', '?'):<6} "
            f"{ready.get('reason', '?'):<19} {run!s:<5} "
            f"{status.get('currentStep') or '-':<18} {steps}"
        )
    return "\n".join(lines)
