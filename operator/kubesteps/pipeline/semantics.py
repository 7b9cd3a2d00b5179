"""Checks that need the whole step tree: names, conditions, depth, size, CEL and actions.

They read the spec as written (``RawStep``), not the parsed model, so they run even when
some field elsewhere is malformed: every problem of a manifest is reported at once. Every
problem is an ``Issue`` located relative to ``spec``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from kubesteps.engine.steps import find_cycle
from kubesteps.pipeline.cel_compile import (
    FINALLY_VARIABLE,
    FOREACH_INDEX,
    RESERVED_WORDS,
    RUN_VARIABLES,
    CelError,
    CelSyntaxError,
    check_expression,
    compile_expression,
)
from kubesteps.pipeline.cel_evaluate import evaluate, evaluate_predicate
from kubesteps.pipeline.cel_templates import TemplateError, has_template, template_expressions
from kubesteps.pipeline.cel_templates import render as render_template
from kubesteps.pipeline.issues import Issue, Loc, format_path
from kubesteps.pipeline.params import (
    MAX_APPROVAL_STEP_NAME,
    approval_annotation,
    rendered_part,
    validate_params,
)
from kubesteps.pipeline.schedule import check as check_schedule
from kubesteps.pipeline.suggest import did_you_mean

# A step at this level may only be an action; the CRD schema is unrolled to the same depth.
MAX_DEPTH = 4
MAX_TOTAL_STEPS = 500
# The most items one forEach may fan out to (checked at run time, when the items are known):
# each item is a step with its own state, status record and requests to the API server.
MAX_FOREACH_ITEMS = 200
RESERVED_CONDITIONS = frozenset({"Ready", "Reconciling", "Stalled"})


_PYTHON_NAMES = {
    "forEach": "for_each",
    "with": "params",
    "partitionKey": "partition_key",
    "as": "as_",
}
_CONTAINERS = ("parallel", "group", "switch")
# Finally steps nest this deep (the CRD types them so: see pipeline/crd.py).
MAX_FINALLY_DEPTH = 2
MAX_PARAMS_BYTES = 64 * 1024


@dataclass(frozen=True)
class RawStep:
    """A step as written, read leniently: a field of the wrong type reads as absent.

    The model reports what is malformed; the checks here run on whatever is readable, so
    that a problem in one field never hides the problems of the others.
    """

    fields: Mapping[str, Any]

    @classmethod
    def of(cls, node: Any) -> RawStep | None:
        if isinstance(node, BaseModel):
            return cls(node.model_dump(by_alias=True))
        return cls(node) if isinstance(node, Mapping) else None

    def get(self, key: str) -> Any:
        return _get(self.fields, key)

    def text(self, key: str) -> str | None:
        value = self.get(key)
        return value if isinstance(value, str) else None

    @property
    def name(self) -> str | None:
        return self.text("name")

    @property
    def condition(self) -> str | None:
        return self.text("condition")

    @property
    def action(self) -> str | None:
        return self.text("action")

    @property
    def kinds(self) -> list[str]:
        return [kind for kind in (*_CONTAINERS, "forEach") if self.get(kind) is not None]

    @property
    def when(self) -> list[tuple[int, str]]:
        when = self.get("when")
        if not isinstance(when, list):
            return []
        return [(index, item) for index, item in enumerate(when) if isinstance(item, str)]

    @property
    def for_each(self) -> Mapping[str, Any] | None:
        value = self.get("forEach")
        return value if isinstance(value, Mapping) else None

    @property
    def item_name(self) -> str | None:
        """The forEach's item variable (``item`` by default; None when malformed)."""
        value = _get(self.for_each or {}, "as")
        if value is None:
            return "item"
        return value if isinstance(value, str) else None

    @property
    def template(self) -> RawStep | None:
        return RawStep.of((self.for_each or {}).get("step"))

    def children(self) -> Iterator[tuple[Loc, RawStep]]:
        """The sub-steps of parallel and group, with their location inside this step."""
        for kind in _CONTAINERS:
            container = self.get(kind)
            steps = _get(container, "steps") if isinstance(container, Mapping) else None
            for index, node in enumerate(steps if isinstance(steps, list) else []):
                child = RawStep.of(node)
                if child is not None:
                    yield (kind, "steps", index), child

    @property
    def partition_key(self) -> str | None:
        throttle = self.get("throttle")
        key = _get(throttle, "partitionKey") if isinstance(throttle, Mapping) else None
        return key if isinstance(key, str) else None


