"""RetryPolicy: validation and the backoff delays it computes."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubesteps import DefinitionError, RetryPolicy


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"limit": 0}, "retry.limit"),
        ({"initial": timedelta(0)}, "retry.initial"),
        ({"initial": timedelta(seconds=10), "max_delay": timedelta(seconds=5)}, "retry.max_delay"),
        ({"factor": 0.5}, "retry.factor"),
        ({"jitter": timedelta(seconds=-1)}, "retry.jitter"),
    ],
)
def test_invalid_settings_are_rejected_naming_the_field(
    options: dict[str, object], field: str
) -> None:
    with pytest.raises(DefinitionError) as raised:
        RetryPolicy(**options)  # type: ignore[arg-type]
    assert raised.value.field == field


def test_delays_double_from_the_initial_delay_by_default() -> None:
    policy = RetryPolicy(jitter=timedelta(0))
    rng = random.Random(0)
    assert [policy.delay(n, rng) for n in range(1, 5)] == [1.0, 2.0, 4.0, 8.0]


def test_delays_are_capped_at_max_delay() -> None:
    policy = RetryPolicy(initial=timedelta(seconds=10), max_delay=timedelta(seconds=30))
    assert policy.delay(10, random.Random(0)) == 30.0


def test_a_huge_attempt_number_gives_the_cap_not_an_overflow() -> None:
    policy = RetryPolicy(jitter=timedelta(0))
    assert policy.delay(100_000, random.Random(0)) == 300.0


policies = st.builds(
    lambda initial, extra, factor, jitter: RetryPolicy(
        initial=timedelta(seconds=initial),
        max_delay=timedelta(seconds=initial + extra),
        factor=factor,
        jitter=timedelta(seconds=jitter),
    ),
    initial=st.floats(min_value=0.001, max_value=100),
    extra=st.floats(min_value=0, max_value=3_600),
    factor=st.floats(min_value=1, max_value=10),
    jitter=st.floats(min_value=0, max_value=10),
)
attempts = st.integers(min_value=1, max_value=2_000)


def bounds(policy: RetryPolicy, attempt: int) -> tuple[float, float]:
    cap = policy.max_delay.total_seconds()
    try:
        base = policy.initial.total_seconds() * policy.factor ** (attempt - 1)
    except OverflowError:
        base = cap
    jitter = policy.jitter.total_seconds()
    return min(base, cap), min(base + jitter, cap)


@given(policies, attempts, st.integers(min_value=0, max_value=2**32))
def test_delay_stays_within_backoff_plus_jitter_and_the_cap(
    policy: RetryPolicy, attempt: int, seed: int
) -> None:
    low, high = bounds(policy, attempt)
    delay = policy.delay(attempt, random.Random(seed))
    assert low * (1 - 1e-9) <= delay <= high * (1 + 1e-9)


@given(policies, attempts, st.integers(min_value=0, max_value=2**32))
def test_delay_is_never_above_the_cap(policy: RetryPolicy, attempt: int, seed: int) -> None:
    assert policy.delay(attempt, random.Random(seed)) <= policy.max_delay.total_seconds()


@given(policies, st.integers(min_value=1, max_value=200))
def test_without_jitter_delays_never_decrease(policy: RetryPolicy, attempt: int) -> None:
    steady = RetryPolicy(
        initial=policy.initial,
        max_delay=policy.max_delay,
        factor=policy.factor,
        jitter=timedelta(0),
    )
    rng = random.Random(0)
    assert steady.delay(attempt, rng) <= steady.delay(attempt + 1, rng)
