"""The redactor: registered values, their base64 forms and credential-looking header values go.

The last tests are the log sink: ``configure_logging``'s handlers write no registered value,
in messages, arguments, extra fields or tracebacks.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator

import pytest

from kubesteps.telemetry.logs import configure_logging
from kubesteps.telemetry.redaction import MARK, RedactingFilter, Redactor, redactor

TOKEN = "tok-7Hq2mZ9xLw"


@pytest.fixture
def r() -> Redactor:
    fresh = Redactor()
    fresh.register(TOKEN)
    return fresh


def test_a_registered_value_is_replaced_wherever_it_occurs(r: Redactor) -> None:
    assert r.redact(f"a{TOKEN}b and {TOKEN}") == f"a{MARK}b and {MARK}"


@pytest.mark.parametrize("encode", [base64.b64encode, base64.urlsafe_b64encode])
def test_its_base64_forms_padded_or_not_are_replaced_too(r: Redactor, encode: object) -> None:
    assert callable(encode)
    encoded = encode(TOKEN.encode()).decode()
    assert r.redact(f"x {encoded} y {encoded.rstrip('=')} z") == f"x {MARK} y {MARK} z"


def test_a_value_with_a_trailing_newline_is_redacted_in_either_form() -> None:
    fresh = Redactor()
    fresh.register("line-token-42\n")
    raw = base64.b64encode(b"line-token-42\n").decode()
    stripped = base64.b64encode(b"line-token-42").decode()
    assert fresh.redact(f"{raw} {stripped} line-token-42") == f"{MARK} {MARK} {MARK}"


def test_a_value_cut_short_at_the_end_of_a_bounded_message_is_redacted(r: Redactor) -> None:
    assert r.redact(f"answered 500: Bearer {TOKEN[:8]}…") == f"answered 500: Bearer {MARK}…"
    assert r.redact(f"echo: {TOKEN[:7]}...") == f"echo: {MARK}..."


def test_a_text_that_only_happens_to_end_like_a_value_without_a_cut_is_kept(
    r: Redactor,
) -> None:
    assert r.redact(f"ends with {TOKEN[:8]}") == f"ends with {TOKEN[:8]}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '{"Authorization": "Bearer abc.def.ghi", "Host": "x"}',
            f'{{"Authorization": "{MARK}", "Host": "x"}}',
        ),
        ("authorization: Basic dXNlcjpwYXNz\r\nhost: x", f"authorization: {MARK}\r\nhost: x"),
        ("{'X-Api-Key': 'k1k2k3k4'}", f"{{'X-Api-Key': '{MARK}'}}"),
        ("Cookie=session=1f2e; path=/", f"Cookie={MARK}; path=/"),
        ("sent Bearer eyJhbGciOi.J9 to x", f"sent Bearer {MARK} to x"),
    ],
)
def test_authorization_style_header_values_are_replaced_even_unregistered(
    text: str, expected: str
) -> None:
    assert Redactor().redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Basic authentication failed",
        "401 Unauthorized: token expired",
        "secretRef: Secret 'api' has no key 'tok' (its keys: api-key, token)",
        "the Authorization header must not be written inline",
    ],
)
def test_ordinary_messages_about_credentials_keep_their_words(text: str) -> None:
    assert Redactor().redact(text) == text


def test_values_too_short_to_tell_from_words_are_not_registered() -> None:
    fresh = Redactor()
    fresh.register("abc", "", None)
    assert fresh.values() == ()
    assert fresh.redact("abc abcd") == "abc abcd"


def test_json_values_are_redacted_deeply_and_copied(r: Redactor) -> None:
    document = {"steps": [{"message": f"saw {TOKEN}", "outputs": {TOKEN: [TOKEN, 3, None]}}]}
    assert r.redact_json(document) == {
        "steps": [{"message": f"saw {MARK}", "outputs": {MARK: [MARK, 3, None]}}]
    }
    assert document["steps"][0]["message"] == f"saw {TOKEN}"


def test_the_oldest_values_are_forgotten_past_the_capacity() -> None:
    small = Redactor(capacity=2)
    small.register("first-value-1")
    small.register("second-value")  # two forms: the value and its base64 (no padding)
    assert small.redact("first-value-1 second-value") == f"first-value-1 {MARK}"


# -- the log sink -----------------------------------------------------------------------------


@pytest.fixture
def registered() -> str:
    """A value in the process-wide redactor, which every sink uses."""
    secret = "log-sink-secret-91x"
    redactor().register(secret)
    return secret


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_log_lines_carry_no_registered_value_in_message_args_extras_or_traceback(
    fmt: str, registered: str, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(fmt, logging.INFO)  # type: ignore[arg-type]
    log = logging.getLogger("kubesteps.test")

    log.info("sending %s", registered, extra={"header": f"Bearer {registered}"})
    try:
        raise RuntimeError(f"the server said: {registered}")
    except RuntimeError:
        log.exception("step failed")

    err = capsys.readouterr().err
    assert registered not in err
    if fmt == "json":
        first, second = (json.loads(line) for line in err.splitlines() if line.startswith("{"))
        assert first["message"] == f"sending {MARK}"
        assert first["header"] == f"Bearer {MARK}"
        assert f"RuntimeError: the server said: {MARK}" in second["exception"]
    else:  # the text format shows no extra fields
        assert f"sending {MARK}" in err
        assert f"RuntimeError: the server said: {MARK}" in err


def test_handlers_already_on_the_root_logger_get_the_filter_too(registered: str) -> None:
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(self.format(record))

    other = Collect()
    logging.getLogger().addHandler(other)
    configure_logging("text", logging.INFO)

    logging.getLogger("kopf.objects").warning("retrying with %s", registered)

    assert any(isinstance(f, RedactingFilter) for f in other.filters)
    assert seen == [f"retrying with {MARK}"]