def _get(fields: Mapping[str, Any], key: str) -> Any:
    # Python callers may build specs with the Python names (for_each), YAML has the aliases.
    if key in fields:
        return fields[key]
    return fields.get(_PYTHON_NAMES.get(key, key))


@dataclass(frozen=True)
class _Visit:
    step: RawStep
    loc: Loc
    depth: int
    variables: tuple[str, ...]
    # How many forEach templates enclose the step: each adds "-<index>" to its run-time name.
    repeats: int
    # The template of a forEach itself: it has no name and no condition of its own (the
    # model refuses them there), so none is taken from it.
    template: bool = False
    # How deep this tree may nest: the main steps, or the finally steps.
    max_depth: int = MAX_DEPTH

    @property
    def in_template(self) -> bool:
        return self.repeats > 0

    @property
    def name(self) -> str | None:
        return None if self.template else self.step.name

    @property
    def condition(self) -> str | None:
        return None if self.template else self.step.condition


def _walk(steps: list[Any], *, field: str = "steps") -> Iterator[_Visit]:
    """Every step of the tree in document order, down to its depth, with its CEL variables:
    ``field`` is ``steps`` (the main steps) or ``finally`` (which see the run, too)."""
    final = field == "finally"
    variables = (*RUN_VARIABLES, FINALLY_VARIABLE) if final else RUN_VARIABLES
    depth = MAX_FINALLY_DEPTH if final else MAX_DEPTH
    for index, node in enumerate(steps):
        step = RawStep.of(node)
        if step is not None:
            yield from _walk_step(_Visit(step, (field, index), 1, variables, 0, max_depth=depth))


def _walk_spec(spec: Mapping[str, Any]) -> Iterator[_Visit]:
    """The main steps, then the finally steps."""
    for field in ("steps", "finally"):
        steps = _get(spec, field)
        if isinstance(steps, list):
            yield from _walk(steps, field=field)


def _walk_step(visit: _Visit) -> Iterator[_Visit]:
    yield visit
    step = visit.step
    if visit.depth >= visit.max_depth:
        return
    template = step.template
    if template is not None:
        item = step.item_name or "item"
        variables = tuple(dict.fromkeys((*visit.variables, item, FOREACH_INDEX)))
        yield from _walk_step(
            _Visit(
                template,
                (*visit.loc, "forEach", "step"),
                visit.depth + 1,
                variables,
                repeats=visit.repeats + 1,
                template=True,
                max_depth=visit.max_depth,
            )
        )
    for where, child in step.children():
        yield from _walk_step(
            _Visit(
                child,
                (*visit.loc, *where),
                visit.depth + 1,
                visit.variables,
                visit.repeats,
                max_depth=visit.max_depth,
            )
        )


def check_spec(spec: Mapping[str, Any], *, spec_fields: Collection[str] = ()) -> list[Issue]:
    """All whole-tree problems of ``spec`` (as written); an empty list means it is fine.

    ``spec_fields`` are the fields a spec has: CEL may read only those of ``self.spec``.
    """
    visits = list(_walk_spec(spec))
    issues = _depth_and_size(visits)
    names = _names(visits, issues)
    params = _params(spec, issues)
    issues.extend(_switches(visits))
    issues.extend(check_needs(spec, names))
    issues.extend(_schedule(spec))
    generated = [
        re.compile(rf"^{re.escape(owner)}-[0-9]+(-|$)") for owner in _for_each_names(visits)
    ]
    generated.extend(_repeated_name(name, repeats) for name, repeats in _repeated(visits))
    # A uses step runs a template's steps as <its name>-<theirs>: known once it is read.
    generated.extend(
        re.compile(rf"^{re.escape(visit.name)}-")
        for visit in visits
        if visit.name and visit.step.get("uses") is not None
    )

    def is_step(name: str) -> bool:
        return name in names or any(pattern.match(name) for pattern in generated)

    issues.extend(_conditions(visits))
    context = _Names(is_step, list(names), tuple(spec_fields), tuple(params))
    for visit in visits:
        issues.extend(_step_expressions(visit, context))
        action, params = visit.step.action, visit.step.get("with")
        if action is not None and (params is None or isinstance(params, Mapping)):
            renderable, as_written = rendered_part(action, params or {})
            rendered, problems = _constants_rendered(renderable, (*visit.loc, "with"))
            rendered = {**(rendered or {}), **as_written}
            issues.extend(problems)
            issues.extend(validate_params(action, rendered, loc=visit.loc))
    return issues


