"""`kubesteps run`: reconcile Pipeline manifests on this machine, no cluster needed.

Each Pipeline goes through the operator's own reconcile pass, again and again (sleeping
the requeue delay in between) until its run settles (done, failed, cancelled, suspended or
invalid: a resync or a throttled step due later does not keep it going) or the time budget
runs out. Its status
lives in a SQLite file, so a second run resumes where the first stopped. Actions that talk
to Kubernetes (``apply``, ``waitFor``…) get an embedded API emulator, which lives only as
long as the run; Jobs never run there, so ``job`` steps need a real cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubesteps.controller.reconciler import PassOutcome, PassResult, Reconciler
from kubesteps.engine import StepState, StepStatus
from kubesteps.kube.client import ApiError, Credentials, KubeClient
from kubesteps.kube.meta import meta_of
from kubesteps.local.objects import LocalObjects, LocalStatusStore

Echo = Callable[[str], None]


@dataclass
class LocalResult:
    name: str
    namespace: str
    result: PassResult
    body: Mapping[str, Any]
    passes: int

    @property
    def settled(self) -> bool:
        """Nothing more happens by waiting: the run is over (a resync or a throttled step
        due later does not count), failed, cancelled, suspended or invalid, or it waits for
        an approval (nothing answers one during a local run: the answer goes in the file)."""
        waits_for_a_person = (
            self.result.outcome is PassOutcome.WAIT and self.result.action == "approval"
        )
        return (
            self.result.delay is None or self.result.permanent or self.ready or waits_for_a_person
        )

    @property
    def ready(self) -> bool:
        return self.result.outcome is PassOutcome.DONE


@contextlib.asynccontextmanager
async def embedded_api(
    namespaces: Iterable[str] = (), templates: Sequence[Mapping[str, Any]] = ()
) -> AsyncIterator[KubeClient]:
    """An in-process Kubernetes API emulator, with ``namespaces`` and the PipelineTemplates
    ``templates``, and a client for it."""
    from kubesteps.pipeline.crd import crd, template_crd
    from kubesteps.testing.emulator import Emulator

    emulator = Emulator()
    # PipelineTemplates for uses steps; Pipelines for the children pipeline steps create.
    emulator.register_crd(crd())
    emulator.register_crd(template_crd())
    async with emulator.serving() as url, KubeClient(Credentials(server=url, insecure=True)) as c:
        # On a cluster a Pipeline's namespace exists (the Pipeline lives in it), and its
        # steps apply objects there: the emulator knows only the default namespaces.
        for namespace in sorted(set(namespaces)):
            try:
                await c.create(
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
                )
            except ApiError as error:
                if error.status != 409:
                    raise
        for template in templates:
            await c.create(
                {
                    **template,
                    "metadata": {
                        **template["metadata"],
                        "namespace": template["metadata"].get("namespace") or "default",
                    },
                }
            )
        yield c


def describe(new: StepState) -> str:
    """One line per transition, as `kubesteps run` prints them."""
    text = f"{new.name:<24} {new.status.value.capitalize():<10}"
    if new.message:
        text += f" {new.message}"
    return text


async def run_pipelines(
    manifests: Sequence[Mapping[str, Any]],
    *,
    database: Path,
    budget: float = 60.0,
    echo: Echo = print,
    kube: KubeClient | None = None,
    templates: Sequence[Mapping[str, Any]] = (),
    on_step: Callable[[Mapping[str, Any], StepState], None] | None = None,
) -> list[LocalResult]:
    """Reconcile every manifest until it settles or ``budget`` seconds have passed; the
    PipelineTemplates ``templates`` are there for their uses steps.

    ``echo`` gets a line per step transition; ``on_step`` (instead), the Pipeline and the
    step's new state (for a live display)."""
    objects = LocalObjects(database)
    try:
        async with contextlib.AsyncExitStack() as stack:
            if kube is None:
                kube = await stack.enter_async_context(
                    embedded_api(
                        (meta_of(m).namespace or "default" for m in (*manifests, *templates)),
                        templates,
                    )
                )
            client = kube

            def observe(body: Mapping[str, Any], old: StepState | None, new: StepState) -> None:
                if on_step is not None:
                    on_step(body, new)
                elif new.status is not StepStatus.PENDING:
                    echo(f"{body['metadata']['name']:<20} {describe(new)}")

            reconciler = Reconciler(
                lambda: client,
                store=lambda body: LocalStatusStore(objects, body),
                observer=observe,
            )
            deadline = time.monotonic() + budget
            children = asyncio.ensure_future(
                _children(Reconciler(lambda: client, observer=observe), client, deadline)
            )
            try:
                return list(
                    await asyncio.gather(
                        *(
                            _settle(objects, reconciler, manifest, deadline)
                            for manifest in manifests
                        )
                    )
                )
            finally:
                children.cancel()
                await asyncio.gather(children, return_exceptions=True)
    finally:
        objects.close()


