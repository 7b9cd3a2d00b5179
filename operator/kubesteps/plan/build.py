"""Turn a validated Pipeline spec into engine steps.

The steps are built once per spec generation and hold no per-pass data: what changes
between passes (the object as read now, the API client, the step states CEL sees) reaches
them through a ``PassContext`` stored in the engine's run context.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from kubesteps.actions.base import ActionContext, Outputs
from kubesteps.actions.registry import run_action
from kubesteps.engine import (
    Case,
    DynamicStep,
    GroupedSteps,
    Need,
    ParallelSteps,
    PermanentError,
    RetryPolicy,
    SimpleStep,
    State,
    Step,
    StepContext,
    StepState,
    SwitchSteps,
    ThrottlingSettings,
)
from kubesteps.kube.client import KubeClient
from kubesteps.pipeline import model as m
from kubesteps.pipeline.cel_compile import FINALLY_VARIABLE, FOREACH_INDEX, CelError
from kubesteps.pipeline.cel_evaluate import evaluate_list, evaluate_predicate, to_cel
from kubesteps.pipeline.cel_templates import has_template, render
from kubesteps.pipeline.params import rendered_part
from kubesteps.pipeline.runs import Run, work_hash
from kubesteps.pipeline.semantics import MAX_FOREACH_ITEMS
from kubesteps.pipeline.template import PipelineTemplate, template_params

PASS_KEY = "kubesteps.pass"


class StateView(Protocol):
    """The step states of the pass, as CEL's ``steps`` shows them."""

    def states(self) -> Mapping[str, StepState]: ...

    def changed_since(self, mark: int) -> tuple[int, Sequence[str]]: ...


