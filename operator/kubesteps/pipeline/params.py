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

from kubesteps.pipeline.cel_templates import has_template
from kubesteps.pipeline.issues import (
    Issue,
    Loc,
    fields_at,
    issues_from_validation_error,
    raw_fields,
    with_issues,
)
from kubesteps.pipeline.paths import compile_path
from kubesteps.pipeline.quantities import parse_quantity
from kubesteps.pipeline.runs import APPROVAL_PREFIX
from kubesteps.pipeline.suggest import did_you_mean
from kubesteps.pipeline.types import (
    ABSOLUTE_PATH_PATTERN,
    CONFIG_KEY_PATTERN,
    ENV_NAME_PATTERN,
    ENV_PREFIX_PATTERN,
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


_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")
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
                issues.append(
                    Issue(
                        (),
                        (
                            "give either duration (e.g. 30s) or until (an RFC 3339 time, or a "
                            "${ } template giving one), not " + ("both" if given else "neither")
                        ),
                    )
                )
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
            condition, path, value = (
                raw.get(k) is not None for k in ("condition", "jsonPath", "value")
            )
            if condition and (path or value):
                issues.append(Issue((), "use either condition or jsonPath with value, not both"))
            elif not condition and not path:
                issues.append(Issue((), "say what to wait for: condition, or jsonPath with value"))
            elif path != value:
                issues.append(Issue((), "jsonPath and value go together: give both"))
        return with_issues("WaitForParams", data, handler, issues)


class KeyRef(BaseModel):
    """One key of a ConfigMap or Secret in the Pipeline's namespace."""

    model_config = SPEC_CONFIG

    name: DnsSubdomain
    key: Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=CONFIG_KEY_PATTERN)]
    optional: bool = False


