"""The cluster sub-commands of ``kubesteps`` / ``kubectl kubesteps``: views and verbs.

Thin: each command resolves the kubeconfig, calls ``kubesteps.views`` and renders what it
returns (``kubesteps.plugin.render``), or prints it as JSON/YAML with ``-o``.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import sys
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click
import yaml

if TYPE_CHECKING:  # `kubesteps --help` imports no client (tenacity pulls in OpenTelemetry)
    from kubesteps.kube.client import KubeClient

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

OUTPUTS = click.Choice(["table", "json", "yaml"])


def now() -> datetime:
    return datetime.now(UTC)


# -- options shared by every cluster command ----------------------------------------------


def cluster_options(*, all_namespaces: bool = False) -> Callable[[F], F]:
    """``--kubeconfig``, ``--context``, ``-n/--namespace`` (and ``-A`` where it lists)."""

    def decorate(function: F) -> F:
        options = [
            click.option(
                "--kubeconfig",
                envvar=None,
                metavar="FILE",
                help="The kubeconfig to use (default: $KUBECONFIG, ~/.kube/config).",
            ),
            click.option("--context", metavar="NAME", help="The kubeconfig context to use."),
            click.option(
                "-n", "--namespace", metavar="NS", help="The namespace (default: the context's)."
            ),
        ]
        if all_namespaces:
            options.append(
                click.option(
                    "-A", "--all-namespaces", is_flag=True, help="List across all namespaces."
                )
            )
        for option in reversed(options):
            function = option(function)
        return function

    return decorate


def output_option(function: F) -> F:
    return click.option(
        "-o",
        "--output",
        type=OUTPUTS,
        default="table",
        show_default=True,
        help="table (for people), json or yaml (for scripts).",
    )(function)


class Session:
    """Where the command talks to: credentials and namespace from the kubeconfig."""

    def __init__(self, kubeconfig: str | None, context: str | None, namespace: str | None) -> None:
        from kubesteps.plugin.kubeconfig_loader import load

        self.target = load(kubeconfig, context)
        self.namespace = namespace or self.target.namespace

    def client(self) -> KubeClient:
        from kubesteps.kube.client import KubeClient

        return KubeClient(self.target.credentials, attempts=2, timeout=30.0)

    def run(self, work: Callable[[KubeClient], Awaitable[T]]) -> T:
        async def main() -> T:
            async with self.client() as client:
                return await work(client)

        return asyncio.run(main())


def session_of(params: Mapping[str, Any]) -> Session:
    return Session(params.get("kubeconfig"), params.get("context"), params.get("namespace"))


def dump(data: Any, output: str) -> None:
    if output == "json":
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(yaml.safe_dump(data, sort_keys=False, default_flow_style=False), nl=False)


def show(renderable: Any) -> None:
    from kubesteps.plugin.render import console, text_of

    out = console()
    if out.is_terminal:
        out.print(renderable)
    else:  # plain text: no padding to the width at the ends of lines
        click.echo(text_of(renderable, width=out.width))


# -- completion ---------------------------------------------------------------------------


def _completion_session(ctx: click.Context) -> Session | None:
    try:
        return session_of(ctx.params)
    except Exception:  # completion never fails loudly: it offers nothing
        return None


def complete_pipelines(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[click.shell_completion.CompletionItem]:
    from kubesteps.views import list_pipelines, pipeline_view

    session = _completion_session(ctx)
    if session is None:
        return []
    try:
        items = session.run(lambda c: list_pipelines(c, session.namespace))
    except Exception:
        return []
    found = []
    for item in items:
        view = pipeline_view(item)
        if view.name.startswith(incomplete):
            found.append(
                click.shell_completion.CompletionItem(
                    view.name, help=f"{view.phase} {'/'.join(map(str, view.progress))}"
                )
            )
    return found


def complete_steps(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[click.shell_completion.CompletionItem]:
    from kubesteps.views import get_pipeline, pipeline_view

    session = _completion_session(ctx)
    name = ctx.params.get("name")
    if session is None or not name:
        return []
    try:
        view = pipeline_view(session.run(lambda c: get_pipeline(c, session.namespace, name)))
    except Exception:
        return []
    approvals = ctx.command.name in ("approve", "reject")
    nodes = [n for n in view.walk() if not approvals or n.action == "approval"]
    return [
        click.shell_completion.CompletionItem(n.name, help=n.phase)
        for n in nodes
        if n.name.startswith(incomplete)
    ]


NAME = click.argument("name", shell_complete=complete_pipelines)


# -- views --------------------------------------------------------------------------------


@click.command("get")
@click.argument("names", nargs=-1, shell_complete=complete_pipelines)
@cluster_options(all_namespaces=True)
@output_option
def get(
    names: tuple[str, ...],
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
    all_namespaces: bool,
    output: str,
) -> None:
    """List Pipelines: run, phase, current step, progress, duration, age, next schedule."""
    from kubesteps.plugin.render import pipelines_table
    from kubesteps.views import get_pipeline, list_pipelines, pipeline_view

    session = Session(kubeconfig, context, namespace)

    async def fetch(client: KubeClient) -> list[dict[str, Any]]:
        if names:
            return [await get_pipeline(client, session.namespace, n) for n in names]
        return await list_pipelines(client, None if all_namespaces else session.namespace)

    views = [pipeline_view(item) for item in session.run(fetch)]
    if output != "table":
        dump([view.to_dict(now()) for view in views], output)
        return
    if not views:
        where = "any namespace" if all_namespaces else f"namespace {session.namespace}"
        click.echo(f"No Pipelines in {where}.", err=True)
        return
    show(pipelines_table(views, now(), namespaces=all_namespaces))


def _one(session: Session, name: str) -> tuple[Any, list[Any]]:
    from kubesteps.views import get_pipeline, pipeline_events

    async def fetch(client: KubeClient) -> tuple[Any, list[Any]]:
        obj = await get_pipeline(client, session.namespace, name)
        return obj, await pipeline_events(client, session.namespace, name)

    return session.run(fetch)


@click.command("describe")
@NAME
@cluster_options()
@output_option
def describe(
    name: str, kubeconfig: str | None, context: str | None, namespace: str | None, output: str
) -> None:
    """A Pipeline's run, its step tree, its history and its recent Events."""
    from kubesteps.plugin.render import describe as render
    from kubesteps.views import pipeline_view

    session = Session(kubeconfig, context, namespace)
    obj, events = _one(session, name)
    view = pipeline_view(obj)
    if output != "table":
        dump({**view.to_dict(now()), "events": [e.to_dict() for e in events]}, output)
        return
    show(render(view, events[-15:], now()))


