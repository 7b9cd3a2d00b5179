"""Kubernetes-style API errors: every failure leaves the emulator as a ``Status`` body."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The HTTP status each standard reason travels with on a real API server.
REASON_CODES: dict[str, int] = {
    "BadRequest": 400,
    "Unauthorized": 401,
    "Forbidden": 403,
    "NotFound": 404,
    "MethodNotAllowed": 405,
    "NotAcceptable": 406,
    "AlreadyExists": 409,
    "Conflict": 409,
    "Gone": 410,
    "Expired": 410,
    "UnsupportedMediaType": 415,
    "Invalid": 422,
    "TooManyRequests": 429,
    "InternalError": 500,
    "ServiceUnavailable": 503,
    "Timeout": 504,
}

# The reason a bare HTTP status gets when a caller (fault injection) names only the code.
CODE_REASONS: dict[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Gone",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


@dataclass(frozen=True)
class Cause:
    """One entry of ``details.causes``: which field failed, and why.

    ``message`` is the whole sentence, field first, as the Status message lists it; a
    cause on the wire carries it without the field (kubectl prints ``field: message``,
    which would name the field twice).
    """

    field: str
    message: str
    reason: str = "FieldValueInvalid"

    @property
    def detail(self) -> str:
        prefix = f"{self.field or '<root>'}: "
        return self.message[len(prefix) :] if self.message.startswith(prefix) else self.message

    def to_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.detail, "field": self.field}


@dataclass
class ApiError(Exception):
    """An error answered to the client as a ``Status`` object with the matching HTTP code."""

    reason: str
    message: str
    code: int = 0
    name: str | None = None
    group: str | None = None
    kind: str | None = None
    causes: list[Cause] = field(default_factory=list)
    retry_after: int | None = None

    def __post_init__(self) -> None:
        if not self.code:
            self.code = REASON_CODES.get(self.reason, 500)
        super().__init__(self.message)

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if not self.reason:
            del body["reason"]  # a real server's bare internal errors carry none
        # Empty strings are left out, as a real server's JSON does (a core kind's group,
        # the name of an object posted without one).
        details: dict[str, Any] = {}
        if self.name:
            details["name"] = self.name
        if self.group:
            details["group"] = self.group
        if self.kind:
            details["kind"] = self.kind
        if self.causes:
            details["causes"] = [cause.to_dict() for cause in self.causes]
        if self.retry_after is not None:
            details["retryAfterSeconds"] = self.retry_after
        if details:
            body["details"] = details
        return body


def not_found(plural: str, group: str, name: str) -> ApiError:
    qualified = f"{plural}.{group}" if group else plural
    return ApiError(
        "NotFound",
        f'{qualified} "{name}" not found',
        name=name,
        group=group,
        kind=plural,
    )


def conflict(plural: str, group: str, name: str) -> ApiError:
    qualified = f"{plural}.{group}" if group else plural
    return ApiError(
        "Conflict",
        f'Operation cannot be fulfilled on {qualified} "{name}": the object has been modified;'
        " please apply your changes to the latest version and try again",
        name=name,
        group=group,
        kind=plural,
    )


def invalid(kind: str, group: str, name: str, causes: list[Cause]) -> ApiError:
    """A 422 whose message lists the causes the way kube-apiserver formats them."""
    qualified = f"{kind}.{group}" if group else kind
    summary = ", ".join(cause.message for cause in causes)
    if len(causes) > 1:
        summary = f"[{summary}]"
    return ApiError(
        "Invalid",
        f'{qualified} "{name}" is invalid: {summary}',
        name=name,
        group=group,
        kind=kind,
        causes=causes,
    )
