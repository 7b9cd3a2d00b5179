"""kubesteps: a steps engine for Kubernetes operators, and the Pipeline operator built on it.

Everything a library user needs is importable from here; nothing here imports Kubernetes.
The names are loaded on first use (PEP 562), so ``import kubesteps`` alone, as the command
line does for ``--help`` and its version, imports neither the engine nor OpenTelemetry.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from kubesteps._version import __version__

# A library logs, the application decides where it goes: without this, a program that set up
# no logging would get the engine's warnings and tracebacks on stderr through logging's
# last-resort handler. The operator and the CLI install their own handlers.
logging.getLogger("kubesteps").addHandler(logging.NullHandler())

if TYPE_CHECKING:
    from kubesteps.engine import (
        AbortedByPredicate,
        Case,
        DefinitionError,
        DynamicStep,
        ExpectedError,
        GroupedSteps,
        KeeperError,
        MemoryStateKeeper,
        Middleware,
        Need,
        Outcome,
        OutcomeKind,
        ParallelSteps,
        PermanentError,
        Predicate,
        RetryableError,
        RetryPolicy,
        RunContext,
        SimpleStep,
        State,
        StateKeeper,
        Step,
        StepContext,
        StepRunError,
        StepsEngine,
        StepState,
        StepStatus,
        StepTimeoutError,
        SwitchSteps,
        ThrottlingSettings,
        WaitError,
        always,
        and_,
        is_not_true_condition,
        is_true_condition,
        not_,
        or_,
        requeue_delay,
        step_failed,
        step_in,
        step_succeeded,
    )
    from kubesteps.keepers.sqlite import SQLiteStateKeeper


__all__ = [
    "AbortedByPredicate",
    "Case",
    "DefinitionError",
    "DynamicStep",
    "ExpectedError",
    "GroupedSteps",
    "KeeperError",
    "MemoryStateKeeper",
    "Middleware",
    "Need",
    "Outcome",
    "OutcomeKind",
    "ParallelSteps",
    "PermanentError",
    "Predicate",
    "RetryPolicy",
    "RetryableError",
    "RunContext",
    "SQLiteStateKeeper",
    "SimpleStep",
    "State",
    "StateKeeper",
    "Step",
    "StepContext",
    "StepRunError",
    "StepState",
    "StepStatus",
    "StepTimeoutError",
    "StepsEngine",
    "SwitchSteps",
    "ThrottlingSettings",
    "WaitError",
    "__version__",
    "always",
    "and_",
    "is_not_true_condition",
    "is_true_condition",
    "not_",
    "or_",
    "requeue_delay",
    "step_failed",
    "step_in",
    "step_succeeded",
]


def __getattr__(name: str) -> Any:
    """Load a public name on first use: the engine's from ``kubesteps.engine``."""
    if name == "SQLiteStateKeeper":
        from kubesteps.keepers.sqlite import SQLiteStateKeeper

        return SQLiteStateKeeper
    if name in __all__:
        import kubesteps.engine

        value = getattr(kubesteps.engine, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kubesteps' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