@click.command("tree")
@NAME
@cluster_options()
@output_option
def tree(
    name: str, kubeconfig: str | None, context: str | None, namespace: str | None, output: str
) -> None:
    """The step tree of a Pipeline's current run."""
    from kubesteps.plugin.render import tree as render
    from kubesteps.views import get_pipeline, pipeline_view

    session = Session(kubeconfig, context, namespace)
    view = pipeline_view(session.run(lambda c: get_pipeline(c, session.namespace, name)))
    if output != "table":
        dump(view.to_dict(now()), output)
        return
    show(render(view, now()))


def exit_code(phase: str) -> int:
    """A settled run's result: 0 succeeded, 1 failed or cancelled, 2 suspended (or other)."""
    return {"Succeeded": 0, "Failed": 1, "Cancelled": 1}.get(phase, 2)


@click.command("watch")
@NAME
@cluster_options()
@output_option
@click.option(
    "--timeout",
    type=float,
    default=None,
    metavar="SECONDS",
    help="Give up after this long (exit 3). Default: wait for the run to settle.",
)
def watch(
    name: str,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
    output: str,
    timeout: float | None,
) -> None:
    """The step tree, refreshed live from a watch until the run settles.

    Exit code: 0 the run succeeded, 1 it failed or was cancelled, 2 it is suspended,
    3 --timeout passed first. On a terminal the tree redraws in place; otherwise each
    step transition is one line, and -o json/yaml prints each new version of the view.
    """
    from kubesteps.plugin.render import console, transition_line
    from kubesteps.plugin.render import tree as render
    from kubesteps.views import PipelineView, pipeline_view, watch_pipeline

    session = Session(kubeconfig, context, namespace)
    out = console()

    async def follow(client: KubeClient) -> PipelineView:
        from rich.live import Live

        seen: dict[str, tuple[str, int]] = {}
        last: PipelineView | None = None
        live = (
            Live(console=out, auto_refresh=False, transient=False)
            if out.is_terminal and output == "table"
            else None
        )
        try:
            if live is not None:
                live.start()
            async with asyncio.timeout(timeout):
                async for obj in watch_pipeline(client, session.namespace, name):
                    view = pipeline_view(obj)
                    last = view
                    if live is not None:
                        live.update(render(view, now()), refresh=True)
                    elif output != "table":
                        dump(view.to_dict(now()), output)
                    else:
                        for node in view.walk():
                            state = (node.phase, node.attempts)
                            if seen.get(node.name) != state and node.recorded:
                                click.echo(transition_line(None, node))
                            seen[node.name] = state
                    if view.settled:
                        return view
        except TimeoutError:
            phase = last.phase if last is not None else "unknown"
            click.echo(f"gave up after {timeout:g}s: the run is {phase}", err=True)
            raise SystemExit(3) from None
        finally:
            if live is not None:
                live.stop()
        raise AssertionError("a watch of a Pipeline ends only when it settles")

    view = session.run(follow)
    if not out.is_terminal and output == "table":
        assert view.run is not None
        click.echo(
            f"run {view.run.id} {view.run.phase}"
            + (f" ({view.run.reason})" if view.run.reason not in ("", view.phase) else "")
        )
    raise SystemExit(exit_code(view.phase))


