"""python: calls a function registered in-process or through the kubesteps.actions entry points."""

from __future__ import annotations

import contextvars
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubesteps.actions.base import ActionContext, Outputs
from kubesteps.actions.python import THREAD_NAME_PREFIX, PythonAction, PythonFunctions
from kubesteps.actions.registry import register_python, unregister_python
from kubesteps.engine import OutcomeKind, PermanentError, StepStatus, WaitError
from kubesteps.kube.client import KubeClient
from kubesteps.pipeline.params import PythonParams

from .conftest import FakeClock, RunFactory


@pytest.fixture
def registered() -> Iterator[list[str]]:
    """Names registered by the test, unregistered afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        unregister_python(name)


def register(names: list[str], name: str, function: Any) -> None:
    register_python(name, function)
    names.append(name)


async def test_an_async_function_gets_the_context_and_args_and_returns_the_outputs(
    make_run: RunFactory, registered: list[str]
) -> None:
    async def greet(ctx: ActionContext, args: dict[str, Any]) -> Outputs:
        return {"greeting": f"hello {args['who']} from {ctx.name} of {ctx.pipeline_name}"}

    register(registered, "tests.greet", greet)
    run = make_run("python", {"function": "tests.greet", "args": {"who": "bob"}}, step="hi")
    assert (await run.once()).kind is OutcomeKind.DONE
    assert run.state.outputs == {"greeting": "hello bob from hi of demo"}


async def test_a_plain_function_runs_off_the_event_loop_thread(
    make_run: RunFactory, registered: list[str]
) -> None:
    threads: list[int] = []

    def where(ctx: ActionContext, args: dict[str, Any]) -> Outputs:
        threads.append(threading.get_ident())
        return {"n": args["n"] + 1}

    register(registered, "tests.where", where)
    run = make_run("python", {"function": "tests.where", "args": {"n": 1}})
    assert (await run.once()).kind is OutcomeKind.DONE
    assert run.state.outputs == {"n": 2}
    assert threads
    assert threads[0] != threading.get_ident()


async def test_a_plain_function_runs_in_the_python_actions_own_threads(
    make_run: RunFactory, registered: list[str]
) -> None:
    # Not the loop's default executor, which a hung function could fill for aiohttp too.
    names: list[str] = []

    def where(ctx: ActionContext, args: dict[str, Any]) -> Outputs:
        names.append(threading.current_thread().name)
        return None

    register(registered, "tests.thread_name", where)
    run = make_run("python", {"function": "tests.thread_name"})
    assert (await run.once()).kind is OutcomeKind.DONE
    assert len(names) == 1
    assert names[0].startswith(f"{THREAD_NAME_PREFIX}_")


CALLER: contextvars.ContextVar[str] = contextvars.ContextVar("caller", default="unset")


async def test_a_plain_function_sees_the_callers_context_variables(
    make_run: RunFactory, registered: list[str]
) -> None:
    seen: list[str] = []

    def read(ctx: ActionContext, args: dict[str, Any]) -> Outputs:
        seen.append(CALLER.get())
        return None

    register(registered, "tests.context", read)
    run = make_run("python", {"function": "tests.context"})
    CALLER.set("the step")
    assert (await run.once()).kind is OutcomeKind.DONE
    assert seen == ["the step"]


async def test_a_function_can_wait_like_any_action(
    make_run: RunFactory, registered: list[str], clock: FakeClock
) -> None:
    async def ready_from_five_past(ctx: ActionContext, args: dict[str, Any]) -> Outputs:
        if ctx.clock().minute < 5:
            raise WaitError("not yet", 60)
        return None

    register(registered, "tests.later", ready_from_five_past)
    run = make_run("python", {"function": "tests.later"})
    assert (await run.once()).kind is OutcomeKind.WAIT
    assert run.state.message.startswith("not yet")
    clock.advance(300)
    assert (await run.once()).kind is OutcomeKind.DONE


async def test_a_function_that_is_not_installed_fails_naming_the_registered_ones(
    make_run: RunFactory, registered: list[str]
) -> None:
    register(registered, "tests.there", lambda ctx, args: None)
    run = make_run("python", {"function": "tests.missing"})
    assert (await run.once()).kind is OutcomeKind.FAILED
    assert "no python action 'tests.missing'" in run.state.message
    assert "tests.there" in run.state.message


async def test_a_result_that_is_not_a_mapping_fails_the_step(
    make_run: RunFactory, registered: list[str]
) -> None:
    register(registered, "tests.number", lambda ctx, args: 42)
    run = make_run("python", {"function": "tests.number"})
    assert (await run.once()).kind is OutcomeKind.FAILED
    assert "returned int" in run.state.message


async def test_an_unexpected_exception_is_retried(
    make_run: RunFactory, registered: list[str]
) -> None:
    def broken(ctx: ActionContext, args: dict[str, Any]) -> Outputs:
        raise RuntimeError("disk on fire")

    register(registered, "tests.broken", broken)
    run = make_run("python", {"function": "tests.broken"})
    assert (await run.once()).kind is OutcomeKind.RETRY
    assert run.state.status is StepStatus.RETRYING
    assert "disk on fire" in run.state.message


def test_registering_a_name_twice_or_a_bad_name_is_refused(registered: list[str]) -> None:
    register(registered, "tests.once", lambda ctx, args: None)
    with pytest.raises(ValueError, match="already registered"):
        register_python("tests.once", lambda ctx, args: None)
    with pytest.raises(ValueError, match="dotted Python name"):
        register_python("not a name", lambda ctx, args: None)


def _write_distribution(root: Path, module: str, body: str) -> None:
    """A distribution on ``root``, as installing a package would leave it, whose module
    ``module`` has ``body`` and which declares ``greet = <module>:greet`` in the
    kubesteps.actions entry-point group."""
    (root / f"{module}.py").write_text(body)
    info = root / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[kubesteps.actions]\ngreet = {module}:greet\n")


async def test_an_entry_point_function_is_found_and_called(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_run: RunFactory
) -> None:
    _write_distribution(
        tmp_path,
        "kubesteps_plugin_ok",
        "async def greet(ctx, args):\n    return {'hello': args['who'], 'step': ctx.name}\n",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    # A fresh table: the shared one listed the entry points before this distribution existed.
    action = PythonAction(PythonFunctions())
    assert "greet" in action.functions.names()

    async def call(ctx: ActionContext) -> Outputs:
        return await action.run(ctx, PythonParams(function="greet", args={"who": "x"}))

    run = make_run("python", {}, step="plugin", call=call)
    assert (await run.once()).kind is OutcomeKind.DONE
    assert run.state.outputs == {"hello": "x", "step": "plugin"}


def test_an_entry_point_that_fails_to_import_is_a_permanent_error_with_the_cause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_distribution(tmp_path, "kubesteps_plugin_broken", "raise ImportError('needs numpy')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PermanentError, match="could not be loaded: ImportError: needs numpy"):
        PythonFunctions().get("greet")


def docs_example() -> dict[str, Any]:
    """The functions of the Python action example in docs/actions.md."""
    docs = (Path(__file__).parents[2] / "docs" / "actions.md").read_text()
    source = re.search(r"```python\n# mypkg/actions.py\n(.*?)```", docs, re.DOTALL)
    assert source is not None, "the python action example is missing from docs/actions.md"
    namespace: dict[str, Any] = {}
    exec(compile(source.group(1), "docs/actions.md", "exec"), namespace)
    return namespace


async def test_the_greet_example_in_the_docs_works(
    make_run: RunFactory, registered: list[str]
) -> None:
    register(registered, "docs.greet", docs_example()["greet"])
    run = make_run("python", {"function": "docs.greet", "args": {"who": "world"}})
    assert (await run.once()).kind is OutcomeKind.DONE
    assert run.state.outputs == {"greeting": "hello world from demo"}
    unnamed = make_run("python", {"function": "docs.greet"})
    assert (await unnamed.once()).kind is OutcomeKind.FAILED
    assert unnamed.state.message == "args.who: say whom to greet"


async def test_the_count_pods_example_in_the_docs_waits_then_counts(
    make_run: RunFactory, registered: list[str], kube: KubeClient, clock: FakeClock
) -> None:
    register(registered, "docs.count_pods", docs_example()["count_pods"])
    run = make_run(
        "python", {"function": "docs.count_pods", "args": {"selector": "app=web", "atLeast": 1}}
    )
    assert (await run.once()).kind is OutcomeKind.WAIT
    assert run.state.message.startswith("0 pods match app=web so far")
    await kube.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web-1", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]},
        },
        "default",
    )
    clock.advance(10)
    assert (await run.once()).kind is OutcomeKind.DONE
    assert run.state.outputs == {"pods": 1}
