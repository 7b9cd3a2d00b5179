"""The steps engine: pure Python and asyncio, no Kubernetes."""

from kubesteps.engine.context import RunContext, StepContext
from kubesteps.engine.engine import StepsEngine
from kubesteps.engine.errors import (
    AbortedByPredicate,
    DefinitionError,
    ExpectedError,
    KeeperError,
    PermanentError,
    RetryableError,
    StepRunError,
    StepTimeoutError,
    WaitError,
)
from kubesteps.engine.keeper import StateKeeper
from kubesteps.engine.memory import MemoryStateKeeper
from kubesteps.engine.outcome import Outcome, OutcomeKind, requeue_delay
from kubesteps.engine.predicates import (
    Predicate,
    always,
    and_,
    is_not_true_condition,
    is_true_condition,
    not_,
    or_,
    step_failed,
    step_in,
    step_succeeded,
)
from kubesteps.engine.recorder import TransitionListener
from kubesteps.engine.retry import RetryPolicy
from kubesteps.engine.state import State, StepState, StepStatus
from kubesteps.engine.steps import (
    Case,
    DynamicStep,
    GroupedSteps,
    Middleware,
    Need,
    ParallelSteps,
    SimpleStep,
    Step,
    SwitchSteps,
)
from kubesteps.engine.throttling import ThrottlingSettings

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
    "TransitionListener",
    "WaitError",
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
