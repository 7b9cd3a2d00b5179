"""Throttling: run a step at most once per interval, remembered by the keeper."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from kubesteps.engine.errors import DefinitionError


@dataclass(frozen=True, slots=True)
class ThrottlingSettings:
    """Run the step at most once per ``interval``.

    - ``ensure_step_success``: the interval counts from the last *successful* run, so a
      failing step is tried again on the next pass instead of waiting a whole interval.
    - ``partition_key``: the key the last-run time is kept under (default: the step's
      state name); steps sharing a key share one budget.
    - ``initial_delay``: on first sight, wait a random time up to this bound before the
      first run (spreads a fleet of new objects out); ``None`` runs at once.
    """

    interval: timedelta
    ensure_step_success: bool = False
    partition_key: str | None = None
    initial_delay: timedelta | None = None

    def __post_init__(self) -> None:
        if self.interval <= timedelta(0):
            raise DefinitionError(None, "throttling.interval", f"must be > 0, got {self.interval}")
        if self.initial_delay is not None and not (
            timedelta(0) <= self.initial_delay <= self.interval
        ):
            raise DefinitionError(
                None,
                "throttling.initial_delay",
                f"must be between 0 and the interval ({self.interval}), got {self.initial_delay}",
            )


@dataclass(frozen=True, slots=True)
class ThrottleDecision:
    run: bool
    next_run_at: datetime | None  # when the step is next due, if it is not run now
    record: datetime | None  # a last-run time to store now (None: store nothing)


def decide(
    settings: ThrottlingSettings, last_run: datetime | None, now: datetime, rng: random.Random
) -> ThrottleDecision:
    """Whether a throttled step runs now. Pure: the caller stores ``record`` if set.

    First sight runs at once, unless ``initial_delay`` asks for a random delay first: then
    a synthetic last-run time is recorded so that the step becomes due after that delay.
    """
    if last_run is None:
        if settings.initial_delay:
            delay = timedelta(seconds=rng.uniform(0, settings.initial_delay.total_seconds()))
            if delay > timedelta(0):
                synthetic = now + delay - settings.interval
                return ThrottleDecision(False, now + delay, synthetic)
        return ThrottleDecision(True, None, None if settings.ensure_step_success else now)
    due = last_run + settings.interval
    if now >= due:
        return ThrottleDecision(True, None, None if settings.ensure_step_success else now)
    return ThrottleDecision(False, due, None)
