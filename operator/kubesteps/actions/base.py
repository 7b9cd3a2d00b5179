"""What an action is, and what it sees when it runs.

An action is the body of a Pipeline step with ``action: NAME``. It gets its ``with``
parameters, already rendered (``${ }`` templates filled in) and validated against its
pydantic model, and an ``ActionContext``. It returns outputs (a mapping, recorded in
``status.steps[].outputs`` and visible to later steps' CEL) or raises the engine's signals:
``WaitError`` to be looked at again later (never sleep in an action: waits go by requeue),
``RetryableError`` for transient trouble, ``PermanentError`` for what no retry can fix.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel

from kubesteps.engine import PermanentError, StepContext
from kubesteps.kube.client import KubeClient
from kubesteps.kube.meta import meta_of
from kubesteps.pipeline.runs import Run

Outputs = Mapping[str, Any] | None


@dataclass
class ActionContext:
    """The world as one action sees it during one reconcile pass."""

    step: StepContext
    pipeline: Mapping[str, Any]
    kube: KubeClient | None
    clock: Callable[[], datetime]
    extras: dict[str, Any] = field(default_factory=dict)
    # The run this pass works for (None: a library caller that keeps no runs).
    run: Run | None = None
    # Keeps fields in the step's status record besides its state (``logTail``); None: a
    # caller that keeps no status records.
    keep: Callable[[Mapping[str, Any]], None] | None = None

    def keep_in_record(self, **fields: Any) -> None:
        """Keep ``fields`` (status field name -> value) in this step's status record, also
        when the step goes on to fail; dropped silently when nothing keeps records."""
        if self.keep is not None:
            self.keep(fields)

    @property
    def name(self) -> str:
        """The step's name."""
        return self.step.name

    @property
    def namespace(self) -> str:
        return meta_of(self.pipeline).namespace or "default"

    @property
    def pipeline_name(self) -> str:
        return meta_of(self.pipeline).name

    @property
    def generation(self) -> int:
        return meta_of(self.pipeline).generation

    @property
    def run_number(self) -> int:
        """The run's number (1 without a run: a library caller's single run)."""
        return self.run.number if self.run is not None else 1

    @property
    def run_id(self) -> str:
        return self.run.id if self.run is not None else f"{self.pipeline_name}-1"

    def owner_reference(self) -> dict[str, Any]:
        """An ownerReference to the Pipeline: owned objects go when the Pipeline goes."""
        meta = meta_of(self.pipeline)
        return {
            "apiVersion": self.pipeline.get("apiVersion", "kubesteps.dev/v1alpha1"),
            "kind": self.pipeline.get("kind", "Pipeline"),
            "name": meta.name,
            "uid": meta.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }

    def require_kube(self) -> KubeClient:
        """The API client, or a clear failure when this run has no Kubernetes API."""
        if self.kube is None:
            raise PermanentError(
                f"step {self.name!r} needs the Kubernetes API, and this run has none "
                "(run it through the operator, or `kubesteps run` with its embedded API)"
            )
        return self.kube


class Action(Protocol):
    """A built-in or plugged-in action: a parameters model and a coroutine."""

    name: str
    params: type[BaseModel]

    def run(self, ctx: ActionContext, params: Any) -> Awaitable[Outputs]: ...
