"""Validate a Pipeline manifest: the one gate between a user's YAML and the engine.

``validate(manifest)`` returns the parsed ``Pipeline``, or every problem found, each with a
field path (``spec.steps[1].parallel.steps[0].throttle.interval``) and a message that says
what is wrong and what is allowed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from kubesteps.pipeline.issues import fields_at, format_path, issues_from_validation_error
from kubesteps.pipeline.model import Pipeline
from kubesteps.pipeline.types import PATTERN_DESCRIPTIONS

MAX_MANIFEST_BYTES = 256 * 1024


@dataclass(frozen=True)
class SpecError:
    """One problem in a manifest: where (a field path) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def validate(manifest: Any) -> Pipeline | list[SpecError]:
    """Parse ``manifest`` (a dict, as loaded from YAML or the API) into a ``Pipeline``."""
    if not isinstance(manifest, Mapping):
        return [
            SpecError("", f"a Pipeline manifest must be an object, got {type(manifest).__name__}")
        ]
    size = len(json.dumps(manifest, separators=(",", ":"), default=str).encode())
    if size > MAX_MANIFEST_BYTES:
        return [
            SpecError(
                "",
                f"the manifest is {size // 1024} KiB as JSON; at most "
                f"{MAX_MANIFEST_BYTES // 1024} KiB is allowed (split the pipeline up)",
            )
        ]
    try:
        return Pipeline.model_validate(dict(manifest))
    except ValidationError as error:
        return [
            SpecError(format_path(issue.loc), issue.message)
            for issue in issues_from_validation_error(
                error,
                allowed_fields=lambda loc: fields_at(Pipeline, loc),
                pattern_descriptions=PATTERN_DESCRIPTIONS,
            )
        ]


_INDEX = re.compile(r"^(?P<key>[^\[]+)((?:\[\d+\])*)$")


def step_at(manifest: Any, path: str) -> str | None:
    """The name of the innermost named step that ``path`` points into, if any.

    For messages: ``spec.steps[0].group.steps[1].with.url`` is in step ``fetch``.
    """
    node: Any = manifest
    found: str | None = None
    for part in path.split("."):
        match = _INDEX.match(part)
        if match is None:
            return found
        key, indexes = match.group("key"), re.findall(r"\[(\d+)\]", part)
        node = node.get(key) if isinstance(node, Mapping) else None
        for index in indexes:
            node = node[int(index)] if isinstance(node, list) and int(index) < len(node) else None
        if key == "steps" and isinstance(node, Mapping) and isinstance(node.get("name"), str):
            found = node["name"]
    return found
