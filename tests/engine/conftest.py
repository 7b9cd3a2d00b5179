"""Shared fixtures for the engine tests: a fake clock, a recording keeper, an engine factory."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubesteps import MemoryStateKeeper, RetryPolicy, Step, StepsEngine, StepState

START = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    """A clock that only moves when a test says so."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Transitions:
    """An ``on_transition`` listener that remembers ``(state name, status)`` pairs."""

    def __init__(self) -> None:
        self.seen: list[StepState] = []

    def __call__(self, old: StepState | None, new: StepState) -> None:
        self.seen.append(new)

    def of(self, name: str) -> list[str]:
        return [s.status.value for s in self.seen if s.name == name]

    def clear(self) -> None:
        self.seen.clear()


EngineFactory = Callable[..., StepsEngine]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def keeper() -> MemoryStateKeeper:
    return MemoryStateKeeper()


@pytest.fixture
def transitions() -> Transitions:
    return Transitions()


@pytest.fixture
def make_engine(
    clock: FakeClock, keeper: MemoryStateKeeper, transitions: Transitions
) -> EngineFactory:
    """Build an engine on the test's clock, keeper and listener, with a fixed seed and a
    jitter-free retry policy so that delays are exact."""

    def build(steps: Sequence[Step], **options: Any) -> StepsEngine:
        options.setdefault("keeper", keeper)
        options.setdefault("clock", clock)
        options.setdefault("rng", random.Random(7))
        options.setdefault("on_transition", transitions)
        options.setdefault(
            "retry", RetryPolicy(limit=3, initial=timedelta(seconds=2), jitter=timedelta(0))
        )
        return StepsEngine(steps, **options)

    return build
