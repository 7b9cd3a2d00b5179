"""Redaction: credentials the operator resolved never leave it in text anyone else can read.

Whoever resolves a credential registers it: the ``http`` action each Secret value it sends,
the API client the operator's own token or password. From then on ``redact`` replaces, in
any text, every registered value and its base64 forms, and, registered or not, the value
of an ``Authorization``-style header (``Authorization: Bearer ...``, ``"X-Api-Key": "..."``,
``Cookie=...``) and a ``Bearer``/``Basic`` credential, with ``<redacted>``. A text cut
short in the middle of a value, marked with an ellipsis as the operator's bounded messages
are, loses the start of the value too.

The sinks apply it: the status writer (every string of every status patch: messages,
outputs, conditions), the Event recorder, the messages handed to kopf, and a logging
filter on every handler ``configure_logging`` installs or finds (messages, arguments,
tracebacks and extra fields). One process-wide redactor serves them all, as logging is
process-wide; ``Redactor`` instances exist for tests and embedding programs.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

MARK = "<redacted>"
# Shorter values cannot be told from ordinary text: replacing them would garble messages
# (a three-letter value occurs in many words). They are not redacted; see docs/security.md.
MIN_LENGTH = 6
# How much of a value's start, at the very end of a text, counts as the value cut short.
MIN_CUT = 6
CAPACITY = 4096

# Header names whose values are credentials, wherever they appear as ``name: value``,
# ``name=value`` or ``"name": "value"`` (an echoed request, a dumped dict, a log line).
_HEADER_NAMES = (
    r"(?:proxy-)?authorization|(?:set-)?cookie|x-api-key|api-key|apikey|x-auth-token"
    r"|x-access-token|private-token|x-vault-token|x-amz-security-token"
)
_HEADER_VALUE = re.compile(
    rf"(?i)(?<![\w-])(?P<name>{_HEADER_NAMES})(?P<sep>['\"]?\s*[:=]\s*['\"]?)"
    r"(?P<value>[^'\"\r\n,;}\]]+)"
)
# ``Bearer abc.def`` anywhere; the credential must look like one (a digit or a symbol in
# it), so that "Basic authentication failed" keeps its words.
_SCHEME_VALUE = re.compile(r"(?i)\b(?P<scheme>bearer|basic)\s+(?P<value>[A-Za-z0-9\-._~+/]{8,}=*)")
_CUT_MARKS = ("…", "...")


def _forms(value: str) -> set[str]:
    """The value and the ways it is commonly written down: base64, padded or not."""
    forms = {value, value.strip()}
    for raw in list(forms):
        encoded = raw.encode()
        for form in (base64.b64encode(encoded), base64.urlsafe_b64encode(encoded)):
            text = form.decode()
            forms.update((text, text.rstrip("=")))
    return {form for form in forms if len(form) >= MIN_LENGTH}


class Redactor:
    """The registered values, and the one pass that removes them (and header values)."""

    def __init__(self, *, capacity: int = CAPACITY) -> None:
        self._capacity = capacity
        # The most recently registered values are kept; older ones go first past capacity.
        self._values: OrderedDict[str, None] = OrderedDict()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()  # kopf's thread and the operator's loop both register

    def register(self, *values: str | None) -> None:
        """Redact each value (and its base64 forms) from now on; short or empty ones are
        ignored (see ``MIN_LENGTH``)."""
        forms = set().union(*(_forms(v) for v in values if v))
        if not forms:
            return
        with self._lock:
            fresh = [form for form in forms if form not in self._values]
            for form in forms:
                self._values[form] = None
                self._values.move_to_end(form)
            while len(self._values) > self._capacity:
                self._values.popitem(last=False)
            if fresh:
                self._pattern = None

    def forget(self) -> None:
        """Drop every registered value (tests)."""
        with self._lock:
            self._values.clear()
            self._pattern = None

    def values(self) -> Iterable[str]:
        return tuple(self._values)

    def redact(self, text: str) -> str:
        """``text`` with every registered value and credential-looking header value replaced."""
        if not text:
            return text
        return _redacted(text, *self._compiled())

    def redact_json(self, value: Any) -> Any:
        """A copy of a JSON-like value with ``redact`` applied to every string in it.

        The registered values are read once for the whole value, and each distinct string
        is redacted once (keys and phases repeat in every record of a status)."""
        pattern, values = self._compiled()
        done: dict[str, str] = {}

        def text(item: str) -> str:
            found = done.get(item)
            if found is None:
                found = done[item] = _redacted(item, pattern, values) if item else item
            return found

        def walk(item: Any) -> Any:
            if isinstance(item, str):
                return text(item)
            if isinstance(item, dict):
                return {text(k) if isinstance(k, str) else k: walk(v) for k, v in item.items()}
            if isinstance(item, list | tuple):
                return [walk(member) for member in item]
            return item

        return walk(value)

    def _compiled(self) -> tuple[re.Pattern[str] | None, tuple[str, ...]]:
        with self._lock:
            values = tuple(self._values)
            if self._pattern is None and values:
                # Longest first: a value that contains another is replaced whole.
                ordered = sorted(values, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(v) for v in ordered))
            return self._pattern, values


def _redacted(text: str, pattern: re.Pattern[str] | None, values: tuple[str, ...]) -> str:
    if pattern is not None:
        text = pattern.sub(MARK, text)
        text = _cut_value_at_end(text, values)
    text = _HEADER_VALUE.sub(_header_mark, text)
    return _SCHEME_VALUE.sub(_scheme_mark, text)


def _cut_value_at_end(text: str, values: Iterable[str]) -> str:
    """Redact the start of a value that a length limit cut off at the end of ``text``
    (a cut that says so, with an ellipsis, as every bounded message here does)."""
    mark = next((cut for cut in _CUT_MARKS if text.endswith(cut)), None)
    if mark is None:
        return text
    body = text[: -len(mark)]
    for value in values:
        for size in range(min(len(value) - 1, len(body)), MIN_CUT - 1, -1):
            if body.endswith(value[:size]):
                return body[:-size] + MARK + mark
    return text


def _header_mark(match: re.Match[str]) -> str:
    if match.group("value").strip() == MARK:
        return match.group(0)
    return f"{match.group('name')}{match.group('sep')}{MARK}"


def _scheme_mark(match: re.Match[str]) -> str:
    value = match.group("value")
    if not re.search(r"[\d\-._~+/=]", value):
        return match.group(0)
    return f"{match.group('scheme')} {MARK}"


_REDACTOR = Redactor()


def redactor() -> Redactor:
    """The process-wide redactor every sink uses."""
    return _REDACTOR


def register(*values: str | None) -> None:
    _REDACTOR.register(*values)


def redact(text: str) -> str:
    return _REDACTOR.redact(text)


def redact_json(value: Any) -> Any:
    return _REDACTOR.redact_json(value)


# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class RedactingFilter(logging.Filter):
    """Redacts a record's message, its traceback and stack, and its ``extra=`` fields.

    On a handler, it sees every record the handler writes, whichever logger it came from
    (a logger's own filters do not see records of its children). It changes the record
    itself, so every handler after it writes the redacted form too.
    """

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor or _REDACTOR

    def filter(self, record: logging.LogRecord) -> bool:
        clean = self.redactor.redact
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: logging reports it when it formats
            return True
        redacted = clean(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = clean(record.exc_text)
        if record.stack_info:
            record.stack_info = clean(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _RECORD_ATTRIBUTES and isinstance(value, str | dict | list | tuple):
                setattr(record, key, self.redactor.redact_json(value))
        return True
