"""Retry policy: how often and how soon a failing step is tried again."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

import tenacity

from kubesteps.engine.errors import DefinitionError


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter and a cap.

    ``limit`` is the total number of attempts (1 = never retry). The delay before attempt
    ``n + 1`` is ``min(initial * factor ** (n - 1) + U(0, jitter), max_delay)``. Attempts
    are counted by the keeper, so a restart does not reset them.
    """

    limit: int = 5
    initial: timedelta = timedelta(seconds=1)
    max_delay: timedelta = timedelta(minutes=5)
    factor: float = 2.0
    jitter: timedelta = timedelta(seconds=1)

    def __post_init__(self) -> None:
        problems = []
        if self.limit < 1:
            problems.append(("retry.limit", f"must be >= 1 (1 = no retries), got {self.limit}"))
        if self.initial <= timedelta(0):
            problems.append(("retry.initial", f"must be > 0, got {self.initial}"))
        if self.max_delay < self.initial:
            problems.append(("retry.max_delay", "must be >= retry.initial"))
        if self.factor < 1:
            problems.append(("retry.factor", f"must be >= 1, got {self.factor}"))
        if self.jitter < timedelta(0):
            problems.append(("retry.jitter", f"must be >= 0, got {self.jitter}"))
        if problems:
            field, problem = problems[0]
            raise DefinitionError(None, field, problem)

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        base = tenacity.wait_exponential(
            multiplier=self.initial.total_seconds(),
            max=self.max_delay.total_seconds(),
            exp_base=self.factor,
        )
        # A step's attempts span reconcile passes, so no tenacity loop runs them; its wait
        # strategy computes the delay from the attempt number the keeper kept.
        state = tenacity.RetryCallState(tenacity.Retrying(wait=base), None, (), {})
        state.attempt_number = attempt
        jitter = rng.uniform(0, self.jitter.total_seconds()) if self.jitter else 0.0
        return float(min(base(state) + jitter, self.max_delay.total_seconds()))
