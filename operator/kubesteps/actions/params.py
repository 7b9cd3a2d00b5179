"""The ``with`` parameters of each built-in action, as pydantic models, and their registry.

These models are the contract between a Pipeline's spec and the action runtimes: the spec
validator checks ``with`` against them before anything runs, and a runtime validates the
rendered ``with`` (after ``${ }`` templates are filled in) with the same model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    ModelWrapValidatorHandler,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from yarl import URL

from kubesteps.actions.paths import compile_path
from kubesteps.actions.quantities import parse_quantity
from kubesteps.pipeline.cel import has_template
from kubesteps.pipeline.issues import (
    Issue,
    Loc,
    fields_at,
    issues_from_validation_error,
    raw_fields,
    with_issues,
)
from kubesteps.pipeline.runs import APPROVAL_PREFIX
from kubesteps.pipeline.suggest import did_you_mean
from kubesteps.pipeline.types import (
    ENV_NAME_PATTERN,
    KIND_PATTERN,
    PATTERN_DESCRIPTIONS,
    PYTHON_FUNCTION_PATTERN,
    SPEC_CONFIG,
    DnsLabel,
    DnsSubdomain,
    PositiveDuration,
)

APPROVAL_ANNOTATION_PREFIX = APPROVAL_PREFIX
# The part of an annotation key after the "/" holds at most 63 characters.
MAX_APPROVAL_STEP_NAME = 63 - len("approve.")


def _rfc3339(value: Any) -> Any:
    """An RFC 3339 time with an offset (``2026-12-03T15:00:00Z``) as an aware datetime."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and _RFC3339.fullmatch(value):
        parsed = datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    else:
        raise ValueError(
            "must be an RFC 3339 time with a time zone such as 2026-12-03T15:00:00Z, or a "
            f"${{ }} template giving one; got {value!r}"
        )
    if parsed.tzinfo is None:
        raise ValueError(f"must carry a time zone (Z or +01:00); got {value!r}")
    return parsed


_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})"
)
Rfc3339Time = Annotated[datetime, BeforeValidator(_rfc3339)]


