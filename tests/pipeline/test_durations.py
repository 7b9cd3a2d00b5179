"""Go-style duration strings: parsing, formatting, and agreement with the CRD's pattern."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from kubesteps.pipeline.durations import (
    DURATION_PATTERN,
    MAX_DURATION,
    POSITIVE_DURATION_PATTERN,
    DurationError,
    format_duration,
    parse_duration,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", timedelta(0)),
        ("500ms", timedelta(milliseconds=500)),
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1.5h", timedelta(hours=1, minutes=30)),
        ("2m0.25s", timedelta(minutes=2, milliseconds=250)),
        ("1s500ms", timedelta(seconds=1, milliseconds=500)),
        ("0.000001s", timedelta(microseconds=1)),
    ],
)
def test_parses_go_style_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty duration"),
        ("30", "missing unit after '30'"),
        ("1d", "unknown unit 'd'"),
        ("5 m", "unknown unit ' m'"),
        ("-5s", "negative duration"),
        ("m5", "expected a number at position 0"),
        (".5s", "needs digits on both sides"),
        ("5.s", "needs digits on both sides"),
        ("0.0000001s", "more precise than a microsecond"),
        ("9000h", "too long"),
    ],
)
def test_refuses_malformed_durations_saying_why(text: str, message: str) -> None:
    with pytest.raises(DurationError, match=re.escape(message)):
        parse_duration(text)


def test_refuses_a_non_string() -> None:
    with pytest.raises(DurationError, match="must be a string like '30s', got int"):
        parse_duration(30)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(0), "0"),
        (timedelta(milliseconds=250), "250ms"),
        (timedelta(seconds=45), "45s"),
        (timedelta(seconds=1, milliseconds=500), "1.5s"),
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(days=2), "48h"),
    ],
)
def test_formats_the_canonical_string(value: timedelta, text: str) -> None:
    assert format_duration(value) == text


def test_refuses_to_format_a_negative_duration() -> None:
    with pytest.raises(DurationError, match="negative"):
        format_duration(timedelta(seconds=-1))


@given(st.timedeltas(min_value=timedelta(0), max_value=MAX_DURATION))
def test_format_then_parse_gives_the_same_duration(value: timedelta) -> None:
    assert parse_duration(format_duration(value)) == value


@given(st.timedeltas(min_value=timedelta(0), max_value=MAX_DURATION))
def test_formatted_durations_match_the_crd_pattern(value: timedelta) -> None:
    assert re.fullmatch(DURATION_PATTERN, format_duration(value))


@given(st.text(alphabet="0123456789.hms -d", max_size=12))
def test_whatever_parses_matches_the_crd_pattern(text: str) -> None:
    # The API server checks the pattern and the operator the parser: they must agree, except
    # for the limits a pattern cannot express (length and sub-microsecond precision).
    try:
        parse_duration(text)
        problem = ""
    except DurationError as error:
        problem = str(error)
    matches = re.fullmatch(DURATION_PATTERN, text) is not None

    assert matches == (not problem or "too long" in problem or "more precise" in problem)


@given(st.text(alphabet="0123456789.hms", max_size=12))
def test_the_positive_pattern_admits_exactly_the_durations_above_zero(text: str) -> None:
    # The CRD refuses a zero duration with this pattern where the operator refuses it after
    # parsing; both must draw the line at the same place.
    try:
        above_zero = parse_duration(text) > timedelta(0)
        problem = ""
    except DurationError as error:
        above_zero, problem = False, str(error)
    matches = re.fullmatch(POSITIVE_DURATION_PATTERN, text) is not None

    assume("too long" not in problem and "more precise" not in problem)  # no pattern can tell
    assert matches == above_zero, text


@pytest.mark.parametrize("text", ["0", "0s", "0.0m", "0h0m0s", "00ms", "0.000s"])
def test_the_positive_pattern_refuses_zero_however_it_is_written(text: str) -> None:
    assert re.fullmatch(DURATION_PATTERN, text)
    assert not re.fullmatch(POSITIVE_DURATION_PATTERN, text)


@pytest.mark.parametrize("text", ["1s", "0.5s", "0h1m", "1h0m0s", "10ms", "0.001s", "1.5h"])
def test_the_positive_pattern_admits_any_term_above_zero(text: str) -> None:
    assert re.fullmatch(POSITIVE_DURATION_PATTERN, text)


@pytest.mark.parametrize("text", ["24000000000h", "999999999999h", "8761h", "525601m"])
def test_a_duration_too_long_for_any_clock_is_refused_in_words(text: str) -> None:
    # Hypothesis found '24000000000h' raising OverflowError from timedelta itself.
    with pytest.raises(DurationError, match="is too long; at most 8760h"):
        parse_duration(text)
