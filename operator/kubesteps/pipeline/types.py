"""Constrained field types shared by the Pipeline model and the action parameter models.

Each type carries three things at once: the check pydantic runs, the JSON schema the CRD is
generated from (a pattern or a CEL rule the API server can enforce), and a human sentence
used when the check fails.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, PlainSerializer, StringConstraints, WithJsonSchema
from pydantic.alias_generators import to_camel

from kubesteps.pipeline.durations import (
    DURATION_PATTERN,
    POSITIVE_DURATION_PATTERN,
    format_duration,
    parse_duration,
)

# Every spec model: camelCase in YAML, snake_case in Python, unknown fields refused, and no
# silent coercion ("3" is not 3, "yes" is not true), so the model agrees with the CRD schema.
SPEC_CONFIG = ConfigDict(
    alias_generator=to_camel,
    populate_by_name=True,
    extra="forbid",
    strict=True,
    frozen=True,
)

DNS1123_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS1123_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
CONDITION_TYPE_PATTERN = r"^[A-Z][A-Za-z0-9]*$"
ACTION_NAME_PATTERN = r"^[a-z][A-Za-z0-9]*$"
CEL_IDENTIFIER_PATTERN = r"^[a-z_][A-Za-z0-9_]*$"
KIND_PATTERN = CONDITION_TYPE_PATTERN
# Python identifiers separated by dots: the name an entry point is registered under.
PYTHON_FUNCTION_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
ENV_NAME_PATTERN = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
ENV_PREFIX_PATTERN = r"^([-._a-zA-Z][-._a-zA-Z0-9]*)?$"
ABSOLUTE_PATH_PATTERN = r"^/"
# A ConfigMap or Secret key.
CONFIG_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"

# What each pattern means, in words, for error messages (pydantic would print the regex).
PATTERN_DESCRIPTIONS: dict[str, str] = {
    DNS1123_LABEL_PATTERN: (
        "a DNS-1123 label: lower-case letters, digits and '-', "
        "starting and ending with a letter or digit"
    ),
    DNS1123_SUBDOMAIN_PATTERN: (
        "a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', "
        "starting and ending with a letter or digit"
    ),
    CONDITION_TYPE_PATTERN: "CamelCase: a capital letter, then letters and digits",
    ACTION_NAME_PATTERN: "a lower-camelCase action name such as 'http' or 'waitFor'",
    CEL_IDENTIFIER_PATTERN: "an identifier: a lower-case letter or '_', then letters, digits, '_'",
    DURATION_PATTERN: "a duration such as 500ms, 30s, 5m or 1h30m",
    POSITIVE_DURATION_PATTERN: "a duration greater than 0 such as 500ms, 30s, 5m or 1h30m",
    PYTHON_FUNCTION_PATTERN: "a dotted Python name such as 'kubesteps.examples.greet'",
    ENV_NAME_PATTERN: "an environment variable name: letters, digits, '-', '.' and '_'",
    ENV_PREFIX_PATTERN: "an environment variable prefix: letters, digits, '-', '.' and '_'",
    ABSOLUTE_PATH_PATTERN: "an absolute path such as /etc/app",
    CONFIG_KEY_PATTERN: "a ConfigMap or Secret key: letters, digits, '-', '.' and '_'",
}

DnsLabel = Annotated[str, StringConstraints(pattern=DNS1123_LABEL_PATTERN, max_length=63)]
ConditionType = Annotated[str, StringConstraints(pattern=CONDITION_TYPE_PATTERN, max_length=63)]
DnsSubdomain = Annotated[str, StringConstraints(pattern=DNS1123_SUBDOMAIN_PATTERN, max_length=253)]
CelIdentifier = Annotated[str, StringConstraints(pattern=CEL_IDENTIFIER_PATTERN, max_length=63)]


def _parse_positive(value: Any) -> Any:
    # Already-parsed values pass through so models can be built from Python too.
    parsed = value if isinstance(value, timedelta) else parse_duration(value)
    if parsed <= timedelta(0):
        raise ValueError(f"must be greater than 0, got {value!r}")
    return parsed


# Every duration in a spec must be > 0: the pattern refuses "0", "0s" and "0.0m" too, so the
# API server refuses them as the operator does (a pattern costs nothing of the CRD's CEL
# budget; see durations.POSITIVE_DURATION_PATTERN).
PositiveDuration = Annotated[
    timedelta,
    BeforeValidator(_parse_positive),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "pattern": POSITIVE_DURATION_PATTERN, "maxLength": 32}),
]