class DelayParams(BaseModel):
    """``delay``: wait for a duration or until a time, then succeed (without blocking: the
    step waits by requeue)."""

    model_config = SPEC_CONFIG

    duration: PositiveDuration | None = None
    until: Rfc3339Time | None = None

    @model_validator(mode="wrap")
    @classmethod
    def _one_of(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        issues = []
        if not isinstance(data, cls) and isinstance(data, Mapping):
            given = [key for key in ("duration", "until") if data.get(key) is not None]
            if len(given) != 1:
                issues.append(Issue((), (
                    "give either duration (e.g. 30s) or until (an RFC 3339 time, or a "
                    "${ } template giving one), not "
                    + ("both" if given else "neither"))))
        return with_issues("DelayParams", data, handler, issues)


class SecretRef(BaseModel):
    """Credentials for an http call, read from a Secret in the Pipeline's namespace."""

    model_config = SPEC_CONFIG

    name: DnsSubdomain
    key: Annotated[str, StringConstraints(min_length=1, max_length=253)]
    header: Annotated[str, StringConstraints(min_length=1, max_length=256)] = "Authorization"
    scheme: Annotated[str, StringConstraints(max_length=64)] = "Bearer"


def _parse_status_range(value: Any) -> Any:
    """``200`` -> (200, 200); ``"200-299"`` -> (200, 299); ``"2xx"`` -> (200, 299)."""
    if isinstance(value, bool):
        raise ValueError("must be a status code like 200, a range like '200-299', or '2xx'")
    if isinstance(value, int):
        low = high = value
    elif isinstance(value, str) and re.fullmatch(r"[1-5]xx", value):
        low, high = int(value[0]) * 100, int(value[0]) * 100 + 99
    elif isinstance(value, str) and re.fullmatch(r"\d{3}-\d{3}", value):
        low, high = (int(part) for part in value.split("-"))
    else:
        raise ValueError(
            f"must be a status code like 200, a range like '200-299', or '2xx'; got {value!r}"
        )
    if not (100 <= low <= high <= 599):
        raise ValueError(f"must lie within 100..599 with the low end first; got {value!r}")
    return (low, high)


StatusRange = Annotated[tuple[int, int], BeforeValidator(_parse_status_range)]


class HttpParams(BaseModel):
    """``http``: one HTTP request; the step succeeds when the status is expected."""

    model_config = SPEC_CONFIG

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    url: Annotated[str, StringConstraints(max_length=2048)]
    headers: dict[str, Annotated[str, StringConstraints(max_length=8192)]] = Field(
        default_factory=dict
    )
    body: Any = Field(default=None, description="A string, or an object sent as JSON.")
    expected_status: list[StatusRange] = Field(
        default_factory=lambda: [(200, 299)], min_length=1, max_length=32
    )
    timeout: PositiveDuration = timedelta(seconds=30)
    secret_ref: SecretRef | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not re.match(r"^https?://[^/\s]+", url):
            raise ValueError(f"must be an http:// or https:// URL with a host; got {url!r}")
        try:  # what the request will do with it: e.g. a malformed port or IPv6 address
            host = URL(url).host
        except ValueError as err:
            raise ValueError(f"is not a valid URL: {err}") from None
        if not host:
            raise ValueError(f"must be an http:// or https:// URL with a host; got {url!r}")
        return url

    @field_validator("body")
    @classmethod
    def _text_or_object(cls, body: Any) -> Any:
        if body is not None and not isinstance(body, str | dict):
            raise ValueError(
                f"must be a string or an object (sent as JSON), got {type(body).__name__}"
            )
        return body

    @field_validator("headers")
    @classmethod
    def _no_inline_credentials(cls, headers: dict[str, str]) -> dict[str, str]:
        for name in headers:
            if name.lower() in ("authorization", "proxy-authorization"):
                raise ValueError(
                    f"the {name} header must not be written inline (it would be readable by "
                    "anyone who can read the Pipeline); put the credential in a Secret and "
                    "use secretRef: {name, key}"
                )
        return headers

    @model_validator(mode="wrap")
    @classmethod
    def _body_needs_method(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        raw = raw_fields(cls, data) if not isinstance(data, cls) else {}
        method = raw.get("method", "GET")
        issues = []
        if raw.get("body") is not None and method in ("GET", "HEAD"):
            issues.append(Issue(("body",), f"a body is not allowed with method {method}"))
        return with_issues("HttpParams", data, handler, issues)


class ManifestMetadata(BaseModel):
    """The part of a manifest's metadata the apply action needs to find the object again."""

    model_config = {**SPEC_CONFIG, "extra": "allow"}

    name: DnsSubdomain


class Manifest(BaseModel):
    """A Kubernetes object to apply; besides these fields it may have any content."""

    model_config = {**SPEC_CONFIG, "extra": "allow"}

    api_version: Annotated[str, StringConstraints(min_length=1, max_length=253)]
    kind: Annotated[str, StringConstraints(pattern=KIND_PATTERN, max_length=63)]
    metadata: ManifestMetadata


class ApplyParams(BaseModel):
    """``apply``: create or update one object (server-side apply)."""

    model_config = SPEC_CONFIG

    manifest: Manifest
    owned: bool = Field(
        default=True, description="Set the Pipeline as owner, so deleting it deletes the object."
    )
    namespace: DnsLabel | None = Field(
        default=None, description="Where to apply (default: the manifest's, then the Pipeline's)."
    )


class ConditionMatch(BaseModel):
    """Wait until ``status.conditions`` has this type with this status."""

    model_config = SPEC_CONFIG

    type: Annotated[str, StringConstraints(min_length=1, max_length=316)]
    status: Literal["True", "False", "Unknown"] = "True"


class WaitForParams(BaseModel):
    """``waitFor``: wait (by requeue) until an object reaches a state."""

    model_config = SPEC_CONFIG

    api_version: Annotated[str, StringConstraints(min_length=1, max_length=253)]
    kind: Annotated[str, StringConstraints(pattern=KIND_PATTERN, max_length=63)]
    name: DnsSubdomain
    namespace: DnsLabel | None = None
    condition: ConditionMatch | None = None
    json_path: Annotated[str, StringConstraints(min_length=1, max_length=1024)] | None = None
    value: str | None = None
    timeout: PositiveDuration | None = None

    @field_validator("json_path")
    @classmethod
    def _compiles(cls, path: str | None) -> str | None:
        if path is not None:
            compile_path(path)
        return path

    @model_validator(mode="wrap")
    @classmethod
    def _one_test(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        issues = []
        if not isinstance(data, cls) and isinstance(data, Mapping):
            raw = raw_fields(cls, data)
            condition, path, value = (raw.get(k) is not None
                                      for k in ("condition", "jsonPath", "value"))
            if condition and (path or value):
                issues.append(Issue((), "use either condition or jsonPath with value, not both"))
            elif not condition and not path:
                issues.append(
                    Issue((), "say what to wait for: condition, or jsonPath with value"))
            elif path != value:
                issues.append(Issue((), "jsonPath and value go together: give both"))
        return with_issues("WaitForParams", data, handler, issues)


class EnvVar(BaseModel):
    """An environment variable of the Job's container (a literal value)."""

    model_config = SPEC_CONFIG

    name: Annotated[str, StringConstraints(pattern=ENV_NAME_PATTERN, max_length=256)]
    value: str = ""


def _quantity(text: str) -> str:
    if parse_quantity(text) < 0:
        raise ValueError(f"must not be negative; got {text!r}")
    return text


Quantity = Annotated[str, StringConstraints(max_length=64), AfterValidator(_quantity)]
ResourceName = Literal["cpu", "memory", "ephemeral-storage"]


class ResourceRequirements(BaseModel):
    """CPU/memory requests and limits, as Kubernetes quantities ("500m", "1Gi")."""

    model_config = SPEC_CONFIG

    requests: dict[ResourceName, Quantity] = Field(default_factory=dict)
    limits: dict[ResourceName, Quantity] = Field(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _requests_within_limits(
        cls, data: Any, handler: ModelWrapValidatorHandler[Self]
    ) -> Self:
        # The API server refuses the Job otherwise; say so before anything runs.
        raw = raw_fields(cls, data) if not isinstance(data, cls) else {}
        requests, limits = raw.get("requests"), raw.get("limits")
        issues = []
        if isinstance(requests, Mapping) and isinstance(limits, Mapping):
            for name, request in requests.items():
                limit = limits.get(name)
                if _more(request, limit):
                    issues.append(Issue(("requests", name), (
                        f"must not be more than limits.{name} ({limit}); got {request!r}")))
        return with_issues("ResourceRequirements", data, handler, issues)


def _more(request: Any, limit: Any) -> bool:
    """Whether a request is more than its limit (False when either is malformed)."""
    try:
        return bool(parse_quantity(request) > parse_quantity(limit))
    except (TypeError, ValueError):
        return False


class JobParams(BaseModel):
    """``job``: run a container as a Kubernetes Job and wait (by requeue) for it to finish."""

    model_config = SPEC_CONFIG

    image: Annotated[str, StringConstraints(min_length=1, max_length=1024, pattern=r"^\S+$")]
    command: list[str] = Field(default_factory=list)
    args: list[str] = Field(default_factory=list)
    env: list[EnvVar] = Field(default_factory=list)
    resources: ResourceRequirements | None = None
    backoff_limit: int = Field(default=0, ge=0, le=100)
    active_deadline_seconds: int | None = Field(default=None, ge=1)
    ttl_seconds_after_finished: int | None = Field(default=3600, ge=0)
    service_account_name: DnsSubdomain | None = None


class ApprovalParams(BaseModel):
    """``approval``: wait until someone sets ``kubesteps.dev/approve.<step>`` on the Pipeline."""

    model_config = SPEC_CONFIG

    message: Annotated[str, StringConstraints(max_length=1024)] = "waiting for approval"


class PythonParams(BaseModel):
    """``python``: call a function registered in the ``kubesteps.actions`` entry-point group.

    Only the name's syntax is checked here; a function that is not installed is reported
    when the step runs, as that step's failure.
    """

    model_config = SPEC_CONFIG

    function: Annotated[str, StringConstraints(pattern=PYTHON_FUNCTION_PATTERN, max_length=256)]
    args: dict[str, Any] = Field(default_factory=dict)


ACTION_PARAMS: dict[str, type[BaseModel]] = {
    "apply": ApplyParams,
    "approval": ApprovalParams,
    "delay": DelayParams,
    "http": HttpParams,
    "job": JobParams,
    "python": PythonParams,
    "waitFor": WaitForParams,
}


def approval_annotation(step_name: str) -> str:
    """The annotation that approves ``step_name``."""
    return APPROVAL_ANNOTATION_PREFIX + step_name


def known_actions() -> list[str]:
    """The built-in action names, sorted."""
    return sorted(ACTION_PARAMS)


def unknown_action(action: str) -> str:
    """The message for an action name that is not built in."""
    hint = did_you_mean(action, known_actions())
    if hint:
        return f"unknown action {action!r}{hint}"
    return f"unknown action {action!r}; known actions: {', '.join(known_actions())}"


def validate_params(action: str, params: Mapping[str, Any] | None, *, loc: Loc = ()) -> list[Issue]:
    """Check a step's ``action`` and ``with`` (``loc`` is the step's location).

    A value that uses a ``${ }`` template cannot be checked before it is rendered, so
    problems at (or inside) such a value are left to the run-time check of the rendered
    parameters.
    """
    model = ACTION_PARAMS.get(action)
    if model is None:
        return [Issue((*loc, "action"), unknown_action(action))]
    try:
        model.model_validate(dict(params or {}))
    except ValidationError as error:
        return [
            issue
            for issue in issues_from_validation_error(
                error,
                prefix=(*loc, "with"),
                allowed_fields=lambda inner: fields_at(model, inner),
                pattern_descriptions=PATTERN_DESCRIPTIONS,
            )
            if not _templated(params, issue.loc[len(loc) + 1 :])
        ]
    return []


def _templated(params: Mapping[str, Any] | None, loc: Loc) -> bool:
    node: Any = params
    for part in loc:
        if has_template(node):
            return True
        in_mapping = isinstance(node, Mapping) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if not (in_mapping or in_list):
            return False
        node = node[part]
    return has_template(node)
