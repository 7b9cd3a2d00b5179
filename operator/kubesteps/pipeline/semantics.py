"""Checks that need the whole step tree: names, conditions, depth, size, CEL and actions.

Every problem is an ``Issue`` located relative to ``spec``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kubesteps.actions.params import (
    MAX_APPROVAL_STEP_NAME,
    approval_annotation,
    validate_params,
)
from kubesteps.pipeline import cel
from kubesteps.pipeline.issues import Issue, Loc, format_path

if TYPE_CHECKING:
    from kubesteps.pipeline.model import PipelineSpec, StepBase

# A step at this level may only be an action; the CRD schema is unrolled to the same depth.
MAX_DEPTH = 4
MAX_TOTAL_STEPS = 500
# The most items one forEach may fan out to (checked at run time, when the items are known):
# each item is a step with its own state, status record and requests to the API server.
MAX_FOREACH_ITEMS = 200
RESERVED_CONDITIONS = frozenset({"Ready", "Reconciling", "Stalled"})


@dataclass(frozen=True)
class _Visit:
    step: StepBase
    loc: Loc
    depth: int
    variables: tuple[str, ...]
    # How many forEach templates enclose the step: each adds "-<index>" to its run-time name.
    repeats: int

    @property
    def in_template(self) -> bool:
        return self.repeats > 0


def _walk(spec: PipelineSpec) -> Iterator[_Visit]:
    """Every step of the tree in document order, down to MAX_DEPTH, with its CEL variables."""
    for index, step in enumerate(spec.steps):
        yield from _walk_step(
            _Visit(step, ("steps", index), 1, cel.RUN_VARIABLES, repeats=0)
        )


def _walk_step(visit: _Visit) -> Iterator[_Visit]:
    yield visit
    step = visit.step
    if visit.depth >= MAX_DEPTH:
        return
    if step.for_each is not None:
        variables = (*visit.variables, step.for_each.as_, cel.FOREACH_INDEX)
        yield from _walk_step(
            _Visit(
                step.for_each.step,
                (*visit.loc, "forEach", "step"),
                visit.depth + 1,
                tuple(dict.fromkeys(variables)),
                repeats=visit.repeats + 1,
            )
        )
        return
    container: Loc = (*visit.loc, "parallel" if step.parallel is not None else "group", "steps")
    for index, child in enumerate(step.children):
        yield from _walk_step(
            _Visit(child, (*container, index), visit.depth + 1, visit.variables, visit.repeats)
        )


def check_spec(spec: PipelineSpec) -> list[Issue]:
    """All whole-tree problems of ``spec``; an empty list means it is fine."""
    visits = list(_walk(spec))
    issues = _depth_and_size(visits)
    names = _names(visits, issues)
    generated = [
        re.compile(rf"^{re.escape(owner)}-[0-9]+(-|$)") for owner in _for_each_names(visits)
    ]
    generated.extend(_repeated_name(name, repeats) for name, repeats in _repeated(visits))

    def is_step(name: str) -> bool:
        return name in names or any(pattern.match(name) for pattern in generated)

    issues.extend(_conditions(visits))
    for visit in visits:
        issues.extend(_step_expressions(visit, is_step))
        if visit.step.action is not None:
            issues.extend(validate_params(visit.step.action, visit.step.params, loc=visit.loc))
    return issues


def _depth_and_size(visits: list[_Visit]) -> list[Issue]:
    issues = []
    for visit in visits:
        if visit.depth == MAX_DEPTH and visit.step.children:
            issues.append(
                Issue(
                    (*visit.loc, visit.step.kind),
                    f"steps nest at most {MAX_DEPTH} levels deep: this step is at level "
                    f"{MAX_DEPTH} and must be an action step",
                )
            )
    if len(visits) > MAX_TOTAL_STEPS:
        issues.append(
            Issue(
                ("steps",),
                f"the pipeline has {len(visits)} steps in all (nested ones included); "
                f"at most {MAX_TOTAL_STEPS} are allowed",
            )
        )
    return issues


def _names(visits: list[_Visit], issues: list[Issue]) -> dict[str, Loc]:
    """Step names with where they are; reports duplicates and names that can clash at run
    time with forEach sub-steps or with steps nested in a forEach template."""
    names: dict[str, Loc] = {}
    repeats: dict[str, int] = {}
    for visit in visits:
        name = getattr(visit.step, "name", None)
        if name is None:
            continue
        if name in names:
            issues.append(
                Issue(
                    (*visit.loc, "name"),
                    f"duplicate step name {name!r} (also used at "
                    f"{format_path(('spec', *names[name]))}); "
                    "step names must be unique across the whole pipeline",
                )
            )
        else:
            names[name] = (*visit.loc, "name")
            repeats[name] = visit.repeats
        if visit.step.action == "approval" and len(name) > MAX_APPROVAL_STEP_NAME:
            issues.append(
                Issue(
                    (*visit.loc, "name"),
                    f"an approval step's name may be at most {MAX_APPROVAL_STEP_NAME} "
                    f"characters, so that its annotation {approval_annotation('<name>')} "
                    "is a valid Kubernetes annotation key",
                )
            )
    clashing: set[str] = set()
    for owner in _for_each_names(visits):
        generated = re.compile(rf"^{re.escape(owner)}-[0-9]+(-|$)")
        for name, loc in names.items():
            if generated.match(name):
                clashing.add(name)
                issues.append(
                    Issue(
                        loc,
                        f"step name {name!r} clashes with the sub-steps forEach step "
                        f"{owner!r} generates ({owner}-<index>); choose another name",
                    )
                )
    issues.extend(_template_clashes(names, repeats, clashing))
    return names


def _template_clashes(
    names: dict[str, Loc], repeats: dict[str, int], reported: set[str]
) -> Iterator[Issue]:
    """Steps whose run-time names can equal those of steps nested in a forEach template.

    A step nested in a template runs once per item, as ``<name>-<index>`` (one suffix per
    enclosing forEach), so ``check`` in a template and ``check-0`` beside it would both be
    ``check-0`` at run time. Reported once, at the step with fewer suffixes.
    """
    repeated = [(name, count) for name, count in repeats.items() if count]
    for name, loc in names.items():
        if name in reported:
            continue
        own = repeats[name]
        for other, more in repeated:
            if more <= own or not name.startswith(f"{other}-"):
                continue
            if not _repeated_name(other, more - own).match(name):
                continue
            shown = repr(name) if own == 0 else f"{name!r} (run as {_run_name(name, own)!r})"
            yield Issue(
                loc,
                f"step name {shown} clashes with step {other!r} at "
                f"{format_path(('spec', *names[other]))}, which runs once per forEach item "
                f"as {_run_name(other, more)!r}; choose another name",
            )
            break


def _repeated(visits: list[_Visit]) -> Iterator[tuple[str, int]]:
    """The named steps inside forEach templates, with how many templates enclose each."""
    for visit in visits:
        name = getattr(visit.step, "name", None)
        if name is not None and visit.repeats:
            yield name, visit.repeats


def _repeated_name(name: str, repeats: int) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(name)}(-[0-9]+){{{repeats}}}$")


def _run_name(name: str, repeats: int) -> str:
    return name + "-<index>" * repeats


def _for_each_names(visits: list[_Visit]) -> list[str]:
    # A forEach inside a template has no name of its own; its sub-steps are named after the
    # enclosing generated step, so only named forEach steps can clash.
    return [
        name
        for visit in visits
        if visit.step.for_each is not None and (name := getattr(visit.step, "name", None))
    ]


def _conditions(visits: list[_Visit]) -> list[Issue]:
    issues = []
    seen: dict[str, Loc] = {}
    for visit in visits:
        condition = getattr(visit.step, "condition", None)
        if condition is None:
            continue
        loc = (*visit.loc, "condition")
        if visit.in_template:
            issues.append(
                Issue(
                    loc,
                    "not allowed inside a forEach template: every item would write the same "
                    "condition; set condition on the forEach step itself",
                )
            )
        elif condition in RESERVED_CONDITIONS:
            issues.append(
                Issue(
                    loc,
                    f"{condition!r} is reserved for the pipeline's own conditions "
                    "(Ready, Reconciling, Stalled); choose another name",
                )
            )
        elif condition in seen:
            issues.append(
                Issue(
                    loc,
                    f"duplicate condition {condition!r} (also used at "
                    f"{format_path(('spec', *seen[condition]))}); "
                    "each step needs its own condition type",
                )
            )
        else:
            seen[condition] = loc
    return issues


def _step_expressions(visit: _Visit, is_step: Callable[[str], bool]) -> list[Issue]:
    step = visit.step
    issues = []
    for index, predicate in enumerate(step.when):
        issues.extend(_check_bare(predicate, (*visit.loc, "when", index), visit.variables, is_step))
    if step.for_each is not None:
        for_each = step.for_each
        items_loc = (*visit.loc, "forEach", "items")
        items_issues = _check_bare(for_each.items, items_loc, visit.variables, is_step)
        issues.extend(items_issues or _constant_list(for_each.items, items_loc))
        taken = {*cel.RUN_VARIABLES, cel.FOREACH_INDEX}
        if for_each.as_ in taken or for_each.as_ in cel.RESERVED_WORDS:
            issues.append(
                Issue(
                    (*visit.loc, "forEach", "as"),
                    f"{for_each.as_!r} cannot name the item: self, steps, index and CEL's "
                    "reserved words are taken",
                )
            )
        elif for_each.as_ in visit.variables:
            issues.append(
                Issue(
                    (*visit.loc, "forEach", "as"),
                    f"{for_each.as_!r} is already the item of an enclosing forEach; "
                    "choose another name so both stay reachable",
                )
            )
    if step.params is not None:
        issues.extend(_check_templates(step.params, (*visit.loc, "with"), visit, is_step))
    if step.throttle is not None and step.throttle.partition_key is not None:
        issues.extend(
            _check_templates(
                step.throttle.partition_key,
                (*visit.loc, "throttle", "partitionKey"),
                visit,
                is_step,
            )
        )
    return issues


def _constant_list(expression: str, loc: Loc) -> list[Issue]:
    """An items expression that reads no variable is known now: it must give a list."""
    if cel.compile_expression(expression).free_variables:
        return []
    try:
        value = cel.evaluate(expression, {}, path=".".join(map(str, loc)))
    except cel.CelError as error:
        return [Issue(loc, str(error))]
    if isinstance(value, list):
        if len(value) > MAX_FOREACH_ITEMS:
            return [Issue(loc, f"gives {len(value)} items; a forEach runs at most "
                               f"{MAX_FOREACH_ITEMS}")]
        return []
    return [Issue(loc, f"must give a list, but {expression!r} is always a "
                       f"{type(value).__name__} ({value!r})")]


def _check_bare(
    expression: str, loc: Loc, variables: tuple[str, ...], is_step: Callable[[str], bool]
) -> list[Issue]:
    if cel.has_template(expression):
        return [Issue(loc, "write the bare CEL expression here, without ${ }: it is always CEL")]
    return _check_expression(expression, loc, variables, is_step)


def _check_templates(
    value: object, loc: Loc, visit: _Visit, is_step: Callable[[str], bool]
) -> list[Issue]:
    issues = []
    try:
        found = list(cel.template_expressions(value, loc))
    except cel.TemplateError as error:
        return [Issue(_loc_of(error.path, loc), error.message)]
    for where, expression in found:
        if not expression:
            issues.append(Issue(where, "empty ${ } template; put a CEL expression inside"))
        else:
            issues.extend(_check_expression(expression, where, visit.variables, is_step))
    return issues


def _loc_of(path: str, fallback: Loc) -> Loc:
    # TemplateError carries the path as text; the Issue needs the structured location again.
    parts: list[str | int] = []
    for match in re.finditer(r"([^.\[\]]+)|\[(\d+)\]", path):
        parts.append(int(match.group(2)) if match.group(2) else match.group(1))
    return tuple(parts) or fallback


def _check_expression(
    expression: str, loc: Loc, variables: tuple[str, ...], is_step: Callable[[str], bool]
) -> list[Issue]:
    try:
        compiled = cel.check_expression(expression, variables=variables, path=format_path(loc))
    except cel.CelSyntaxError as error:
        return [Issue(loc, f"{error.message} in CEL expression {expression!r}")]
    unknown = sorted(name for name in compiled.step_references if not is_step(name))
    return [
        Issue(
            loc,
            f"refers to steps.{name}, but no step is named {name!r} "
            f"in CEL expression {expression!r}",
        )
        for name in unknown
    ]