@click.command("history")
@NAME
@cluster_options()
@output_option
def history(
    name: str, kubeconfig: str | None, context: str | None, namespace: str | None, output: str
) -> None:
    """The current run and the earlier ones (status.history), newest first."""
    from kubesteps.plugin.render import history_table
    from kubesteps.views import get_pipeline, pipeline_view

    session = Session(kubeconfig, context, namespace)
    view = pipeline_view(session.run(lambda c: get_pipeline(c, session.namespace, name)))
    if output != "table":
        run = view.run.to_status() if view.run is not None and not view.run.pending else None
        dump({"run": run, "history": [row.to_dict() for row in view.history]}, output)
        return
    show(history_table(view, now()))


@click.command("logs")
@NAME
@click.argument("step", required=False, shell_complete=complete_steps)
@click.option("-f", "--follow", is_flag=True, help="Keep printing as the log grows.")
@cluster_options()
@output_option
def logs(
    name: str,
    step: str | None,
    follow: bool,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
    output: str,
) -> None:
    """A job step's Pod log; for other steps (or none named) their messages and Events.

    A job step whose Pod is gone shows the log tail its record kept, if any.
    """
    from kubesteps.plugin.step_logs import step_log

    session = Session(kubeconfig, context, namespace)

    async def work(client: KubeClient) -> None:
        async for line in step_log(
            client, session.namespace, name, step, follow=follow, output=output
        ):
            click.echo(line, nl=False)

    session.run(work)


# -- graph --------------------------------------------------------------------------------


@click.command("graph")
@click.argument("source", shell_complete=complete_pipelines)
@click.option(
    "--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid", show_default=True
)
@cluster_options()
def graph(
    source: str, fmt: str, kubeconfig: str | None, context: str | None, namespace: str | None
) -> None:
    """Draw the step structure of a Pipeline manifest (FILE) or a live Pipeline (NAME);
    a live one's nodes are coloured by phase."""
    from kubesteps.views import dot, get_pipeline, graph_of, mermaid

    path = pathlib.Path(source)
    if source == "-" or path.is_file():
        obj = _manifest(path, source)
    else:
        session = Session(kubeconfig, context, namespace)
        obj = session.run(lambda c: get_pipeline(c, session.namespace, source))
    drawn = graph_of(obj)
    click.echo(mermaid(drawn) if fmt == "mermaid" else dot(drawn), nl=False)


