"""``http``: one HTTP request; the step succeeds when the answer has an expected status.

Credentials come only from a Secret (``secretRef``): a Pipeline is readable by many, so a
token written into it would be too. Only a Secret labelled as an http credential is read
(otherwise anyone who may create a Pipeline could send any Secret of the namespace to any
URL), and its annotation may limit the URLs it goes to. The answer's status, a few headers
and a bounded body become the step's outputs.

Every credential read is registered with the redactor (``kubesteps.telemetry.redaction``)
before it is sent, and the answer is redacted before anything of it is kept: a server that
echoes the request's headers cannot put the credential into a message or the outputs.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import contextlib
import email.utils
import json
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from pydantic import BaseModel
from yarl import URL

from kubesteps.actions.base import ActionContext, Outputs
from kubesteps.actions.common import api_call
from kubesteps.engine import PermanentError, RetryableError
from kubesteps.kube.meta import meta_of
from kubesteps.pipeline.durations import format_duration
from kubesteps.pipeline.params import HttpParams, SecretRef
from kubesteps.telemetry import redaction

log = logging.getLogger("kubesteps.actions.http")

# Key in ``ActionContext.extras`` of an ``aiohttp.ClientSession`` to share between calls
# (connection reuse); without one, each call opens and closes its own.
HTTP_SESSION = "http_session"

# The label a Secret needs before an http step may send it anywhere, and the annotation
# that, when present, lists the URL prefixes it may be sent to.
CREDENTIAL_LABEL = "kubesteps.dev/http-credential"
ALLOWED_URLS_ANNOTATION = "kubesteps.dev/allowed-urls"

BODY_CAP = 4096
HEADER_COUNT_CAP = 16
HEADER_VALUE_CAP = 256
SNIPPET_CAP = 200
# Answer headers that may carry credentials or session state are never copied to outputs
# (outputs end up in the Pipeline's status, readable by anyone who can read the Pipeline).
_SENSITIVE_HEADER_PARTS = ("auth", "cookie", "token", "secret", "key", "session")


class HttpAction:
    name: str = "http"
    params: type[BaseModel] = HttpParams

    async def run(self, ctx: ActionContext, params: HttpParams) -> Outputs:
        headers = dict(params.headers)
        if params.secret_ref is not None:
            ref = params.secret_ref
            credential = await _read_secret(ctx, ref, params.url)
            headers[ref.header] = f"{ref.scheme} {credential}" if ref.scheme else credential
        target = f"{params.method} {_redacted(params.url)}"
        shared = ctx.extras.get(HTTP_SESSION)
        try:
            if isinstance(shared, aiohttp.ClientSession):
                answer = await _send(shared, params, headers)
            else:
                async with aiohttp.ClientSession() as session:
                    answer = await _send(session, params, headers)
        except aiohttp.InvalidURL as err:
            # Not the URL itself in the message: its query may hold a credential.
            raise PermanentError(f"{target}: not a valid URL") from err
        except TimeoutError as err:
            raise RetryableError(
                f"{target}: no answer within {format_duration(params.timeout)}"
            ) from err
        except aiohttp.ClientError as err:
            reason = str(err) or type(err).__name__
            raise RetryableError(f"{target}: request failed: {reason}") from err
        except ValueError as err:  # aiohttp refuses header values with line breaks and the like
            raise PermanentError(f"{target}: the request could not be sent: {err}") from err

        if not any(low <= answer.status <= high for low, high in params.expected_status):
            _refuse(ctx, target, answer, params.expected_status)
        outputs: Outputs = redaction.redact_json(
            {
                "status": answer.status,
                "headers": answer.headers,
                "body": answer.body,
                "bodyTruncated": answer.truncated,
            }
        )
        return outputs


class _Answer:
    __slots__ = ("body", "headers", "retry_after", "status", "text", "truncated")

    def __init__(
        self,
        status: int,
        headers: dict[str, str],
        raw: bytes,
        truncated: bool,
        charset: str | None,
        content_type: str,
        retry_after: str | None,
    ) -> None:
        self.status = status
        self.headers = headers
        self.truncated = truncated
        self.retry_after = retry_after
        self.text = raw.decode(_codec(charset), errors="replace")
        self.body: Any = self.text
        if not truncated and _is_json(content_type) and self.text.strip():
            # A server that mislabels its body: keep it as text.
            with contextlib.suppress(ValueError):
                self.body = json.loads(self.text)


async def _send(
    session: aiohttp.ClientSession, params: HttpParams, headers: Mapping[str, str]
) -> _Answer:
    options: dict[str, Any] = {
        "headers": headers,
        "timeout": aiohttp.ClientTimeout(total=params.timeout.total_seconds()),
        # A redirect would carry the credential to wherever it points: with one, the
        # redirect itself is the answer.
        "allow_redirects": params.secret_ref is None,
    }
    if isinstance(params.body, str):
        options["data"] = params.body.encode()
    elif params.body is not None:
        options["json"] = params.body
    async with session.request(params.method, params.url, **options) as response:
        raw, truncated = await _read_capped(response.content, BODY_CAP)
        return _Answer(
            response.status,
            _kept_headers(response.headers),
            raw,
            truncated,
            response.charset,
            response.content_type,
            response.headers.get("Retry-After"),
        )


async def _read_capped(stream: aiohttp.StreamReader, cap: int) -> tuple[bytes, bool]:
    """At most ``cap`` bytes, and whether there was more (the rest is never downloaded)."""
    data = bytearray()
    while len(data) <= cap:
        chunk = await stream.read(cap + 1 - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data[:cap]), len(data) > cap


def _refuse(
    ctx: ActionContext, target: str, answer: _Answer, expected: list[tuple[int, int]]
) -> NoReturn:
    wanted = ", ".join(str(low) if low == high else f"{low}-{high}" for low, high in expected)
    # Redacted before it is cut: a cut inside a credential would leave its start behind.
    snippet = " ".join(redaction.redact(answer.text).split())[:SNIPPET_CAP]
    message = f"{target} answered {answer.status}, expected {wanted}"
    if snippet:
        message += f": {snippet}"
    if answer.status == 429 or answer.status >= 500:
        raise RetryableError(message, _retry_after(answer.retry_after, ctx.clock()))
    raise PermanentError(message)


async def _read_secret(ctx: ActionContext, ref: SecretRef, url: str) -> str:
    kube = ctx.require_kube()
    where = f"Secret {ref.name!r} in namespace {ctx.namespace!r}"
    with api_call(f"secretRef: reading {where}"):
        secret = await kube.get("v1", "Secret", ref.name, ctx.namespace)
    if secret is None:
        raise PermanentError(f"secretRef: {where} does not exist")
    meta = meta_of(secret)
    if meta.labels.get(CREDENTIAL_LABEL) != "true":
        # Status messages are cut at 300 characters: the fix comes first, the why in the docs.
        raise PermanentError(
            f"secretRef: {where} is not labelled {CREDENTIAL_LABEL}=true, which a Secret needs "
            "before http steps may send it; if it is meant for them: kubectl label secret "
            f"{ref.name} -n {ctx.namespace} {CREDENTIAL_LABEL}=true"
        )
    allowed = meta.annotations.get(ALLOWED_URLS_ANNOTATION)
    if allowed is not None:
        _check_allowed_url(url, allowed, where)
    data = secret.get("data") or {}
    if ref.key not in data:
        keys = ", ".join(sorted(data)) or "none"
        raise PermanentError(f"secretRef: {where} has no key {ref.key!r} (its keys: {keys})")
    try:
        value = base64.b64decode(data[ref.key], validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, TypeError) as err:
        raise PermanentError(
            f"secretRef: key {ref.key!r} of {where} is not base64-encoded UTF-8 text"
        ) from err
    # A trailing newline (echo token > file) would make an invalid header value.
    credential = value.strip()
    redaction.register(credential, value, str(data[ref.key]))
    if len(credential) < redaction.MIN_LENGTH:
        log.warning(
            "secretRef: key %r of %s is shorter than %d characters: it is sent, but "
            "cannot be redacted from messages and logs",
            ref.key,
            where,
            redaction.MIN_LENGTH,
        )
    return credential


def _check_allowed_url(url: str, allowed: str, where: str) -> None:
    """Refuse ``url`` unless it starts with one of the comma-separated prefixes in ``allowed``.

    Compared part by part, as the request will be sent (scheme, host and port exactly; the
    path from its start, segment by segment, after ``..`` is resolved), so that neither
    ``https://api.example.com.evil.net`` nor ``https://api.example.com/v1/../admin`` passes
    for ``https://api.example.com/v1/``.
    """
    prefixes = [part.strip() for part in allowed.split(",") if part.strip()]
    rule = f"its annotation {ALLOWED_URLS_ANNOTATION} allows only {', '.join(prefixes) or 'none'}"
    usable: list[URL] = []
    unusable: list[str] = []
    for prefix in prefixes:
        parsed = _prefix_url(prefix)
        if parsed is None:
            unusable.append(prefix)
        else:
            usable.append(parsed)
    if unusable:
        rule += f" ({', '.join(unusable)}: not an http(s) URL with a host and no query)"
    try:
        target: URL | None = URL(url)
    except ValueError:
        target = None  # matches no prefix
    if target is not None and any(_url_starts_with(target, prefix) for prefix in usable):
        return
    raise PermanentError(f"secretRef: {where} may not be sent to {_redacted(url)}: {rule}")


def _prefix_url(prefix: str) -> URL | None:
    try:
        parsed = URL(prefix)
    except ValueError:
        return None
    if parsed.scheme.lower() not in ("http", "https") or not parsed.host:
        return None
    if parsed.user is not None or parsed.query_string or parsed.fragment:
        return None
    return parsed


def _url_starts_with(url: URL, prefix: URL) -> bool:
    same_origin = (
        url.scheme.lower() == prefix.scheme.lower()
        and (url.host or "").lower() == (prefix.host or "").lower()
        and url.port == prefix.port
    )
    if not same_origin:
        return False
    base = prefix.path
    if base in ("", "/") or url.path == base:
        return True
    return url.path.startswith(base if base.endswith("/") else base + "/")


def _kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    kept: dict[str, str] = {}
    for name, value in headers.items():
        lowered = name.lower()
        if any(part in lowered for part in _SENSITIVE_HEADER_PARTS) or lowered in kept:
            continue
        kept[lowered] = value[:HEADER_VALUE_CAP]
        if len(kept) >= HEADER_COUNT_CAP:
            break
    return kept


def _retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), if usable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


def _redacted(url: str) -> str:
    """The URL without user info and query, which may hold credentials, for messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<an invalid URL>"
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")


def _codec(charset: str | None) -> str:
    """The answer's declared charset when Python knows it, else UTF-8."""
    if charset:
        try:
            return codecs.lookup(charset).name
        except LookupError:
            pass
    return "utf-8"
