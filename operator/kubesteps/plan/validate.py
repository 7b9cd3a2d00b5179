"""Validate a Pipeline manifest: the one gate between a user's YAML and the engine.

``prepare(manifest)`` is the check `kubesteps validate`, `kubesteps run` and the operator
all use: it parses the manifest (every field, every whole-tree rule, every action's
parameters, every CEL expression that can be checked before it runs) and builds the engine
steps, so whatever the operator would refuse is refused here, with the same message. It
returns the parsed ``Pipeline`` and its plan, or every problem found, sorted by field path,
each with a path (``spec.steps[1].parallel.steps[0].throttle.interval``), a message that
says what is wrong and what is allowed, and the step it is in. ``validate`` is the same
check for callers that need only the verdict.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from kubesteps.engine import StepsEngine
from kubesteps.pipeline.cel_compile import CelError
from kubesteps.pipeline.issues import (
    Loc,
    fields_at,
    format_path,
    issues_from_validation_error,
    unknown_field,
)
from kubesteps.pipeline.model import API_VERSION, KIND, Pipeline
from kubesteps.pipeline.suggest import closest
from kubesteps.pipeline.template import TEMPLATE_KIND, PipelineTemplate, check_uses, uses_of
from kubesteps.pipeline.types import PATTERN_DESCRIPTIONS
from kubesteps.plan.build import Plan, build, params_of

MAX_MANIFEST_BYTES = 256 * 1024
GROUP = API_VERSION.split("/")[0]
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# A status message names this many problems, then how many more there are.
SHOWN_PROBLEMS = 20


@dataclass(frozen=True)
class SpecError:
    """One problem in a manifest: where (a field path), what, and in which step."""

    path: str
    message: str
    step: str | None = None

    def __str__(self) -> str:
        text = f"{self.path}: {self.message}" if self.path else self.message
        return f"{text} [step {self.step!r}]" if self.step else text


@dataclass(frozen=True)
class Prepared:
    """A valid Pipeline and the engine steps that run it."""

    pipeline: Pipeline
    plan: Plan


def validate(
    manifest: Any, templates: Mapping[str, PipelineTemplate] | None = None
) -> Pipeline | list[SpecError]:
    """The parsed ``Pipeline``, or every problem of ``manifest`` (see ``prepare``)."""
    prepared = prepare(manifest, templates)
    return prepared if isinstance(prepared, list) else prepared.pipeline


def prepare(
    manifest: Any, templates: Mapping[str, PipelineTemplate] | None = None
) -> Prepared | list[SpecError]:
    """Check ``manifest`` (a dict, as loaded from YAML or read from the API) completely and
    build its engine steps; or say everything that is wrong with it.

    ``templates``: the PipelineTemplates of the Pipeline's namespace by name, for its uses
    steps; without them, a Pipeline that uses one cannot be checked completely, and says
    so (one problem per template)."""
    parsed = _parse(manifest)
    if isinstance(parsed, list):
        return _sorted(manifest, parsed)
    stored = _as_stored(manifest)
    spec = manifest["spec"]
    uses = uses_of(spec)
    if uses and templates is None:
        return _sorted(
            manifest,
            [
                SpecError(
                    format_path(("spec", *use.loc, "uses", "template")),
                    f"uses PipelineTemplate {use.template!r}, which cannot be read here: "
                    "give the templates (kubesteps validate --templates DIR, or in the same "
                    "file) or check against a cluster (--cluster)",
                )
                for use in {use.template: use for use in reversed(uses)}.values()
            ],
        )
    if uses and templates is not None:
        static_vars = {"self": stored, "steps": {}, "params": params_of(stored)}
        issues = check_uses(spec, templates, static_vars, parsed.metadata.namespace or "default")
        if issues:
            return _sorted(
                manifest, [SpecError(format_path(("spec", *i.loc)), i.message) for i in issues]
            )
    try:
        plan = build(parsed.spec, stored, templates if uses else None)
        StepsEngine(plan.steps, max_concurrency=plan.max_concurrency)  # the engine's checks
    except CelError as error:  # a static template no value can fill
        found = SpecError(error.path, f"{error.message} in CEL expression {error.expression!r}")
        return _sorted(manifest, [found])
    except ValueError as error:
        return _sorted(manifest, [SpecError("spec", str(error))])
    return Prepared(parsed, plan)


def problems_message(errors: list[SpecError]) -> str:
    """The problems in one line, as a status condition shows them."""
    message = "; ".join(str(error) for error in errors[:SHOWN_PROBLEMS])
    if len(errors) > SHOWN_PROBLEMS:
        message += f"; and {len(errors) - SHOWN_PROBLEMS} more"
    return message


def _parse(manifest: Any) -> Pipeline | list[SpecError]:
    if not isinstance(manifest, Mapping):
        return [
            SpecError("", f"a Pipeline manifest must be an object, got {type(manifest).__name__}")
        ]
    size = len(json.dumps(_as_written(manifest), separators=(",", ":"), default=str).encode())
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


def _as_written(manifest: Mapping[str, Any]) -> Mapping[str, Any]:
    """The manifest as its author wrote it: a stored object also has a status, managed
    fields and kubectl's copy of the manifest, which must not count against its size."""
    meta = manifest.get("metadata")
    if not isinstance(meta, Mapping):
        return {k: v for k, v in manifest.items() if k != "status"}
    annotations = meta.get("annotations")
    written = {k: v for k, v in meta.items() if k != "managedFields"}
    if isinstance(annotations, Mapping):
        written["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    return {**{k: v for k, v in manifest.items() if k != "status"}, "metadata": written}


def _as_stored(manifest: Mapping[str, Any]) -> Mapping[str, Any]:
    """The manifest with the metadata an API server adds, where it has none yet.

    Templates built into the steps (``throttle.partitionKey``) may read them; a manifest
    from a file must not fail where the stored object would not.
    """
    meta = dict(manifest.get("metadata") or {})
    added = {
        "uid": "",
        "resourceVersion": "",
        "generation": 1,
        "creationTimestamp": "1970-01-01T00:00:00Z",
    }
    if all(key in meta for key in added):
        return manifest
    return {**manifest, "metadata": {**added, **meta}}


def _sorted(manifest: Any, errors: list[SpecError]) -> list[SpecError]:
    """Each problem once, with its step, in field-path order (indexes as numbers)."""
    named = {
        SpecError(e.path, e.message, e.step or step_at(manifest, e.path)): None for e in errors
    }
    return sorted(named, key=lambda error: _path_key(error.path))


def _path_key(path: str) -> tuple[tuple[int, int, str], ...]:
    return tuple(
        (0, int(index), "") if index else (1, 0, key)
        for key, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path)
    )