def _manifest(path: pathlib.Path, source: str) -> dict[str, Any]:
    text = sys.stdin.read() if source == "-" else path.read_text(encoding="utf-8")
    try:
        documents = [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
    except yaml.YAMLError as error:
        raise click.ClickException(f"{source}: not valid YAML: {error}") from None
    pipelines = [d for d in documents if d.get("kind") == "Pipeline"]
    if not pipelines:
        raise click.ClickException(f"{source}: no Pipeline in the file")
    return pipelines[0]


# -- verbs --------------------------------------------------------------------------------


def verb_options(function: F) -> F:
    function = click.option(
        "--wait", is_flag=True, help="Block until the effect is visible on the Pipeline."
    )(function)
    function = click.option(
        "--timeout",
        type=float,
        default=120.0,
        show_default=True,
        metavar="SECONDS",
        help="How long --wait waits.",
    )(function)
    return output_option(cluster_options()(function))


def _verb(
    session: Session,
    call: Callable[[KubeClient], Awaitable[Any]],
    *,
    wait: bool,
    timeout: float,
    output: str,
) -> None:
    from kubesteps.plugin.render import header
    from kubesteps.views import wait_for

    async def work(client: KubeClient) -> tuple[Any, Any]:
        result = await call(client)
        if not wait:
            return result, None
        if output == "table":
            click.echo(result.summary)
            for note in result.notes:
                click.echo(f"note: {note}")
        return result, await wait_for(client, result, seconds=timeout)

    result, after = session.run(work)
    if output != "table":
        data = result.to_dict()
        if after is not None:
            data["after"] = after.to_dict(now())
        dump(data, output)
        return
    if after is None:
        click.echo(result.summary)
        for note in result.notes:
            click.echo(f"note: {note}")
        return
    show(header(after, now()))


@click.command("approve")
@NAME
@click.argument("step", shell_complete=complete_steps)
@click.option("--message", "-m", help="Why: recorded as an Event on the Pipeline.")
@click.option(
    "--as-name",
    "by",
    metavar="NAME",
    help="The approver recorded (default: your user name as the server knows it).",
)
@verb_options
def approve(
    name: str,
    step: str,
    message: str | None,
    by: str | None,
    wait: bool,
    timeout: float,
    output: str,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
) -> None:
    """Approve an approval step that waits, for the run that waits."""
    from kubesteps import views

    session = Session(kubeconfig, context, namespace)
    _verb(
        session,
        lambda c: views.approve(c, session.namespace, name, step, by=by, message=message),
        wait=wait,
        timeout=timeout,
        output=output,
    )


@click.command("reject")
@NAME
@click.argument("step", shell_complete=complete_steps)
@click.option("--message", "-m", help="Why: recorded as an Event on the Pipeline.")
@verb_options
def reject(
    name: str,
    step: str,
    message: str | None,
    wait: bool,
    timeout: float,
    output: str,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
) -> None:
    """Reject an approval step that waits: it fails, and so does the run."""
    from kubesteps import views

    session = Session(kubeconfig, context, namespace)
    _verb(
        session,
        lambda c: views.reject(c, session.namespace, name, step, message=message),
        wait=wait,
        timeout=timeout,
        output=output,
    )


def _run_verb(verb: str, doc: str) -> click.Command:
    @NAME
    @verb_options
    def command(
        name: str,
        wait: bool,
        timeout: float,
        output: str,
        kubeconfig: str | None,
        context: str | None,
        namespace: str | None,
    ) -> None:
        from kubesteps import views

        call = getattr(views, verb)
        session = Session(kubeconfig, context, namespace)
        _verb(
            session,
            lambda c: call(c, session.namespace, name),
            wait=wait,
            timeout=timeout,
            output=output,
        )

    command.__doc__ = doc
    return click.command(verb)(command)


retry = _run_verb(
    "retry",
    "Start the failed, cancelled and rejected steps of the current "
    "run again (kubesteps.dev/retry).",
)
rerun = _run_verb(
    "rerun", "Start a new run from scratch: every step runs again (kubesteps.dev/rerun)."
)
cancel = _run_verb(
    "cancel",
    "Stop the steps at work and delete their Jobs; the run ends Cancelled (kubesteps.dev/cancel).",
)
suspend = _run_verb("suspend", "Pause the run: no new step starts (spec.suspend: true).")
resume = _run_verb("resume", "Go on with the same run (spec.suspend: false).")

COMMANDS: tuple[click.Command, ...] = (
    get,
    describe,
    tree,
    watch,
    history,
    logs,
    graph,
    approve,
    reject,
    retry,
    rerun,
    cancel,
    suspend,
    resume,
)