@dataclass
class PassContext:
    """What the steps of one reconcile pass share: the object, the API, the states."""

    pipeline: Mapping[str, Any]
    kube: KubeClient | None
    clock: Callable[[], datetime]
    states: StateView
    extras: dict[str, Any] = field(default_factory=dict)
    run: Run | None = None
    # For finally steps: how the main steps ended, as CEL's ``run`` shows it.
    final: Mapping[str, Any] | None = None
    # Keeps fields in a step's status record besides its state: (step name, fields).
    keep: Callable[[str, Mapping[str, Any]], None] | None = None
    # forEach sub-step name -> the item it runs for, shortened (``fan-out-0`` -> ``eu-west-1``),
    # so that status and views can name it by more than its index.
    items: dict[str, str] = field(default_factory=dict)
    # The CEL forms of `self` and `steps`, converted once and then kept up to date entry by
    # entry: a forEach over many items evaluates many expressions over the same variables.
    _self: Any = field(default=None, init=False, repr=False)
    _steps: Any = field(default=None, init=False, repr=False)
    _params: Any = field(default=None, init=False, repr=False)
    _mark: int = field(default=0, init=False, repr=False)

    def variables(self, item: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """CEL variables: ``self`` (the Pipeline), ``steps`` (name -> phase, outputs…),
        ``params`` (name -> value), and for finally steps ``run``."""
        if self._self is None:
            self._self = to_cel(self.pipeline)
            self._params = to_cel(params_of(self.pipeline))
            self._mark, _ = self.states.changed_since(0)
            self._steps = to_cel(
                {name: _step_view(state) for name, state in self.states.states().items()}
            )
        else:
            self._mark, changed = self.states.changed_since(self._mark)
            current = self.states.states()
            for name in dict.fromkeys(changed):
                self._steps[to_cel(name)] = to_cel(_step_view(current[name]))
        variables: dict[str, Any] = {
            "self": self._self,
            "steps": self._steps,
            "params": self._params,
        }
        if self.final is not None:
            variables[FINALLY_VARIABLE] = to_cel(dict(self.final))
        if item:
            variables.update(item)
            local = variables.pop(LOCAL_KEY, None)
            if isinstance(local, Local):
                variables["params"] = local.cel_params()
                steps = self._steps
                variables["steps"] = to_cel(
                    {
                        **steps,
                        **{
                            name: steps[key]
                            for name in local.names
                            if (key := to_cel(local.prefix + name)) in steps
                        },
                    }
                )
        return variables


LOCAL_KEY = "kubesteps.local"


@dataclass
class Local:
    """What the CEL of a template's steps sees instead of the Pipeline's: the template's
    params, and its own steps by their names in the template (``steps.build`` is the step
    ``<the using step>-build``)."""

    params: Mapping[str, Any]
    prefix: str
    names: tuple[str, ...]
    _cel: Any = field(default=None, init=False, repr=False)

    def cel_params(self) -> Any:
        if self._cel is None:
            self._cel = to_cel(dict(self.params))
        return self._cel


def params_of(pipeline: Mapping[str, Any]) -> dict[str, Any]:
    """The params of a Pipeline object, name -> value (CEL's ``params``)."""
    params = (pipeline.get("spec") or {}).get("params") or []
    return {
        p["name"]: p.get("value")
        for p in params
        if isinstance(p, Mapping) and isinstance(p.get("name"), str)
    }


def _step_view(state: StepState) -> dict[str, Any]:
    return {
        "phase": state.status.value.capitalize(),
        "outputs": dict(state.outputs or {}),
        "attempts": state.attempts,
        "message": state.message,
    }


def _pass(ctx: StepContext) -> PassContext:
    value = ctx.run.get(PASS_KEY)
    if not isinstance(value, PassContext):
        raise PermanentError("internal: the run has no pipeline pass context")
    return value


@dataclass(frozen=True)
class Plan:
    """The engine steps of one spec, plus what the keeper needs to know about them."""

    steps: tuple[Step, ...]
    conditions: dict[str, str]  # state name -> condition type
    keep_on_spec_change: frozenset[str]
    actions: dict[str, str]  # step name -> action name (or step kind), for metrics labels
    spec_hash: str = ""  # what defines the work: a new run starts when it changes
    # step name -> the step `kubectl get` shows as current when that one is at work: the
    # outermost parallel or forEach around it (its sub-steps take turns being "the" step
    # that waits), else itself.
    shown: dict[str, str] = field(default_factory=dict)
    # spec.finally: run once the steps end, whatever the outcome; and the state names of
    # every step in them (generated forEach names excepted: see is_final).
    finally_steps: tuple[Step, ...] = ()
    finally_names: frozenset[str] = frozenset()
    # How many top-level (and finally) steps run at once when their needs make a graph.
    max_concurrency: int | None = None
    # The PipelineTemplates the uses steps expanded: name -> resourceVersion.
    templates: Mapping[str, str] = field(default_factory=dict)

    def is_final(self, name: str) -> bool:
        """Whether a state name is a finally step's (or generated from one)."""
        return _declared(name, {n: n for n in self.finally_names}) != ""

    def uses(self, action: str) -> bool:
        return action in self.actions.values()

    def action_of(self, name: str) -> str:
        """The action (or kind) of a step by its state name, generated names included:
        ``fan-out-3`` is a child of ``fan-out``, ``check-0-1`` one of ``check``."""
        return self.actions.get(_declared(name, self.actions), "")

    def display(self, name: str) -> str:
        """The step to show as current for ``name`` (generated names included)."""
        return self.shown.get(_declared(name, self.shown), name)


def _declared(name: str, names: Mapping[str, str]) -> str:
    """The declared step a state name belongs to: itself, or the one a generated name
    (``fan-out-3``, ``check-0-1``) comes from; ``""`` if none."""
    while name:
        if name in names:
            return name
        head, _, tail = name.rpartition("-")
        if not tail.isdigit():
            return ""
        name = head
    return ""


def build(
    spec: m.PipelineSpec,
    pipeline: Mapping[str, Any],
    templates: Mapping[str, PipelineTemplate] | None = None,
) -> Plan:
    """Build the engine steps for ``spec`` (``pipeline`` renders static templates; the
    ``uses`` steps expand to the steps of ``templates``, checked by ``check_uses``)."""
    conditions: dict[str, str] = {}
    keep: set[str] = set()
    actions: dict[str, str] = {}
    shown: dict[str, str] = {}
    static_vars = {"self": pipeline, "steps": {}, "params": params_of(pipeline)}
    locals_: dict[str, Local] = {}
    versions: dict[str, str] = {}
    if templates is not None:
        spec = _expand(spec, templates, static_vars, locals_, versions)

    def visit(step: m.StepBase, side_by_side: str | None) -> None:
        if isinstance(step, m.Step):
            if step.condition:
                conditions[step.name] = step.condition
            if not step.rerun_on_spec_change:
                keep.add(step.name)
            template = step.for_each.step if step.for_each is not None else step
            actions[step.name] = template.action or template.kind
            shown[step.name] = side_by_side or step.name
            if step.parallel is not None or step.for_each is not None:
                side_by_side = side_by_side or step.name
        for child in step.children:
            visit(child, side_by_side)

    for top in (*spec.steps, *spec.finally_):
        visit(top, None)
    steps = tuple(
        _step(s, s.name, f"spec.steps[{i}]", None, static_vars, locals_=locals_)
        for i, s in enumerate(spec.steps)
    )
    finally_steps = tuple(
        _step(s, s.name, f"spec.finally[{i}]", None, static_vars, locals_=locals_)
        for i, s in enumerate(spec.finally_)
    )
    final: set[str] = set()

    def gather(step: m.StepBase) -> None:
        if isinstance(step, m.Step):
            final.add(step.name)
        for child in step.children:
            gather(child)

    for top in spec.finally_:
        gather(top)
    work = spec.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    if locals_:  # what each use's params are, defaults included, is part of the work too
        work["templateParams"] = {name: dict(local.params) for name, local in locals_.items()}
    spec_hash = work_hash(work)
    return Plan(
        steps,
        conditions,
        frozenset(keep),
        actions,
        spec_hash,
        shown,
        finally_steps,
        frozenset(final),
        spec.max_concurrency,
        versions,
    )


def _step(
    spec: m.StepBase,
    name: str,
    path: str,
    item: Mapping[str, Any] | None,
    static_vars: Mapping[str, Any],
    suffix: str = "",
    *,
    locals_: Mapping[str, Local] | None = None,
) -> Step:
    local = (locals_ or {}).get(spec.name) if isinstance(spec, m.Step) else None
    # A uses step, expanded: the steps in it see the template's scope.
    child_item = item if local is None else {**(item or {}), LOCAL_KEY: local}
    options: dict[str, Any] = {
        "name": name,
        "state": State(),
        "predicates": [
            _predicate(expr, f"{path}.when[{i}]", item) for i, expr in enumerate(spec.when)
        ],
        "abort_on_predicates_false": spec.abort_on_false and bool(spec.when),
        "continue_on_error": spec.continue_on_error,
        "finish_on_success": spec.finish_on_success,
        "timeout": spec.timeout,
        "retry": _retry(spec.retry),
        "tags": {spec.kind},
    }
    if isinstance(spec, m.Step) and spec.needs:
        options["needs"] = [Need(n.step + suffix, n.phase) for n in spec.needs]
    if spec.throttle is not None:
        partition = spec.throttle.partition_key
        if partition and has_template(partition):
            partition = str(
                render(
                    partition, {**static_vars, **(item or {})}, path=f"{path}.throttle.partitionKey"
                )
            )
        options["throttling"] = ThrottlingSettings(
            interval=spec.throttle.interval,
            ensure_step_success=spec.throttle.ensure_success,
            partition_key=partition,
            initial_delay=spec.throttle.initial_delay,
        )
    if spec.action is not None:
        return SimpleStep(
            run=_action(spec.action, spec.params or {}, f"{path}.with", item), **options
        )
    if spec.parallel is not None:
        return ParallelSteps(
            steps=[
                _step(
                    c,
                    c.name + suffix,
                    f"{path}.parallel.steps[{i}]",
                    item,
                    static_vars,
                    suffix,
                    locals_=locals_,
                )
                for i, c in enumerate(spec.parallel.steps)
            ],
            max_concurrency=spec.parallel.max_concurrency,
            fail_fast=spec.parallel.fail_fast,
            **options,
        )
    if spec.group is not None:
        return GroupedSteps(
            steps=[
                _step(
                    c,
                    c.name + suffix,
                    f"{path}.group.steps[{i}]",
                    child_item,
                    static_vars,
                    suffix,
                    locals_=locals_,
                )
                for i, c in enumerate(spec.group.steps)
            ],
            max_concurrency=spec.group.max_concurrency,
            **options,
        )
    if spec.switch is not None:
        # A branch's `when` chooses it: the case's predicates, not the branch step's own.
        cases = []
        for i, branch in enumerate(spec.switch.steps):
            where = f"{path}.switch.steps[{i}]"
            cases.append(
                Case(
                    step=_step(
                        branch.model_copy(update={"when": []}),
                        branch.name + suffix,
                        where,
                        item,
                        static_vars,
                        suffix,
                        locals_=locals_,
                    ),
                    when=[
                        _predicate(expr, f"{where}.when[{j}]", item)
                        for j, expr in enumerate(branch.when)
                    ],
                )
            )
        return SwitchSteps(cases=cases, **options)
    assert spec.for_each is not None
    return DynamicStep(
        generate=_for_each(spec.for_each, name, path, static_vars, suffix, item, locals_),
        **options,
    )


def _retry(policy: m.RetryPolicy) -> RetryPolicy:
    backoff = policy.backoff
    return RetryPolicy(
        limit=policy.limit + 1,  # the spec counts retries, the engine counts attempts
        initial=backoff.initial,
        max_delay=backoff.max,
        factor=backoff.factor,
        jitter=backoff.initial * backoff.jitter,
    )


def _predicate(
    expression: str, path: str, item: Mapping[str, Any] | None
) -> Callable[[StepContext], Any]:
    async def check(ctx: StepContext) -> bool:
        try:
            return evaluate_predicate(expression, _pass(ctx).variables(item), path=path)
        except CelError as error:
            raise PermanentError(str(error)) from error

    check.__qualname__ = f"`{expression}`"
    return check


def _action(
    action: str, params: Mapping[str, Any], path: str, item: Mapping[str, Any] | None
) -> Callable[[StepContext], Any]:
    renderable, as_written = rendered_part(action, params)
    # Most steps' params hold no template: those need no CEL variables (converting the whole
    # Pipeline to CEL values is the costliest part of a quick step's run).
    templated = _templated(renderable)

    async def run(ctx: StepContext) -> Outputs:
        context = _pass(ctx)
        try:
            rendered = (
                render(renderable, context.variables(item), path=path)
                if templated
                else _copied(renderable)
            )
        except CelError as error:
            raise PermanentError(str(error)) from error
        rendered = {**rendered, **as_written}
        keep = context.keep
        action_context = ActionContext(
            step=ctx,
            pipeline=context.pipeline,
            kube=context.kube,
            clock=context.clock,
            extras=context.extras,
            run=context.run,
            keep=None if keep is None else (lambda fields: keep(ctx.name, fields)),
        )
        outputs: Outputs = await run_action(action_context, action, rendered)
        return outputs

    run.__name__ = action
    return run


def _templated(value: Any) -> bool:
    """Whether ``render`` would change anything in ``value`` (a ``${ }`` or ``$${``)."""
    if isinstance(value, str):
        return "${" in value
    if isinstance(value, Mapping):
        return any(_templated(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(_templated(item) for item in value)
    return False


def _copied(value: Any) -> Any:
    """Fresh containers, as ``render`` makes them: an action may change what it got."""
    if isinstance(value, Mapping):
        return {key: _copied(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copied(item) for item in value]
    return value


ITEM_LABEL = 64


def item_label(value: Any) -> str:
    """A forEach item as a short text: a string as it is, anything else as compact JSON."""
    text = (
        value
        if isinstance(value, str)
        else json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)
    )
    return text if len(text) <= ITEM_LABEL else text[: ITEM_LABEL - 1] + "…"


def _for_each(
    spec: m.ForEachSpec,
    name: str,
    path: str,
    static_vars: Mapping[str, Any],
    suffix: str,
    outer: Mapping[str, Any] | None,
    locals_: Mapping[str, Local] | None,
) -> Callable[[StepContext], Awaitable[Sequence[Step]]]:
    async def generate(ctx: StepContext) -> Sequence[Step]:
        context = _pass(ctx)
        variables = context.variables(outer)
        try:
            items = evaluate_list(spec.items, variables, path=f"{path}.forEach.items")
        except CelError as error:
            raise PermanentError(str(error)) from error
        if not items:
            return []
        if len(items) > MAX_FOREACH_ITEMS:
            raise PermanentError(
                f"{path}.forEach.items: {len(items)} items; a forEach runs at most "
                f"{MAX_FOREACH_ITEMS} (each item is a step record in the status)"
            )
        for index, value in enumerate(items):
            context.items[f"{name}-{index}"] = item_label(value)
        children = [
            # Steps nested in the template are named per item too (``check-0``, ``check-1``).
            _step(
                spec.step,
                f"{name}-{index}",
                f"{path}.forEach.step",
                {**(outer or {}), spec.as_: value, FOREACH_INDEX: index},
                static_vars,
                f"{suffix}-{index}",
                locals_=locals_,
            )
            for index, value in enumerate(items)
        ]
        return [
            ParallelSteps(
                name=f"{name}[*]",
                state=None,
                steps=children,
                max_concurrency=spec.max_concurrency,
                fail_fast=spec.fail_fast,
            )
        ]

    return generate


def _expand(
    spec: m.PipelineSpec,
    templates: Mapping[str, PipelineTemplate],
    static_vars: Mapping[str, Any],
    locals_: dict[str, Local],
    versions: dict[str, str],
) -> m.PipelineSpec:
    """``spec`` with every uses step a group of its template's steps, renamed
    ``<the using step>-<their name>``; ``locals_`` gets each such group's CEL scope and
    ``versions`` the resourceVersion of each template expanded."""

    def expand(step: m.StepBase) -> Any:
        if step.uses is not None and isinstance(step, m.Step):
            template = templates[step.uses.template]
            versions[template.name] = template.resource_version
            prefix = f"{step.name}-"
            names = tuple(_names_in(template.spec.steps))
            locals_[step.name] = Local(
                template_params(
                    template, step.uses.params, static_vars, path=f"{step.name}.uses.params"
                ),
                prefix,
                names,
            )
            group = m.GroupSpec.model_construct(
                steps=[_renamed(s, prefix) for s in template.spec.steps], max_concurrency=10
            )
            return step.model_copy(update={"uses": None, "group": group})
        return _map_children(step, expand)

    return spec.model_copy(
        update={
            "steps": [expand(s) for s in spec.steps],
            "finally_": [expand(s) for s in spec.finally_],
        }
    )


def _names_in(steps: Sequence[m.StepBase]) -> list[str]:
    names: list[str] = []
    for step in steps:
        if isinstance(step, m.Step):
            names.append(step.name)
        names.extend(_names_in(step.children))
    return names


def _renamed(step: m.StepBase, prefix: str) -> Any:
    update: dict[str, Any] = {}
    if isinstance(step, m.Step):
        update["name"] = prefix + step.name
        update["needs"] = [n.model_copy(update={"step": prefix + n.step}) for n in step.needs]
    renamed = step.model_copy(update=update)
    return _map_children(renamed, lambda child: _renamed(child, prefix))


def _map_children(step: m.StepBase, change: Callable[[m.StepBase], Any]) -> Any:
    """``step`` with ``change`` applied to the steps directly inside it."""
    for field_name in ("parallel", "group", "switch"):
        container = getattr(step, field_name)
        if container is not None:
            inner = container.model_copy(update={"steps": [change(s) for s in container.steps]})
            return step.model_copy(update={field_name: inner})
    if step.for_each is not None:
        each = step.for_each.model_copy(update={"step": change(step.for_each.step)})
        return step.model_copy(update={"for_each": each})
    return step