class EnvVarSource(BaseModel):
    """Where an environment variable's value comes from: one of a ConfigMap's or a Secret's
    keys."""

    model_config = SPEC_CONFIG

    config_map_key_ref: KeyRef | None = None
    secret_key_ref: KeyRef | None = None

    @model_validator(mode="wrap")
    @classmethod
    def _one_source(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        return with_issues(
            "EnvVarSource", data, handler, _one_of(cls, data, ("configMapKeyRef", "secretKeyRef"))
        )


class EnvVar(BaseModel):
    """An environment variable of the Job's container: a literal value, or one read from a
    ConfigMap or Secret key (``valueFrom``)."""

    model_config = SPEC_CONFIG

    name: Annotated[str, StringConstraints(pattern=ENV_NAME_PATTERN, max_length=256)]
    value: str = ""
    value_from: EnvVarSource | None = None

    @model_validator(mode="wrap")
    @classmethod
    def _value_or_source(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        raw = raw_fields(cls, data) if not isinstance(data, cls) else {}
        issues = []
        if raw.get("value") not in (None, "") and raw.get("valueFrom") is not None:
            issues.append(Issue((), "give value or valueFrom, not both"))
        return with_issues("EnvVar", data, handler, issues)


class NameRef(BaseModel):
    """A whole ConfigMap or Secret in the Pipeline's namespace."""

    model_config = SPEC_CONFIG

    name: DnsSubdomain
    optional: bool = False


class EnvFromSource(BaseModel):
    """Every key of a ConfigMap or Secret as environment variables (named prefix + key)."""

    model_config = SPEC_CONFIG

    config_map_ref: NameRef | None = None
    secret_ref: NameRef | None = None
    prefix: Annotated[str, StringConstraints(max_length=253, pattern=ENV_PREFIX_PATTERN)] = ""

    @model_validator(mode="wrap")
    @classmethod
    def _one_source(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        return with_issues(
            "EnvFromSource", data, handler, _one_of(cls, data, ("configMapRef", "secretRef"))
        )


def _one_of(model: type[BaseModel], data: Any, fields: tuple[str, ...]) -> list[Issue]:
    """The issue when ``data`` (as written) has not exactly one of ``fields``."""
    if isinstance(data, model) or not isinstance(data, Mapping):
        return []
    given = [name for name in fields if raw_fields(model, data).get(name) is not None]
    if len(given) == 1:
        return []
    found = ", ".join(given) if given else "none"
    return [Issue((), f"give exactly one of {', '.join(fields)}; found: {found}")]


def _relative(path: str) -> str:
    if path.startswith("/") or ".." in path.split("/"):
        raise ValueError(
            f"must be a relative path without '..' parts, such as 'conf/app.yaml'; got {path!r}"
        )
    return path


RelativePath = Annotated[
    str, StringConstraints(min_length=1, max_length=1024), AfterValidator(_relative)
]


class KeyToPath(BaseModel):
    """One key of a ConfigMap or Secret volume, as a file at ``path`` in the volume."""

    model_config = SPEC_CONFIG

    key: Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=CONFIG_KEY_PATTERN)]
    path: RelativePath


FileMode = Annotated[int, Field(ge=0, le=0o777)]


class ConfigMapVolume(BaseModel):
    """A ConfigMap's keys as files."""

    model_config = SPEC_CONFIG

    name: DnsSubdomain
    items: list[KeyToPath] = Field(default_factory=list, max_length=64)
    default_mode: FileMode | None = None
    optional: bool = False


class SecretVolume(BaseModel):
    """A Secret's keys as files."""

    model_config = SPEC_CONFIG

    secret_name: DnsSubdomain
    items: list[KeyToPath] = Field(default_factory=list, max_length=64)
    default_mode: FileMode | None = None
    optional: bool = False


class EmptyDirVolume(BaseModel):
    """A scratch directory that lives as long as the Pod."""

    model_config = SPEC_CONFIG

    medium: Literal["", "Memory"] = ""
    size_limit: Quantity | None = None


class ClaimVolume(BaseModel):
    """A PersistentVolumeClaim in the Pipeline's namespace."""

    model_config = SPEC_CONFIG

    claim_name: DnsSubdomain
    read_only: bool = False


_VOLUME_SOURCES = ("configMap", "secret", "emptyDir", "persistentVolumeClaim")


class Volume(BaseModel):
    """A volume of the Job's Pod: a ConfigMap, a Secret, an emptyDir or a
    PersistentVolumeClaim."""

    model_config = SPEC_CONFIG

    name: DnsLabel
    config_map: ConfigMapVolume | None = None
    secret: SecretVolume | None = None
    empty_dir: EmptyDirVolume | None = None
    persistent_volume_claim: ClaimVolume | None = None

    @model_validator(mode="wrap")
    @classmethod
    def _one_source(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        issues = _one_of(cls, data, _VOLUME_SOURCES)
        if issues and isinstance(data, Mapping):
            # A source of Kubernetes' that the job action does not take (hostPath, csi...):
            # say which ones it takes instead of "unknown field".
            others = sorted(set(data) - {"name", *_VOLUME_SOURCES})
            if others:
                data = {k: v for k, v in data.items() if k not in others}
                issues = [
                    Issue(
                        (),
                        (
                            f"volume source {others[0]!r} is not supported by the job action; "
                            f"use one of {', '.join(_VOLUME_SOURCES)}"
                        ),
                    )
                ]
        return with_issues("Volume", data, handler, issues)


class VolumeMount(BaseModel):
    """Where a volume (by name) appears in the container."""

    model_config = SPEC_CONFIG

    name: DnsLabel
    mount_path: Annotated[
        str, StringConstraints(min_length=1, max_length=1024, pattern=ABSOLUTE_PATH_PATTERN)
    ]
    sub_path: RelativePath | None = None
    read_only: bool = False


class Toleration(BaseModel):
    """Lets the Pod run on nodes with a matching taint."""

    model_config = SPEC_CONFIG

    key: Annotated[str, StringConstraints(max_length=316)] = ""
    operator: Literal["Exists", "Equal"] = "Equal"
    value: Annotated[str, StringConstraints(max_length=63)] = ""
    effect: Literal["", "NoSchedule", "PreferNoSchedule", "NoExecute"] = ""
    toleration_seconds: int | None = Field(default=None, ge=0)

    @model_validator(mode="wrap")
    @classmethod
    def _consistent(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        # What the API server would refuse the Job for, said before anything runs.
        raw = raw_fields(cls, data) if not isinstance(data, cls) else {}
        issues = []
        if raw.get("operator") == "Exists" and raw.get("value"):
            issues.append(Issue(("value",), "must be empty when operator is Exists"))
        if raw.get("operator", "Equal") == "Equal" and not raw.get("key"):
            issues.append(
                Issue(
                    ("key",),
                    "required when operator is Equal (the default); "
                    "to tolerate every taint use operator: Exists",
                )
            )
        if raw.get("tolerationSeconds") is not None and raw.get("effect") != "NoExecute":
            issues.append(Issue(("tolerationSeconds",), "only allowed with effect NoExecute"))
        return with_issues("Toleration", data, handler, issues)


class Capabilities(BaseModel):
    """Linux capabilities added to or dropped from the container."""

    model_config = SPEC_CONFIG

    add: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=64
    )
    drop: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=64
    )


class SeccompProfile(BaseModel):
    """The container's seccomp profile."""

    model_config = SPEC_CONFIG

    type: Literal["RuntimeDefault", "Localhost", "Unconfined"]
    localhost_profile: Annotated[str, StringConstraints(max_length=1024)] | None = None


# The Pod Security Standard "restricted", which a Job's container gets unless its step says
# otherwise: any namespace enforcing it admits the Pod.
RESTRICTED_SECURITY_CONTEXT: dict[str, Any] = {
    "runAsNonRoot": True,
    "runAsUser": 65532,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


class SecurityContext(BaseModel):
    """Overrides of the container's restricted security context, field by field."""

    model_config = SPEC_CONFIG

    run_as_non_root: bool | None = None
    run_as_user: int | None = Field(default=None, ge=0, le=2**31 - 1)
    run_as_group: int | None = Field(default=None, ge=0, le=2**31 - 1)
    allow_privilege_escalation: bool | None = None
    read_only_root_filesystem: bool | None = None
    privileged: bool | None = None
    capabilities: Capabilities | None = None
    seccomp_profile: SeccompProfile | None = None

    @model_validator(mode="wrap")
    @classmethod
    def _consistent(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        raw = raw_fields(cls, data) if not isinstance(data, cls) else {}
        issues = []
        if raw.get("runAsUser") == 0 and raw.get("runAsNonRoot", True) is True:
            issues.append(
                Issue(
                    ("runAsUser",),
                    (
                        "0 is root, and runAsNonRoot is true (the default): set "
                        "runAsNonRoot: false too to run as root"
                    ),
                )
            )
        if raw.get("privileged") is True and raw.get("allowPrivilegeEscalation") is not True:
            issues.append(
                Issue(
                    ("privileged",),
                    (
                        "a privileged container can always escalate: set allowPrivilegeEscalation: "
                        "true too"
                    ),
                )
            )
        return with_issues("SecurityContext", data, handler, issues)


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
    def _requests_within_limits(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        # The API server refuses the Job otherwise; say so before anything runs.
        raw = raw_fields(cls, data) if not isinstance(data, cls) else {}
        requests, limits = raw.get("requests"), raw.get("limits")
        issues = []
        if isinstance(requests, Mapping) and isinstance(limits, Mapping):
            for name, request in requests.items():
                limit = limits.get(name)
                if _more(request, limit):
                    issues.append(
                        Issue(
                            ("requests", name),
                            (f"must not be more than limits.{name} ({limit}); got {request!r}"),
                        )
                    )
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
    env_from: list[EnvFromSource] = Field(default_factory=list, max_length=32)
    volumes: list[Volume] = Field(default_factory=list, max_length=32)
    volume_mounts: list[VolumeMount] = Field(default_factory=list, max_length=64)
    node_selector: dict[
        Annotated[str, StringConstraints(min_length=1, max_length=316)],
        Annotated[str, StringConstraints(max_length=63)],
    ] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list, max_length=32)
    pod_annotations: dict[Annotated[str, StringConstraints(min_length=1, max_length=316)], str] = (
        Field(default_factory=dict)
    )
    security_context: SecurityContext | None = None

    @model_validator(mode="wrap")
    @classmethod
    def _mounts_name_volumes(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        raw = raw_fields(cls, data) if not isinstance(data, cls) else {}
        volumes, mounts = raw.get("volumes"), raw.get("volumeMounts")
        issues = []
        names = (
            [v.get("name") for v in volumes if isinstance(v, Mapping)]
            if isinstance(volumes, list)
            else []
        )
        for index, name in enumerate(names):
            if name in names[:index]:
                issues.append(Issue(("volumes", index, "name"), f"{name!r} is given twice"))
        if isinstance(mounts, list):
            for index, mount in enumerate(mounts):
                name = mount.get("name") if isinstance(mount, Mapping) else None
                if isinstance(name, str) and not has_template(name) and name not in names:
                    known = ", ".join(dict.fromkeys(str(n) for n in names)) or "none"
                    issues.append(
                        Issue(
                            ("volumeMounts", index, "name"),
                            (
                                f"no volume named {name!r} in volumes (volumes: {known})"
                                f"{did_you_mean(name, [str(n) for n in names])}"
                            ),
                        )
                    )
        return with_issues("JobParams", data, handler, issues)


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


class PipelineParams(BaseModel):
    """``pipeline``: run another Pipeline as a child and wait for its run to settle.

    Exactly one of ``template`` (a child made from a PipelineTemplate), ``spec`` (a child
    with this spec) or ``ref`` (an existing Pipeline, not owned: a new run of it).
    """

    model_config = SPEC_CONFIG

    template: DnsSubdomain | None = Field(
        default=None, description="A PipelineTemplate of the namespace: the child runs its steps."
    )
    spec: dict[str, Any] | None = Field(
        default=None, description="The child's spec, as a Pipeline's (steps, params...)."
    )
    ref: DnsSubdomain | None = Field(
        default=None, description="An existing Pipeline of the namespace to run (not owned)."
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        max_length=64,
        description="Values for the child's params (the template's, or those of spec.params).",
    )
    name: DnsSubdomain | None = Field(
        default=None,
        description="The child's name (default <pipeline>-<step>-<run number>); not with ref.",
    )

    @model_validator(mode="wrap")
    @classmethod
    def _one_source(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        issues = []
        if not isinstance(data, cls) and isinstance(data, Mapping):
            raw = raw_fields(cls, data)
            given = [key for key in ("template", "spec", "ref") if raw.get(key) is not None]
            if len(given) != 1:
                issues.append(
                    Issue(
                        (),
                        "give exactly one of template, spec or ref; found: "
                        + (", ".join(given) or "none"),
                    )
                )
            if raw.get("ref") is not None and raw.get("name") is not None:
                issues.append(Issue(("name",), "not with ref: ref names the Pipeline"))
        return with_issues("PipelineParams", data, handler, issues)


ACTION_PARAMS: dict[str, type[BaseModel]] = {
    "apply": ApplyParams,
    "approval": ApprovalParams,
    "delay": DelayParams,
    "http": HttpParams,
    "job": JobParams,
    "pipeline": PipelineParams,
    "python": PythonParams,
    "waitFor": WaitForParams,
}


# Parameters passed on as written, ${ } and all: they are another Pipeline's, whose own
# templates its own runs fill in.
UNRENDERED: dict[str, frozenset[str]] = {"pipeline": frozenset({"spec"})}


def rendered_part(action: str, params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``params`` split into what the step renders and what it passes on as written."""
    kept = UNRENDERED.get(action, frozenset())
    return (
        {k: v for k, v in params.items() if k not in kept},
        {k: v for k, v in params.items() if k in kept},
    )


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
