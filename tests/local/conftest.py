"""A python action the local-run tests count calls of."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from kubesteps.actions.base import ActionContext, Outputs
from kubesteps.actions.registry import register_python, unregister_python
from kubesteps.engine import PermanentError

_names = itertools.count()


class Calls:
    """A python action registered in-process under a fresh name, counting its calls."""

    def __init__(self, fail: str | None = None) -> None:
        self.name = f"tests.local.action{next(_names)}"
        self.args: list[dict[str, Any]] = []
        self.fail = fail

    @property
    def count(self) -> int:
        return len(self.args)

    def __call__(self, ctx: ActionContext, args: dict[str, Any]) -> Outputs:
        self.args.append(args)
        if self.fail:
            raise PermanentError(self.fail)
        return {"call": len(self.args)}

    def step(self, name: str, **args: Any) -> dict[str, Any]:
        return {"name": name, "action": "python", "with": {"function": self.name, "args": args}}

    def register(self) -> None:
        register_python(self.name, self)

    def unregister(self) -> None:
        unregister_python(self.name)


@pytest.fixture
def calls() -> Iterator[Calls]:
    action = Calls()
    action.register()
    yield action
    action.unregister()