# -- which documents are Pipelines -----------------------------------------------------------


def addressed(document: Any) -> bool:
    """Whether ``document`` is meant to be a kubesteps Pipeline, typos included.

    Any kind in the ``kubesteps.dev`` group, ``kind: Pipeline`` (or one edit away) without
    another group, and a group one typo away from ``kubesteps.dev`` are ours: checking them
    finds the typo. ``kind: Pipeline`` of another group (``tekton.dev/v1``) is not.
    """
    if not isinstance(document, Mapping):
        return False
    api_version, kind = document.get("apiVersion"), document.get("kind")
    group = api_version.rpartition("/")[0] if isinstance(api_version, str) else ""
    if group == GROUP:
        return True
    if not (kind == KIND or (isinstance(kind, str) and closest(kind, [KIND]) is not None)):
        return False
    return not group or closest(group, [GROUP]) is not None


# -- fields the API server dropped -----------------------------------------------------------


def pruned_fields(body: Mapping[str, Any]) -> list[SpecError]:
    """Fields the user applied that the stored object lacks, because the CRD has no such
    field (the API server prunes unknown fields, silently with ``--validate=false``).

    The user's manifest is kubectl's last-applied configuration; only fields unknown to the
    schema count, so a field removed on purpose since (``kubectl patch``) is no problem.
    """
    meta = body.get("metadata") or {}
    text = (meta.get("annotations") or {}).get(LAST_APPLIED)
    if not isinstance(text, str):
        return []
    try:
        applied = json.loads(text)
    except ValueError:
        return []
    if not isinstance(applied, Mapping):
        return []
    found = [
        SpecError(format_path(loc), f"dropped by the API server: {message}")
        for loc, message in _missing(applied.get("spec"), body.get("spec"), ("spec",))
    ]
    return _sorted(applied, found)


def _missing(applied: Any, stored: Any, loc: Loc) -> list[tuple[Loc, str]]:
    if isinstance(applied, list) and isinstance(stored, list):
        return [
            found
            for index, (mine, theirs) in enumerate(zip(applied, stored, strict=False))
            for found in _missing(mine, theirs, (*loc, index))
        ]
    if not (isinstance(applied, Mapping) and isinstance(stored, Mapping)):
        return []
    known = fields_at(Pipeline, loc)
    if known is None:
        return []  # free-form (a step's `with`): kept as written
    found: list[tuple[Loc, str]] = []
    for key, value in applied.items():
        if key not in stored:
            if key not in known:
                found.append(((*loc, key), unknown_field(str(key), known)))
        else:
            found.extend(_missing(value, stored[key], (*loc, key)))
    return found


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
        if (
            key in ("steps", "finally")
            and isinstance(node, Mapping)
            and isinstance(node.get("name"), str)
        ):
            found = node["name"]
    return found


def validate_template(manifest: Any) -> PipelineTemplate | list[SpecError]:
    """The parsed ``PipelineTemplate``, or every problem of ``manifest``."""
    if not isinstance(manifest, Mapping):
        return [
            SpecError(
                "", f"a PipelineTemplate manifest must be an object, got {type(manifest).__name__}"
            )
        ]
    try:
        return PipelineTemplate.model_validate(dict(manifest))
    except ValidationError as error:
        found = [
            SpecError(format_path(issue.loc), issue.message)
            for issue in issues_from_validation_error(
                error,
                allowed_fields=lambda loc: fields_at(PipelineTemplate, loc),
                pattern_descriptions=PATTERN_DESCRIPTIONS,
            )
        ]
        return _sorted(manifest, found)


def templates_in(
    documents: list[Any],
) -> tuple[dict[tuple[str, str], PipelineTemplate], list[tuple[str, list[SpecError]]]]:
    """The valid PipelineTemplates among ``documents`` by (namespace, name), and the
    problems of the invalid ones (by name)."""
    found: dict[tuple[str, str], PipelineTemplate] = {}
    problems: list[tuple[str, list[SpecError]]] = []
    for document in documents:
        if not (isinstance(document, Mapping) and document.get("kind") == TEMPLATE_KIND):
            continue
        checked = validate_template(document)
        if isinstance(checked, list):
            meta = document.get("metadata")
            name = meta.get("name") if isinstance(meta, Mapping) else None
            problems.append((str(name or "<no name>"), checked))
        else:
            found[(checked.metadata.namespace or "default", checked.name)] = checked
    return found, problems