async def _children(reconciler: Reconciler, client: KubeClient, deadline: float) -> None:
    """Reconcile the Pipelines that pipeline steps created in the embedded API (children
    live there, not in the state file), as the operator would: again when one changed (a
    cancel or retry passed on to it) or its requeue is due."""
    seen: dict[str, str] = {}
    due: dict[str, float] = {}
    while time.monotonic() < deadline:
        for child in await client.list("kubesteps.dev/v1alpha1", "Pipeline"):
            meta = child["metadata"]
            key = f"{meta.get('namespace')}/{meta['name']}"
            if (
                seen.get(key) == meta.get("resourceVersion")
                and due.get(key, float("inf")) > time.monotonic()
            ):
                continue
            result = await reconciler.reconcile(child)
            seen[key] = result.resource_version or str(meta.get("resourceVersion"))
            due[key] = time.monotonic() + (
                result.delay if result.delay is not None else float("inf")
            )
        await asyncio.sleep(0.05)


async def _settle(
    objects: LocalObjects, reconciler: Reconciler, manifest: Mapping[str, Any], deadline: float
) -> LocalResult:
    body = await asyncio.to_thread(objects.put, manifest)
    meta = body["metadata"]
    passes = 0
    while True:
        passes += 1
        result = await reconciler.reconcile(body)
        stored = await asyncio.to_thread(objects.get, meta["namespace"], meta["name"])
        body = stored if stored is not None else body
        left = deadline - time.monotonic()
        settled = LocalResult(meta["name"], meta["namespace"], result, body, passes)
        if settled.settled or left <= 0 or result.delay is None:
            return settled
        await asyncio.sleep(min(result.delay, left))


def table(results: Sequence[LocalResult]) -> str:
    """The final table: one line per Pipeline, then its steps."""
    lines = [f"{'PIPELINE':<24} {'READY':<6} {'REASON':<19} {'RUN':<6} {'STEP':<20} MESSAGE"]
    for r in results:
        status = r.body.get("status") or {}
        ready: Mapping[str, Any] = next(
            (c for c in status.get("conditions", []) if c.get("type") == "Ready"), {}
        )
        run = (status.get("run") or {}).get("number") or "-"
        lines.append(
            f"{r.namespace + '/' + r.name:<24} {ready.get('status', '?'):<6} "
            f"{ready.get('reason', '?'):<19} {run!s:<6} {status.get('currentStep') or '-':<20} "
            f"{ready.get('message', '')}"
        )
        for step in status.get("steps", []):
            lines.append(
                f"    {step_label(step):<28} {step['phase']:<10} "
                f"attempts={step.get('attempts', 0)}  {step.get('message', '')}"
            )
    return "\n".join(lines)


def step_label(record: Mapping[str, Any]) -> str:
    """A step record's name, with the forEach item it ran for: ``fan-out-0 (eu-west-1)``."""
    item = record.get("item")
    return f"{record['name']} ({item})" if item is not None else str(record["name"])


def outputs_table(results: Sequence[LocalResult]) -> str:
    """What each step returned (``--outputs``): one line per step with outputs, as JSON."""
    lines = ["OUTPUTS"]
    for r in results:
        for step in (r.body.get("status") or {}).get("steps", []):
            if step.get("outputs"):
                shown = json.dumps(step["outputs"], separators=(", ", ": "), sort_keys=True)
                lines.append(f"{r.namespace + '/' + r.name:<24} {step_label(step):<28} {shown}")
    if len(lines) == 1:
        lines.append("(no step returned outputs)")
    return "\n".join(lines)
