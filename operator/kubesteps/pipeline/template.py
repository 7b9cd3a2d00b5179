"""``PipelineTemplate``: steps and params kept once, used by many Pipelines.

A step ``uses: {template: NAME, params: {...}}`` runs the template's steps as a group: each
is named ``<the using step>-<its own name>``, its CEL reads the template's params as
``params`` and its sibling steps by their own names (``steps.build`` inside the template is
``<the using step>-build`` outside it). A template is checked on its own, like a Pipeline's
spec; a Pipeline that uses it is checked against it once it is known (``resolve``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    StringConstraints,
    model_validator,
)

from kubesteps.pipeline import semantics
from kubesteps.pipeline.cel_compile import CelError
from kubesteps.pipeline.cel_templates import render
from kubesteps.pipeline.issues import Issue, Loc, format_path, raw_fields, with_issues
from kubesteps.pipeline.model import (
    MAX_ENUM,
    MAX_NESTED_STEPS,
    MAX_PARAMS,
    Metadata,
    ParamValue,
    PipelineSpec,
    Step,
    StepBase,
)
from kubesteps.pipeline.suggest import did_you_mean
from kubesteps.pipeline.types import SPEC_CONFIG, CelIdentifier

TEMPLATE_KIND = "PipelineTemplate"
TEMPLATE_PLURAL = "pipelinetemplates"


class TemplateParam(BaseModel):
    """An input of the template, read in its CEL as ``params.<name>``."""

    model_config = SPEC_CONFIG

    name: CelIdentifier = Field(description="A CEL identifier, unique among the params.")
    value: ParamValue = Field(
        default=None,
        description="The default (any JSON value); without one, every use must give a value.",
    )
    description: Annotated[str, StringConstraints(max_length=1024)] | None = Field(
        default=None, description="What the param is for."
    )
    enum: list[ParamValue] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_ENUM,
        description="The values allowed (1..64).",
    )


class PipelineTemplateSpec(BaseModel):
    """The params and steps a ``uses`` step runs."""

    model_config = SPEC_CONFIG

    description: Annotated[str, StringConstraints(max_length=1024)] | None = Field(
        default=None, description="What the template does."
    )
    params: list[TemplateParam] = Field(
        default_factory=list,
        max_length=MAX_PARAMS,
        description="Inputs, read in the steps' CEL as params.<name> (at most 64).",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    steps: list[Step] = Field(
        min_length=1,
        max_length=MAX_NESTED_STEPS,
        description=(
            f"The steps (1..{MAX_NESTED_STEPS}), run as a group where the template is used; "
            "they may have needs, and no uses or condition of their own."
        ),
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )

    @model_validator(mode="wrap")
    @classmethod
    def _whole_tree(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        issues = [] if isinstance(data, cls) else check_template(raw_fields(cls, data))
        return with_issues("PipelineTemplateSpec", data, handler, issues)


class PipelineTemplate(BaseModel):
    """A PipelineTemplate object as stored by the API server."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    api_version: Literal["kubesteps.dev/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["PipelineTemplate"]
    metadata: Metadata
    spec: PipelineTemplateSpec
    status: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def resource_version(self) -> str:
        return str((self.metadata.model_extra or {}).get("resourceVersion") or "")


def _pipeline_fields() -> list[str]:
    return [field.alias or name for name, field in PipelineSpec.model_fields.items()]


def check_template(spec: Mapping[str, Any]) -> list[Issue]:
    """A template's own problems: its steps as a Pipeline's, plus what a template's steps
    may not have (a uses: templates do not nest; a condition: each use would write it)."""
    issues = semantics.check_spec(spec, spec_fields=_pipeline_fields())
    for loc, step in _steps(spec.get("steps"), ("steps",)):
        if step.get("uses") is not None:
            issues.append(
                Issue(
                    (*loc, "uses"),
                    "not allowed in a template: templates do not "
                    "nest (use the steps of the other one here)",
                )
            )
        if step.get("condition") is not None:
            issues.append(
                Issue(
                    (*loc, "condition"),
                    "not allowed in a template: every use of it would write the "
                    "same condition; set condition on the step that uses it",
                )
            )
    return issues


def _steps(nodes: Any, loc: Loc) -> Iterator[tuple[Loc, Mapping[str, Any]]]:
    """Every step of a list as written, nested ones included, with where it is."""
    for index, node in enumerate(nodes if isinstance(nodes, list) else []):
        if isinstance(node, Mapping):
            yield from _step_tree(node, (*loc, index))


def _step_tree(node: Mapping[str, Any], loc: Loc) -> Iterator[tuple[Loc, Mapping[str, Any]]]:
    yield loc, node
    for kind in ("parallel", "group", "switch"):
        container = node.get(kind)
        if isinstance(container, Mapping):
            yield from _steps(container.get("steps"), (*loc, kind, "steps"))
    for_each = node.get("forEach")
    if isinstance(for_each, Mapping) and isinstance(for_each.get("step"), Mapping):
        yield from _step_tree(for_each["step"], (*loc, "forEach", "step"))


