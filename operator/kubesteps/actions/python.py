"""``python``: call a Python function installed in the ``kubesteps.actions`` entry-point group
(or registered in-process with ``register_python``)."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import importlib.metadata
import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import BaseModel

from kubesteps.actions.base import ActionContext, Outputs
from kubesteps.engine import PermanentError
from kubesteps.pipeline.params import PythonParams
from kubesteps.pipeline.types import PYTHON_FUNCTION_PATTERN

log = logging.getLogger("kubesteps.actions.python")

ENTRY_POINT_GROUP = "kubesteps.actions"

PythonFunction = Callable[[ActionContext, dict[str, Any]], Awaitable[Outputs] | Outputs]

# Plain functions get threads of their own: a step timeout cannot stop a thread, so hung
# functions would otherwise pile up in the loop's default executor, which aiohttp's DNS
# resolver needs too. Past this many, further plain functions queue instead.
PYTHON_THREADS = 8
THREAD_NAME_PREFIX = "kubesteps-python"


@functools.cache
def _executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=PYTHON_THREADS, thread_name_prefix=THREAD_NAME_PREFIX)


class PythonFunctions:
    """The functions the ``python`` action can call, by name.

    Functions registered in-process come first; then the entry points of the group, which
    are listed once and each loaded on first use (loading imports the user's module).
    """

    def __init__(self, group: str = ENTRY_POINT_GROUP) -> None:
        self.group = group
        self._registered: dict[str, PythonFunction] = {}
        self._entry_points: dict[str, importlib.metadata.EntryPoint] | None = None
        self._loaded: dict[str, PythonFunction] = {}

    def register(self, name: str, function: PythonFunction) -> None:
        if not re.match(PYTHON_FUNCTION_PATTERN, name):
            raise ValueError(
                f"python action name {name!r} must be a dotted Python name such as 'greet' "
                "or 'mypkg.greet'"
            )
        if not callable(function):
            raise TypeError(f"python action {name!r}: {function!r} is not callable")
        if name in self._registered:
            raise ValueError(f"python action {name!r} is already registered")
        self._registered[name] = function

    def unregister(self, name: str) -> None:
        self._registered.pop(name, None)

    def names(self) -> list[str]:
        return sorted({*self._registered, *self._installed()})

    def get(self, name: str) -> PythonFunction:
        """The function, or PermanentError naming what is available."""
        if name in self._registered:
            return self._registered[name]
        if name in self._loaded:
            return self._loaded[name]
        entry_point = self._installed().get(name)
        if entry_point is None:
            known = ", ".join(self.names()) or "none"
            raise PermanentError(
                f"with.function: no python action {name!r} is installed (registered: {known}); "
                f"install a package that declares it in the {self.group!r} entry-point group"
            )
        try:
            function: PythonFunction = entry_point.load()
        except Exception as err:  # an import error in the user's package, reported as such
            raise PermanentError(
                f"with.function: python action {name!r} ({entry_point.value}) could not be "
                f"loaded: {type(err).__name__}: {err}"
            ) from err
        if not callable(function):
            raise PermanentError(
                f"with.function: python action {name!r} ({entry_point.value}) is not callable"
            )
        self._loaded[name] = function
        return function

    def _installed(self) -> dict[str, importlib.metadata.EntryPoint]:
        if self._entry_points is None:
            found = importlib.metadata.entry_points(group=self.group)
            self._entry_points = {entry_point.name: entry_point for entry_point in found}
        return self._entry_points


FUNCTIONS = PythonFunctions()


class PythonAction:
    """Calls ``function(ctx, args)``. An async function runs in the operator's event loop and
    may use ``ctx.kube``; a plain function runs in a worker thread, so a slow one does not
    stall other Pipelines (it must not touch ``ctx.kube``, which belongs to the loop)."""

    name: str = "python"
    params: type[BaseModel] = PythonParams

    def __init__(self, functions: PythonFunctions = FUNCTIONS) -> None:
        self.functions = functions

    async def run(self, ctx: ActionContext, params: PythonParams) -> Outputs:
        function = self.functions.get(params.function)
        args = dict(params.args)
        result: Any
        if inspect.iscoroutinefunction(function):
            result = function(ctx, args)
        else:
            # The context goes along (as asyncio.to_thread does): logs keep the step's span.
            call = functools.partial(contextvars.copy_context().run, function, ctx, args)
            result = await asyncio.get_running_loop().run_in_executor(_executor(), call)
        if inspect.isawaitable(result):
            result = await result
        if result is None:
            return None
        if not isinstance(result, Mapping):
            raise PermanentError(
                f"python action {params.function!r} returned {type(result).__name__}; "
                "return a mapping (the step's outputs) or None"
            )
        return dict(result)
