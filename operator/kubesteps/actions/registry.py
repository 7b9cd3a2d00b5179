"""The built-in actions by name, and ``run_action``: validate a step's ``with`` and run it."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import date, datetime
from functools import cache
from typing import Any

from pydantic import ValidationError

from kubesteps.actions.apply import ApplyAction
from kubesteps.actions.approval import ApprovalAction
from kubesteps.actions.base import Action, ActionContext, Outputs
from kubesteps.actions.delay import DelayAction
from kubesteps.actions.http import HttpAction
from kubesteps.actions.job import JobAction
from kubesteps.actions.pipeline import PipelineAction
from kubesteps.actions.python import FUNCTIONS, PythonAction, PythonFunction
from kubesteps.actions.wait_for import WaitForAction
from kubesteps.engine import PermanentError
from kubesteps.pipeline.issues import fields_at, format_path, issues_from_validation_error
from kubesteps.pipeline.params import ACTION_PARAMS, unknown_action
from kubesteps.pipeline.types import PATTERN_DESCRIPTIONS

log = logging.getLogger("kubesteps.actions")

# Outputs are kept in the Pipeline's status, which shares one etcd object (1.5 MiB) with
# every other step: one step gets at most this much JSON.
OUTPUTS_CAP = 8192
TRUNCATED_KEY = "outputsTruncated"


@cache
def builtin_actions() -> Mapping[str, Action]:
    actions: list[Action] = [
        ApplyAction(),
        ApprovalAction(),
        DelayAction(),
        HttpAction(),
        JobAction(),
        PipelineAction(),
        PythonAction(),
        WaitForAction(),
    ]
    by_name = {action.name: action for action in actions}
    # The parameter models are the spec's contract: every one of them must have a runtime.
    assert by_name.keys() == ACTION_PARAMS.keys(), sorted(by_name.keys() ^ ACTION_PARAMS.keys())
    return by_name


def get_action(name: str) -> Action:
    """The action called ``name``, or PermanentError listing the known ones."""
    action = builtin_actions().get(name)
    if action is None:
        raise PermanentError(unknown_action(name))
    return action


def register_python(name: str, function: PythonFunction) -> None:
    """Make ``function`` callable as ``action: python`` with ``function: <name>``.

    For tests and programs that embed kubesteps; installed packages use the
    ``kubesteps.actions`` entry-point group instead.
    """
    FUNCTIONS.register(name, function)


def unregister_python(name: str) -> None:
    FUNCTIONS.unregister(name)


async def run_action(
    ctx: ActionContext, action_name: str, rendered_with: Mapping[str, Any] | None
) -> Outputs:
    """Validate the rendered ``with`` against the action's model, run it, and bound its outputs.

    Invalid parameters fail the step for good, naming each field and what was wrong.
    """
    action = get_action(action_name)
    try:
        params = action.params.model_validate(dict(rendered_with or {}))
    except ValidationError as err:
        issues = issues_from_validation_error(
            err,
            prefix=("with",),
            allowed_fields=lambda inner: fields_at(action.params, inner),
            pattern_descriptions=PATTERN_DESCRIPTIONS,
        )
        problems = "; ".join(f"{format_path(issue.loc)}: {issue.message}" for issue in issues)
        raise PermanentError(f"invalid parameters for action {action_name!r}: {problems}") from err
    outputs = await action.run(ctx, params)
    if outputs is None:
        return None
    return bounded_outputs(ctx.name, outputs)


def bounded_outputs(step: str, outputs: Mapping[str, Any], cap: int = OUTPUTS_CAP) -> Outputs:
    """Outputs as JSON values, at most ``cap`` bytes of JSON.

    Values are kept in order while they fit; each one that does not is replaced by a marker
    string, and ``outputsTruncated`` lists their keys, so a later step sees what is missing
    rather than a silently shorter object. Values that are not JSON fail the step.
    """
    try:
        values = {
            str(key): json.loads(json.dumps(value, default=_json_default))
            for key, value in outputs.items()
        }
    except (TypeError, ValueError) as err:
        raise PermanentError(f"the outputs of step {step!r} are not JSON values: {err}") from err
    if _size(values) <= cap:
        return values
    # Room for the list of truncated keys at its longest (every key), so what is kept fits
    # however many values end up truncated.
    reserve = _size({TRUNCATED_KEY: list(values)})
    if reserve >= cap:
        raise PermanentError(
            f"the outputs of step {step!r} have too many keys ({len(values)}) to fit in "
            f"{cap} bytes of JSON"
        )
    kept: dict[str, Any] = {}
    dropped: list[str] = []
    for key, value in values.items():
        if _size({**kept, key: value}) + reserve <= cap:
            kept[key] = value
            continue
        dropped.append(key)
        marker = f"<truncated: {_size(value)} bytes of JSON>"
        if _size({**kept, key: marker}) + reserve <= cap:
            kept[key] = marker
    kept[TRUNCATED_KEY] = dropped
    log.warning(
        "step %r: outputs are over %d bytes of JSON; truncated %s", step, cap, ", ".join(dropped)
    )
    return kept


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def _size(value: Any) -> int:
    """Bytes of JSON as the API server stores it (UTF-8, not \\u escapes)."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