# -- resolving the uses steps of a Pipeline -----------------------------------------------


@dataclass(frozen=True)
class Use:
    """A ``uses`` step of a Pipeline: where it is and what it asks for."""

    loc: Loc
    name: str  # the step's name ("" in a forEach template)
    template: str
    params: Mapping[str, Any]


def uses_of(spec: Mapping[str, Any]) -> list[Use]:
    """Every ``uses`` step of a Pipeline's spec (as written), in document order."""
    found = []
    for field in ("steps", "finally"):
        for loc, node in _steps(spec.get(field), (field,)):
            uses = node.get("uses")
            if isinstance(uses, Mapping) and isinstance(uses.get("template"), str):
                params = uses.get("params")
                found.append(
                    Use(
                        loc,
                        str(node.get("name") or ""),
                        uses["template"],
                        params if isinstance(params, Mapping) else {},
                    )
                )
    return found


def template_names(spec: Mapping[str, Any]) -> list[str]:
    """The templates a Pipeline's spec uses, each once, in the order of first use."""
    return list(dict.fromkeys(use.template for use in uses_of(spec)))


def template_params(
    template: PipelineTemplate,
    given: Mapping[str, Any],
    static_vars: Mapping[str, Any],
    *,
    path: str = "",
) -> dict[str, Any]:
    """The values of a template's params for one use: those given (``${ }`` rendered with
    the Pipeline's params and self), else the defaults. Raises ``CelError``."""
    values = {p.name: p.value for p in template.spec.params}
    for name, value in given.items():
        values[name] = render(value, static_vars, path=f"{path}.{name}")
    return values


def check_uses(
    spec: Mapping[str, Any],
    templates: Mapping[str, PipelineTemplate],
    static_vars: Mapping[str, Any],
    namespace: str,
) -> list[Issue]:
    """Each use names a template there is, gives only params it has, every param without
    a default, values from its enum; the step names it expands to are free and short
    enough."""
    issues: list[Issue] = []
    taken = _names(spec)
    for use in uses_of(spec):
        where = (*use.loc, "uses")
        template = templates.get(use.template)
        if template is None:
            known = sorted(templates)
            issues.append(
                Issue(
                    (*where, "template"),
                    f"no PipelineTemplate {use.template!r} in namespace "
                    f"{namespace!r}"
                    + (f" (there are: {', '.join(known)})" if known else "")
                    + did_you_mean(use.template, known),
                )
            )
            continue
        declared = {p.name: p for p in template.spec.params}
        for name in use.params:
            if name not in declared:
                issues.append(
                    Issue(
                        (*where, "params", str(name)),
                        f"template {use.template!r} has no param {str(name)!r} "
                        f"(it has: {', '.join(declared) or 'none'})"
                        + did_you_mean(str(name), list(declared)),
                    )
                )
        for name, param in declared.items():
            if name not in use.params and param.value is None:
                issues.append(
                    Issue(
                        (*where, "params"),
                        f"template {use.template!r} needs a value for param "
                        f"{name!r} (it has no default)",
                    )
                )
        try:
            values = template_params(
                template,
                {k: v for k, v in use.params.items() if k in declared},
                static_vars,
                path=format_path(("spec", *where, "params")),
            )
        except CelError as error:
            issues.append(
                Issue(
                    (*where, "params"),
                    f"{error.message} in CEL expression {error.expression!r}; a "
                    "use's params may read the Pipeline's params and self",
                )
            )
            continue
        for name, param in declared.items():
            value = values.get(name)
            if param.enum is not None and name in use.params and value not in param.enum:
                shown = ", ".join(json.dumps(v) for v in param.enum[:10])
                issues.append(
                    Issue(
                        (*where, "params", name),
                        f"{json.dumps(value)} is not one of the values template "
                        f"{use.template!r} allows: {shown}",
                    )
                )
        if not use.name:
            continue
        for step in _template_step_names(template):
            expanded = f"{use.name}-{step}"
            if len(expanded) > 63:
                issues.append(
                    Issue(
                        (*use.loc, "name"),
                        f"step {expanded!r} of template {use.template!r} would be "
                        f"{len(expanded)} characters long; a step name may have "
                        "63: shorten this step's name",
                    )
                )
            elif expanded in taken:
                issues.append(
                    Issue(
                        (*use.loc, "name"),
                        f"step {expanded!r} of template {use.template!r} clashes "
                        f"with step {expanded!r} at "
                        f"{format_path(('spec', *taken[expanded]))}; rename one",
                    )
                )
    return issues


def _template_step_names(template: PipelineTemplate) -> list[str]:
    names: list[str] = []

    def visit(step: StepBase) -> None:
        if isinstance(step, Step):
            names.append(step.name)
        for child in step.children:
            visit(child)

    for top in template.spec.steps:
        visit(top)
    return names


def _names(spec: Mapping[str, Any]) -> dict[str, Loc]:
    names: dict[str, Loc] = {}
    for field in ("steps", "finally"):
        for loc, node in _steps(spec.get(field), (field,)):
            if isinstance(node.get("name"), str):
                names.setdefault(node["name"], loc)
    return names
