"""The public API: everything a library user needs comes from ``kubesteps`` alone."""

from __future__ import annotations

import asyncio
import importlib.metadata
import subprocess
import sys
import textwrap

import pytest

import kubesteps

# What docs/engine.md documents; removing any of these is a breaking change.
DOCUMENTED = {
    "AbortedByPredicate",
    "DefinitionError",
    "DynamicStep",
    "ExpectedError",
    "GroupedSteps",
    "KeeperError",
    "MemoryStateKeeper",
    "Middleware",
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
    "ThrottlingSettings",
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
}


def test_every_documented_name_is_exported() -> None:
    assert sorted(DOCUMENTED - set(kubesteps.__all__)) == []


def test_every_exported_name_exists_and_is_listed_once() -> None:
    assert len(kubesteps.__all__) == len(set(kubesteps.__all__))
    missing = [name for name in kubesteps.__all__ if not hasattr(kubesteps, name)]
    assert missing == []


def test_the_version_is_the_installed_distributions() -> None:
    assert kubesteps.__version__ == importlib.metadata.version("kubesteps")
    assert kubesteps.__version__.count(".") == 2


def test_user_errors_are_exceptions_and_definition_errors_are_value_errors() -> None:
    for name in (
        "ExpectedError",
        "WaitError",
        "RetryableError",
        "PermanentError",
        "KeeperError",
        "StepRunError",
        "AbortedByPredicate",
    ):
        assert issubclass(getattr(kubesteps, name), Exception)
    assert issubclass(kubesteps.DefinitionError, ValueError)
    assert issubclass(kubesteps.StepTimeoutError, kubesteps.RetryableError)


@pytest.mark.slow
async def test_importing_kubesteps_loads_no_kubernetes_or_web_stack() -> None:
    # The engine is a library: importing it must not drag in kopf, Kubernetes clients,
    # aiohttp or pydantic. Checked in a fresh interpreter so nothing else loaded them first.
    script = textwrap.dedent(
        """
        import sys
        before = set(sys.modules)
        import kubesteps
        loaded = {m.split(".")[0] for m in set(sys.modules) - before}
        print(" ".join(sorted(m for m in loaded if m not in sys.stdlib_module_names
                              and not m.startswith("_"))))
        """
    )
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await asyncio.wait_for(child.communicate(), timeout=60)
    assert child.returncode == 0, err.decode()
    third_party = set(out.decode().split()) - {"kubesteps"}
    assert third_party <= {"opentelemetry", "tenacity", "typing_extensions"}