def check_namespaces(spec: Mapping[str, Any], namespace: str | None) -> list[Issue]:
    """``apply`` steps that own (the default) an object in another namespace than the
    Pipeline's: Kubernetes allows no owner in another namespace, so they would fail."""
    if namespace is None:
        return []
    issues = []
    for visit in _walk_spec(spec):
        params = visit.step.get("with")
        if visit.step.action != "apply" or not isinstance(params, Mapping):
            continue
        if params.get("owned", True) is not True:
            continue
        manifest = params.get("manifest")
        metadata = manifest.get("metadata") if isinstance(manifest, Mapping) else None
        for loc, value in (
            (("with", "namespace"), params.get("namespace")),
            (
                ("with", "manifest", "metadata", "namespace"),
                metadata.get("namespace") if isinstance(metadata, Mapping) else None,
            ),
        ):
            if isinstance(value, str) and not has_template(value) and value != namespace:
                issues.append(
                    Issue(
                        (*visit.loc, *loc),
                        f"an owned object must be in the Pipeline's namespace {namespace!r}, "
                        f"not {value!r} (Kubernetes allows no owner in another namespace); "
                        "apply it there or set owned: false",
                    )
                )
                break
    return issues


def _depth_and_size(visits: list[_Visit]) -> list[Issue]:
    issues = []
    for visit in visits:
        if visit.depth < visit.max_depth:
            continue
        what = "finally steps" if visit.loc[0] == "finally" else "steps"
        for kind in visit.step.kinds:
            issues.append(
                Issue(
                    (*visit.loc, kind),
                    f"{what} nest at most {visit.max_depth} levels deep: this step is at level "
                    f"{visit.max_depth} and must be an action step",
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
        name = visit.name
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
        name = visit.name
        if name is not None and visit.repeats:
            yield name, visit.repeats


def _repeated_name(name: str, repeats: int) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(name)}(-[0-9]+){{{repeats}}}$")


def _run_name(name: str, repeats: int) -> str:
    return name + "-<index>" * repeats


def _for_each_names(visits: list[_Visit]) -> list[str]:
    # A forEach inside a template has no name of its own; its sub-steps are named after the
    # enclosing generated step, so only named forEach steps can clash.
    return [name for visit in visits if visit.step.for_each is not None and (name := visit.name)]


def _conditions(visits: list[_Visit]) -> list[Issue]:
    issues = []
    seen: dict[str, Loc] = {}
    for visit in visits:
        condition = visit.condition
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


@dataclass(frozen=True)
class _Names:
    """What CEL expressions may refer to: steps (by name, generated ones included), the
    fields of the spec, and the params."""

    is_step: Callable[[str], bool]
    steps: list[str]
    spec_fields: tuple[str, ...]
    params: tuple[str, ...] = ()


def _params(spec: Mapping[str, Any], issues: list[Issue]) -> list[str]:
    """The param names; reports duplicates, values outside their enum, and a total size
    over the bound."""
    params = _get(spec, "params")
    if not isinstance(params, list):
        return []
    names: dict[str, int] = {}
    for index, param in enumerate(params):
        if not isinstance(param, Mapping) or not isinstance(param.get("name"), str):
            continue
        name = param["name"]
        if name in names:
            issues.append(
                Issue(
                    ("params", index, "name"),
                    f"duplicate param name {name!r} (also params[{names[name]}]); "
                    "param names must be unique",
                )
            )
            continue
        names[name] = index
        if name in RESERVED_WORDS:
            issues.append(
                Issue(
                    ("params", index, "name"),
                    f"{name!r} is a reserved word in CEL: it cannot name a param",
                )
            )
        enum = param.get("enum")
        if isinstance(enum, list) and "value" in param and param["value"] not in enum:
            shown = ", ".join(json.dumps(v) for v in enum[:10])
            hint = did_you_mean(str(param["value"]), [str(v) for v in enum])
            issues.append(
                Issue(
                    ("params", index, "value"),
                    f"{json.dumps(param['value'])} is not one of the allowed values: {shown}{hint}",
                )
            )
    size = len(json.dumps(params, separators=(",", ":"), default=str))
    if size > MAX_PARAMS_BYTES:
        issues.append(
            Issue(
                ("params",),
                f"the params are {size // 1024} KiB as JSON; at most "
                f"{MAX_PARAMS_BYTES // 1024} KiB are allowed",
            )
        )
    return list(names)


def _schedule(spec: Mapping[str, Any]) -> list[Issue]:
    """A cron expression cronsim can walk, and a time zone the machine knows."""
    schedule = _get(spec, "schedule")
    if not isinstance(schedule, Mapping) or not isinstance(schedule.get("cron"), str):
        return []
    zone = schedule.get("timeZone", "UTC")
    problem = check_schedule(schedule["cron"], zone if isinstance(zone, str) else "UTC")
    if problem is None:
        return []
    field, _, message = problem.partition(": ")
    return [Issue(("schedule", field), message)]


def _switches(visits: list[_Visit]) -> list[Issue]:
    """A switch's default (a branch without when) must come last, and be the only one."""
    issues = []
    for visit in visits:
        switch = visit.step.get("switch")
        branches = _get(switch, "steps") if isinstance(switch, Mapping) else None
        if not isinstance(branches, list):
            continue
        for index, node in enumerate(branches[:-1]):
            branch = RawStep.of(node)
            if branch is not None and not branch.when and branch.get("when") is None:
                later = [RawStep.of(b) for b in branches[index + 1 :]]
                names = ", ".join(repr(b.name) for b in later if b is not None and b.name)
                issues.append(
                    Issue(
                        (*visit.loc, "switch", "steps", index, "when"),
                        f"branch {branch.name!r} has no when, so it is the default, which must be "
                        f"the last branch: the branches after it ({names}) could never be taken",
                    )
                )
    return issues


def _step_expressions(visit: _Visit, names: _Names) -> list[Issue]:
    step = visit.step
    issues = []
    for index, predicate in step.when:
        loc = (*visit.loc, "when", index)
        found = _check_bare(predicate, loc, visit.variables, names)
        issues.extend(found or _constant_predicate(predicate, loc))
    for_each = step.for_each
    if for_each is not None:
        items = _get(for_each, "items")
        if isinstance(items, str) and items:
            items_loc = (*visit.loc, "forEach", "items")
            found = _check_bare(items, items_loc, visit.variables, names)
            issues.extend(found or _constant_list(items, items_loc))
        item = step.item_name
        taken = {*RUN_VARIABLES, FOREACH_INDEX}
        if item in taken or item in RESERVED_WORDS:
            issues.append(
                Issue(
                    (*visit.loc, "forEach", "as"),
                    f"{item!r} cannot name the item: self, steps, index and CEL's "
                    "reserved words are taken",
                )
            )
        elif item in visit.variables:
            issues.append(
                Issue(
                    (*visit.loc, "forEach", "as"),
                    f"{item!r} is already the item of an enclosing forEach; "
                    "choose another name so both stay reachable",
                )
            )
    params = step.get("with")
    if isinstance(params, Mapping) and step.action is not None:
        params, _ = rendered_part(step.action, params)
    if params is not None:
        issues.extend(_check_templates(params, (*visit.loc, "with"), visit, names))
    if step.partition_key is not None:
        issues.extend(
            _check_templates(
                step.partition_key, (*visit.loc, "throttle", "partitionKey"), visit, names
            )
        )
    return issues


def _constant_list(expression: str, loc: Loc) -> list[Issue]:
    """An items expression that reads no variable is known now: it must give a list."""
    if compile_expression(expression).free_variables:
        return []
    try:
        value = evaluate(expression, {})
    except CelError as error:
        return [Issue(loc, f"{error.message} in CEL expression {expression!r}")]
    if isinstance(value, list):
        if len(value) > MAX_FOREACH_ITEMS:
            return [
                Issue(loc, f"gives {len(value)} items; a forEach runs at most {MAX_FOREACH_ITEMS}")
            ]
        return []
    return [
        Issue(
            loc,
            f"must give a list, but {expression!r} is always a {type(value).__name__} ({value!r})",
        )
    ]


def _constant_predicate(expression: str, loc: Loc) -> list[Issue]:
    """A ``when`` expression that reads no variable is known now: it must give a boolean."""
    if compile_expression(expression).free_variables:
        return []
    try:
        evaluate_predicate(expression, {})
    except CelError as error:
        return [Issue(loc, f"{error.message} in CEL expression {expression!r}")]
    return []


def _constants_rendered(params: Mapping[str, Any] | None, loc: Loc) -> tuple[Any, list[Issue]]:
    """``params`` with every template that reads no variable rendered (the value is the same
    at run time, so it can be checked now), and the templates that fail to render."""
    issues: list[Issue] = []

    def render(value: Any, where: Loc) -> Any:
        if isinstance(value, Mapping):
            return {key: render(item, (*where, str(key))) for key, item in value.items()}
        if isinstance(value, list):
            return [render(item, (*where, index)) for index, item in enumerate(value)]
        if not has_template(value):
            return value
        try:
            expressions = list(template_expressions(value, where))
            if any(not text or compile_expression(text).free_variables for _, text in expressions):
                return value
            return render_template(value, {})
        except CelSyntaxError:
            return value  # reported where the expression is checked
        except CelError as error:
            issues.append(Issue(where, f"{error.message} in CEL expression {error.expression!r}"))
            return value

    return (None if params is None else render(params, loc)), issues


def _check_bare(
    expression: str, loc: Loc, variables: tuple[str, ...], names: _Names
) -> list[Issue]:
    if has_template(expression):
        return [Issue(loc, "write the bare CEL expression here, without ${ }: it is always CEL")]
    return _check_expression(expression, loc, variables, names)


def _check_templates(value: object, loc: Loc, visit: _Visit, names: _Names) -> list[Issue]:
    issues = []
    try:
        found = list(template_expressions(value, loc))
    except TemplateError as error:
        return [Issue(_loc_of(error.path, loc), error.message)]
    for where, expression in found:
        if not expression:
            issues.append(Issue(where, "empty ${ } template; put a CEL expression inside"))
        else:
            issues.extend(_check_expression(expression, where, visit.variables, names))
    return issues


def _loc_of(path: str, fallback: Loc) -> Loc:
    # TemplateError carries the path as text; the Issue needs the structured location again.
    parts: list[str | int] = []
    for match in re.finditer(r"([^.\[\]]+)|\[(\d+)\]", path):
        parts.append(int(match.group(2)) if match.group(2) else match.group(1))
    return tuple(parts) or fallback


def _check_expression(
    expression: str, loc: Loc, variables: tuple[str, ...], names: _Names
) -> list[Issue]:
    try:
        compiled = check_expression(expression, variables=variables, path=format_path(loc))
    except CelSyntaxError as error:
        return [Issue(loc, f"{error.message} in CEL expression {expression!r}{error.hint}")]
    issues = [
        Issue(
            loc,
            f"refers to steps.{name}, but no step is named {name!r} "
            f"in CEL expression {expression!r}{did_you_mean(name, names.steps)}",
        )
        for name in sorted(compiled.step_references)
        if not names.is_step(name)
    ]
    issues.extend(
        Issue(
            loc,
            f"refers to params.{name}, but no param is named {name!r} "
            + (
                f"(declared: {', '.join(names.params)}) "
                if names.params
                else "(spec.params declares none) "
            )
            + f"in CEL expression {expression!r}{did_you_mean(name, names.params)}",
        )
        for name in sorted(compiled.param_references)
        if name not in names.params
    )
    if names.spec_fields:
        issues.extend(
            Issue(
                loc,
                f"refers to self.spec.{name}, but a Pipeline's spec has no field {name!r} "
                f"(only {', '.join(names.spec_fields)}) in CEL expression {expression!r}"
                f"{did_you_mean(name, names.spec_fields)}",
            )
            for name in sorted(compiled.spec_references - set(names.spec_fields))
        )
    return issues


def check_needs(spec: Mapping[str, Any], names: Mapping[str, Loc]) -> list[Issue]:
    """Needs name steps of their own list (``spec.steps``, ``spec.finally`` or a group's
    steps), each once, in a known phase, and form no cycle; other lists (parallel, switch,
    a forEach template) have no needs. ``names``: every step name, with where it is."""
    issues: list[Issue] = []
    for field in ("steps", "finally"):
        steps = _get(spec, field)
        if isinstance(steps, list):
            _check_list(steps, (field,), names, issues)
    return issues


def _check_list(nodes: list[Any], loc: Loc, names: Mapping[str, Loc], issues: list[Issue]) -> None:
    steps = [
        (index, step) for index, node in enumerate(nodes) if (step := RawStep.of(node)) is not None
    ]
    own = {step.name for _, step in steps if step.name}
    graph: dict[str, list[str]] = {}
    for index, step in steps:
        where = (*loc, index)
        needed = _step_needs(step, where, own, names, issues)
        if step.name:
            graph[step.name] = needed
        _check_nested(step, where, names, issues)
    if any(graph.values()):
        for index, step in steps:
            if step.get("finishOnSuccess") is True:
                issues.append(Issue((*loc, index, "finishOnSuccess"), _FINISH_IN_GRAPH))
    cycle = find_cycle(graph)
    if cycle:
        at = next(index for index, step in steps if step.name == cycle[0])
        issues.append(
            Issue(
                (*loc, at, "needs"),
                f"the needs form a cycle: {' -> '.join(cycle)}; a step cannot "
                "wait, directly or through others, for itself",
            )
        )


def _check_nested(step: RawStep, loc: Loc, names: Mapping[str, Loc], issues: list[Issue]) -> None:
    """The lists inside a step: a group's is checked as a list; the sub-steps of parallel,
    switch and forEach have no needs."""
    group = step.get("group")
    inner = _get(group, "steps") if isinstance(group, Mapping) else None
    if isinstance(inner, list):
        _check_list(inner, (*loc, "group", "steps"), names, issues)
    for kind in ("parallel", "switch"):
        container = step.get(kind)
        nested = _get(container, "steps") if isinstance(container, Mapping) else None
        for index, node in enumerate(nested if isinstance(nested, list) else []):
            child = RawStep.of(node)
            if child is not None:
                _no_needs(child, (*loc, kind, "steps", index), kind, issues)
                _check_nested(child, (*loc, kind, "steps", index), names, issues)
    template = step.template
    if template is not None:
        _no_needs(template, (*loc, "forEach", "step"), "forEach", issues)
        _check_nested(template, (*loc, "forEach", "step"), names, issues)


_FINISH_IN_GRAPH = (
    "not allowed in a list whose steps have needs: it runs as a graph, so there are no "
    "later steps to skip"
)
_SIDE_BY_SIDE = {
    "parallel": "the sub-steps of parallel run side by side already",
    "switch": "one branch of a switch runs, so there is nothing to wait for",
    "forEach": "the items of a forEach run side by side",
}


def _no_needs(step: RawStep | None, loc: Loc, kind: str, issues: list[Issue]) -> None:
    if step is not None and step.get("needs") not in (None, []):
        issues.append(
            Issue(
                (*loc, "needs"),
                f"only allowed on steps of spec.steps, spec.finally or a group: "
                f"{_SIDE_BY_SIDE[kind]}",
            )
        )


def _step_needs(
    step: RawStep, loc: Loc, own: set[str], names: Mapping[str, Loc], issues: list[Issue]
) -> list[str]:
    """The names a step needs, reporting every malformed, unknown or repeated one."""
    needs = step.get("needs")
    if not isinstance(needs, list):
        return []  # absent, or not a list (the model says so)
    found: list[str] = []
    for index, need in enumerate(needs):
        where = (*loc, "needs", index)
        name = need.get("step") if isinstance(need, Mapping) else need
        if not isinstance(name, str):
            continue  # malformed: the model says how
        if name == step.name:
            issues.append(Issue(where, f"step {name!r} cannot need itself"))
        elif name not in own:
            if name in names:
                issues.append(
                    Issue(
                        where,
                        f"step {name!r} is not in this list (it is at "
                        f"{format_path(('spec', *names[name][:-1]))}); "
                        "needs name steps of the same list only",
                    )
                )
            else:
                issues.append(
                    Issue(
                        where,
                        f"no step of this list is named {name!r}{did_you_mean(name, sorted(own))}",
                    )
                )
        elif name in found:
            issues.append(Issue(where, f"{name!r} is needed twice"))
        else:
            found.append(name)
    return found
