"""The `kubesteps` command line: one click group, one sub-command per job."""

from __future__ import annotations

import json
import os
import pathlib
import sys
from typing import Any

import click

from kubesteps._version import __version__
from kubesteps.yamlio import YAMLError, load, load_all

DEBUG_ENV = "KUBESTEPS_DEBUG"


class Commands(click.Group):
    """The command group: every error is one line (``kubesteps: error: ...``), naming the
    object and the fix, and exits 1; ``--debug`` (anywhere on the line, or
    ``KUBESTEPS_DEBUG=1``) shows the traceback instead."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # Not after "--": there it is an argument.
        end = args.index("--") if "--" in args else len(args)
        if "--debug" in args[:end]:
            os.environ[DEBUG_ENV] = "1"
            args = [arg for arg in args[:end] if arg != "--debug"] + args[end:]
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            raise SystemExit(130) from None
        except Exception as error:
            if os.environ.get(DEBUG_ENV):
                raise
            raise OneLine(error) from None


class OneLine(click.ClickException):
    """An error shown as one line; unexpected ones say so and how to see more."""

    def __init__(self, error: BaseException) -> None:
        from kubesteps.kube.client import ApiError
        from kubesteps.views import ViewError

        if isinstance(error, ViewError | ApiError):
            text = str(error)
        elif isinstance(error, OSError) and error.strerror:
            text = f"{error.strerror}" + (f": {error.filename}" if error.filename else "")
        else:
            text = (
                f"unexpected {type(error).__name__}: {error} (run again with --debug "
                "for the traceback)"
            )
        super().__init__(" ".join(text.split()))

    def show(self, file: Any = None) -> None:
        click.echo(f"kubesteps: error: {self.format_message()}", err=True)


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kubesteps")
def main() -> None:
    """kubesteps: run Pipeline resources with a steps engine, on a cluster or locally.

    On a cluster: get, describe, tree, watch, history, logs, graph and plan show Pipelines;
    approve, reject, retry, rerun, cancel, suspend and resume steer them (also as
    `kubectl kubesteps ...`). Add --debug to any command to see tracebacks.
    """


def plugin_main() -> None:
    """``kubectl-kubesteps``: the same commands, as the kubectl plugin."""
    main(prog_name="kubectl kubesteps")


def _register_cluster_commands() -> None:
    from kubesteps.plugin.commands import COMMANDS

    for command in COMMANDS:
        main.add_command(command)


@main.command()
@click.option(
    "--kind",
    type=click.Choice(["Pipeline", "PipelineTemplate"]),
    default="Pipeline",
    show_default=True,
    help="Which of the two CustomResourceDefinitions.",
)
def crd(kind: str) -> None:
    """Print the Pipeline (or PipelineTemplate) CustomResourceDefinition as YAML."""
    # Imported on use: each sub-command loads only its own layer, so `--help` stays quick.
    from kubesteps.pipeline.crd import crd_yaml

    click.echo(crd_yaml(kind), nl=False)


_TEMPLATES_HELP = (
    "YAML files or directories holding the PipelineTemplates that uses steps "
    "name (those in the files given count too); repeatable."
)


@main.command()
@click.argument(
    "paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=pathlib.Path)
)
@click.option(
    "--templates",
    "template_paths",
    multiple=True,
    type=click.Path(exists=True, path_type=pathlib.Path),
    help=_TEMPLATES_HELP,
)
@click.option(
    "--cluster",
    is_flag=True,
    help="Read the PipelineTemplates that uses steps name from the cluster of the "
    "current kubeconfig context (as the operator would).",
)
def validate(
    paths: tuple[pathlib.Path, ...], template_paths: tuple[pathlib.Path, ...], cluster: bool
) -> None:
    """Check Pipeline (and PipelineTemplate) manifests in YAML files (or directories of
    them) without a cluster.

    Runs the operator's own check: prints `OK <file> <name>` per valid Pipeline and one
    line per problem, every problem at once; other kinds of objects are reported as
    skipped. A Pipeline with uses steps is checked against its templates: those in the
    files, in --templates, or on the cluster (--cluster); without any, it says it cannot.
    Exits 1 if any Pipeline, template (or file) is invalid.
    """
    from kubesteps.plan.validate import addressed, validate_template
    from kubesteps.plan.validate import validate as validate_manifest

    failed = False
    loaded: list[tuple[pathlib.Path, list[object] | str]] = []
    for path in _yaml_files(paths):
        try:
            loaded.append((path, [doc for doc in _load_yaml(path) if doc is not None]))
        except (YAMLError, UnicodeDecodeError) as error:
            loaded.append((path, f"{path}: not valid YAML: {error}"))
    given = [doc for _, documents in loaded if isinstance(documents, list) for doc in documents]
    index = _template_index(given, template_paths)
    source = TemplateSource(index, cluster, bool(template_paths) or bool(index))
    for path, documents in loaded:
        if isinstance(documents, str):
            click.echo(documents)
            failed = True
            continue
        for document in documents:
            name = _name_of(document)
            if not addressed(document):
                click.echo(f"SKIP {path} {_kind_of(document)}/{name}: {_not_ours(document)}")
                continue
            if _kind_of(document) == "PipelineTemplate":
                checked = validate_template(document)
                if isinstance(checked, list):
                    failed = True
                    for problem in checked:
                        click.echo(f"{path}: PipelineTemplate/{name}: {problem}")
                else:
                    click.echo(f"OK {path} PipelineTemplate/{name}")
                continue
            result = validate_manifest(document, source.of(document))
            if isinstance(result, list):
                failed = True
                for problem in result:
                    click.echo(problem_line(path, name, problem))
            else:
                click.echo(f"OK {path} {name}")
    if failed:
        raise SystemExit(1)


class TemplateSource:
    """Where validate and run find the PipelineTemplates a Pipeline uses."""

    def __init__(self, index: dict[tuple[str, str], Any], cluster: bool, given: bool) -> None:
        self.index = index
        self.cluster = cluster
        self.given = given or cluster
        self._read: set[str] = set()

    def of(self, document: object) -> dict[str, Any] | None:
        """The templates of the document's namespace by name (None: none were given)."""
        if not self.given:
            return None
        meta = document.get("metadata") if isinstance(document, dict) else None
        namespace = str((meta if isinstance(meta, dict) else {}).get("namespace") or "default")
        if self.cluster and namespace not in self._read:
            self._read.add(namespace)
            self.index.update(_cluster_templates(namespace))
        return {name: t for (ns, name), t in self.index.items() if ns == namespace}


def _template_index(
    documents: list[object], template_paths: tuple[pathlib.Path, ...]
) -> dict[tuple[str, str], Any]:
    """The valid PipelineTemplates among ``documents`` and in ``template_paths``."""
    from kubesteps.plan.validate import templates_in

    extra: list[object] = []
    for path in _yaml_files(template_paths):
        try:
            extra.extend(doc for doc in _load_yaml(path) if doc is not None)
        except (YAMLError, UnicodeDecodeError) as error:
            raise click.ClickException(f"{path}: not valid YAML: {error}") from error
    index, _ = templates_in([*extra, *documents])  # invalid ones are reported as documents
    return index


def _cluster_templates(namespace: str) -> dict[tuple[str, str], Any]:
    """The PipelineTemplates of ``namespace`` on the cluster of the kubeconfig."""
    import asyncio
    import logging

    import kopf

    from kubesteps.kube.client import ApiError, Credentials, KubeClient
    from kubesteps.pipeline.model import API_VERSION
    from kubesteps.plan.validate import templates_in

    info = kopf.login_with_kubeconfig(
        logger=logging.getLogger("kubesteps.cli"), settings=kopf.OperatorSettings()
    )
    if info is None:
        raise click.ClickException(
            "--cluster: no kubeconfig (set KUBECONFIG or create ~/.kube/config)"
        )

    async def read() -> list[Any]:
        async with KubeClient(Credentials.from_kopf(info)) as client:
            return list(await client.list(API_VERSION, "PipelineTemplate", namespace))

    try:
        items = asyncio.run(read())
    except (ApiError, OSError) as error:
        raise click.ClickException(
            f"--cluster: cannot list PipelineTemplates in namespace {namespace!r}: {error}"
        ) from error
    found, _ = templates_in(
        [{**item, "apiVersion": API_VERSION, "kind": "PipelineTemplate"} for item in items]
    )
    return found


def problem_line(path: pathlib.Path, name: str, problem: object) -> str:
    """One problem of one Pipeline, as `validate` and `run` print it."""
    return f"{path}: Pipeline/{name}: {problem}"


@main.command()
@click.argument(
    "paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=pathlib.Path)
)
@click.option(
    "--state",
    "database",
    type=click.Path(path_type=pathlib.Path),
    default=pathlib.Path(".kubesteps/state.db"),
    show_default=True,
    help="The SQLite file that keeps Pipelines' status between runs.",
)
@click.option(
    "--budget",
    type=float,
    default=60.0,
    show_default=True,
    help="Seconds to keep reconciling before reporting what is still pending.",
)
@click.option(
    "--name",
    "names",
    multiple=True,
    metavar="NAME",
    help="Run only this Pipeline (NAME or NAMESPACE/NAME; repeatable). "
    "Default: every Pipeline in the files.",
)
@click.option("--outputs", is_flag=True, help="Print every step's outputs at the end.")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="Set a param's value (YAML: 3, true, [a, b]...) in every Pipeline that "
    "declares it; repeatable.",
)
@click.option("--quiet", is_flag=True, help="Print only the final table.")
@click.option(
    "--templates",
    "template_paths",
    multiple=True,
    type=click.Path(exists=True, path_type=pathlib.Path),
    help=_TEMPLATES_HELP,
)
@click.option(
    "-o",
    "--output",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="json: print each Pipeline's final status (and nothing else) as JSON.",
)
def run(
    paths: tuple[pathlib.Path, ...],
    database: pathlib.Path,
    budget: float,
    names: tuple[str, ...],
    outputs: bool,
    params: tuple[str, ...],
    quiet: bool,
    template_paths: tuple[pathlib.Path, ...],
    output: str,
) -> None:
    """Run Pipelines locally (no cluster): same engine, same status shape, kept in SQLite.

    Every Pipeline in the files runs, side by side (or only those --name picks). Each is
    checked first as `kubesteps validate` checks it; an invalid one is reported, line by
    line, and does not run. Exit code 0 when every Pipeline is Ready, 1 when one failed,
    was cancelled or is invalid, 2 when one is not Ready yet (still waiting when the
    budget ran out, or suspended). Verbs (kubesteps.dev/retry, rerun, cancel) and
    approvals are annotations in the manifest, as on a cluster. PipelineTemplates in the
    files (or in --templates) are there for the uses steps.

    On a terminal the step trees redraw in place as steps move; otherwise each step
    transition is one line.
    """
    import asyncio

    from kubesteps.local.runner import outputs_table, run_pipelines, table
    from kubesteps.pipeline.suggest import did_you_mean
    from kubesteps.plan.validate import addressed
    from kubesteps.plan.validate import validate as validate_manifest

    echo = (lambda _: None) if quiet or output == "json" else click.echo
    overrides = _param_overrides(params)
    used: set[str] = set()
    manifests = []
    found: list[str] = []
    defined: dict[tuple[str, str], pathlib.Path] = {}
    wanted = set(names)
    invalid = False
    loaded: list[tuple[pathlib.Path, list[object]]] = []
    for path in _yaml_files(paths):
        try:
            loaded.append((path, [doc for doc in _load_yaml(path) if doc is not None]))
        except (YAMLError, UnicodeDecodeError) as error:
            raise click.ClickException(f"{path}: not valid YAML: {error}") from error
    index = _template_index([doc for _, docs in loaded for doc in docs], template_paths)
    source = TemplateSource(index, False, bool(template_paths) or bool(index))
    templates = [
        t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in index.values()
    ]
    for path, documents in loaded:
        for document in documents:
            name = _name_of(document)
            if _kind_of(document) == "PipelineTemplate" and addressed(document):
                continue  # used by the Pipelines that name it (an invalid one: reported there)
            if not addressed(document):
                echo(f"ignoring {path} {_kind_of(document)}/{name}: {_not_ours(document)}")
                continue
            assert isinstance(document, dict)
            metadata = document.get("metadata")
            namespace = str(
                (metadata if isinstance(metadata, dict) else {}).get("namespace") or "default"
            )
            key = (namespace, name)
            found.append(f"{namespace}/{name}")
            if wanted and not wanted & {name, f"{namespace}/{name}"}:
                echo(f"ignoring {path} Pipeline/{name}: not named by --name")
                continue
            # Two definitions of one object would overwrite each other's spec every pass.
            if key in defined:
                raise click.ClickException(
                    f"{path}: Pipeline {namespace}/{name} is already defined in {defined[key]};"
                    " each Pipeline may be given once"
                )
            defined[key] = path
            used |= _set_params(document, overrides)
            spec = document.get("spec")
            if isinstance(spec, dict) and spec.get("schedule") is not None:
                # Nothing here keeps a clock running between invocations: run it now.
                echo(
                    f"ignoring spec.schedule of {path} Pipeline/{name}: kubesteps run runs "
                    "it once, now"
                )
                spec.pop("schedule")
            checked = validate_manifest(document, source.of(document))
            if isinstance(checked, list):  # reported now, as `validate` reports it
                invalid = True
                for problem in checked:
                    click.echo(problem_line(path, name, problem))
            if name != "<no name>":  # the table says InvalidSpec for an invalid one
                manifests.append(document)
    for unused in sorted(set(overrides) - used):
        raise click.ClickException(
            f"--param {unused}: no Pipeline in the files declares a param {unused!r} (spec.params)"
        )
    for name in sorted(wanted):
        if not any(name in (key, key.partition("/")[2]) for key in found):
            hint = did_you_mean(name, [key.partition("/")[2] for key in found])
            raise click.ClickException(f"--name {name}: no such Pipeline in the files{hint}")
    if not manifests:
        if invalid:
            raise SystemExit(1)
        raise click.ClickException("no Pipeline manifests found")
    if sys.stdout.isatty() and not quiet and output == "table":
        from kubesteps.plugin.progress import LiveTrees
        from kubesteps.plugin.render import console

        with LiveTrees(manifests, console()) as trees:
            results = asyncio.run(
                run_pipelines(
                    manifests,
                    database=database,
                    budget=budget,
                    echo=echo,
                    on_step=trees.update,
                    templates=templates,
                )
            )
    else:
        results = asyncio.run(
            run_pipelines(
                manifests, database=database, budget=budget, echo=echo, templates=templates
            )
        )
    if output == "json":
        click.echo(
            json.dumps(
                [
                    {"name": r.name, "namespace": r.namespace, "status": r.body.get("status") or {}}
                    for r in results
                ],
                indent=2,
                default=str,
            )
        )
    else:
        click.echo(table(results))
        if outputs:
            click.echo(outputs_table(results))
    if any(r.result.permanent for r in results):
        raise SystemExit(1)
    if not all(r.ready for r in results):
        raise SystemExit(2)


@main.command()
@click.argument("sources", nargs=-1, required=True, metavar="FILE|NAME...")
@click.option(
    "--state",
    "database",
    type=click.Path(exists=True, dir_okay=False, path_type=pathlib.Path),
    default=None,
    help="For FILEs: the SQLite file of `kubesteps run` to read each Pipeline's "
    "status from (read only). Default: the status in the manifest, if any.",
)
@click.option(
    "--name",
    "names",
    multiple=True,
    metavar="NAME",
    help="For FILEs: plan only this Pipeline (NAME or NAMESPACE/NAME; repeatable).",
)
@click.option(
    "-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option(
    "--kubeconfig",
    metavar="FILE",
    help="For NAMEs: the kubeconfig to use (default: $KUBECONFIG, ~/.kube/config).",
)
@click.option("--context", metavar="NAME", help="For NAMEs: the kubeconfig context to use.")
@click.option(
    "-n", "--namespace", metavar="NS", help="For NAMEs: the namespace (default: the context's)."
)
def plan(
    sources: tuple[str, ...],
    database: pathlib.Path | None,
    names: tuple[str, ...],
    output: str,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
) -> None:
    """Say what a pass would do with each Pipeline now, doing none of it (a dry run).

    A FILE (or directory) holds manifests, planned with the status from --state or their
    own (as `kubectl get -o yaml` prints it); a NAME is a Pipeline on the cluster, planned
    with its live status (`kubectl kubesteps plan NAME`). For each: which steps would run,
    which are done, which are skipped and by which `when`, which wait or retry until when,
    which are throttled until when. Nothing is written and no step runs; only GETs reach
    the cluster. Exits 1 if a Pipeline is invalid.
    """
    import json

    from kubesteps.plan.dry_run import RunPlan, plan_run

    failed = False
    plans: list[RunPlan] = []
    files = [pathlib.Path(s) for s in sources if pathlib.Path(s).exists()]
    live = [s for s in sources if not pathlib.Path(s).exists()]
    for path, name, document, status in _plannable(files, database, names):
        result = plan_run(document, status=status)
        if isinstance(result, list):
            failed = True
            for problem in result:
                click.echo(problem_line(path, name, problem))
            continue
        plans.append(result)
    if live:
        from kubesteps.kube.client import KubeClient
        from kubesteps.plugin.commands import Session
        from kubesteps.views import get_pipeline

        session = Session(kubeconfig, context, namespace)

        async def fetch(client: KubeClient) -> list[dict[str, Any]]:
            return [await get_pipeline(client, session.namespace, name) for name in live]

        for name, body in zip(live, session.run(fetch), strict=True):
            result = plan_run(body)
            if isinstance(result, list):
                failed = True
                for problem in result:
                    click.echo(f"Pipeline/{name}: {problem}")
                continue
            plans.append(result)
    if output == "json":
        click.echo(json.dumps([p.to_dict() for p in plans], indent=2))
    else:
        click.echo("\n\n".join(p.render() for p in plans))
    if failed:
        raise SystemExit(1)


def _plannable(
    files: list[pathlib.Path], database: pathlib.Path | None, names: tuple[str, ...]
) -> list[tuple[pathlib.Path, str, dict[str, Any], dict[str, Any] | None]]:
    """The Pipelines of ``files`` (those ``names`` picks) with the status to plan them for."""
    from kubesteps.local.objects import read_object
    from kubesteps.plan.validate import addressed

    found = []
    for path in _yaml_files(tuple(files)):
        try:
            documents = [doc for doc in _load_yaml(path) if doc is not None]
        except (YAMLError, UnicodeDecodeError) as error:
            raise click.ClickException(f"{path}: not valid YAML: {error}") from error
        for document in documents:
            if not addressed(document) or not isinstance(document, dict):
                continue
            name = _name_of(document)
            metadata = document.get("metadata") or {}
            namespace = str(metadata.get("namespace") or "default")
            if names and not set(names) & {name, f"{namespace}/{name}"}:
                continue
            status = None
            if database is not None:
                stored = read_object(database, namespace, name)
                status = (stored or {}).get("status") or {}
            found.append((path, name, document, status))
    return found


@main.command()
@click.option(
    "-n",
    "--namespace",
    "namespaces",
    multiple=True,
    help="Watch this namespace (repeatable; globs allowed). Default: all.",
)
@click.option("-A", "--all-namespaces", is_flag=True, help="Watch all namespaces (default).")
@click.option("--standalone", is_flag=True, help="No kopf peering.")
@click.option(
    "--liveness", default=None, help="Liveness endpoint, e.g. http://0.0.0.0:8080/healthz"
)
@click.option(
    "--metrics-port",
    type=int,
    default=9090,
    show_default=True,
    help="Prometheus /metrics port (0: off).",
)
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option("--log-level", default="INFO", show_default=True)
@click.option(
    "--leader-election/--no-leader-election",
    default=False,
    show_default=True,
    help="Run only while holding a Lease (for more than one replica).",
)
@click.option(
    "--leader-election-namespace",
    default=None,
    help="Namespace of the Lease (default: $POD_NAMESPACE).",
)
@click.option("--leader-election-lease-name", default="kubesteps-operator", show_default=True)
# Lease timings as client-go names them; hidden: the defaults suit clusters, tests shorten them.
@click.option(
    "--leader-election-lease-duration",
    type=click.IntRange(min=1),
    default=15,
    hidden=True,
    help="Seconds a Lease stays valid without renewal.",
)
@click.option(
    "--leader-election-renew-period",
    type=click.FloatRange(min=0, min_open=True),
    default=5.0,
    hidden=True,
    help="Seconds between the leader's renewals.",
)
@click.option(
    "--leader-election-retry-period",
    type=click.FloatRange(min=0, min_open=True),
    default=2.0,
    hidden=True,
    help="Seconds between a standby's attempts.",
)
@click.option(
    "--per-namespace-metrics", is_flag=True, help="Add a namespace label to metrics (more series)."
)
@click.option(
    "--per-object-metrics",
    is_flag=True,
    help="Export one series per Pipeline (for the stalled-pipelines table).",
)
@click.option(
    "--allow-cross-namespace",
    is_flag=True,
    help="Let apply and waitFor steps act in namespaces other than their Pipeline's"
    " (off: whoever may create a Pipeline acts only in its namespace).",
)
def operator(
    namespaces: tuple[str, ...],
    all_namespaces: bool,
    standalone: bool,
    liveness: str | None,
    metrics_port: int,
    log_format: str,
    log_level: str,
    leader_election: bool,
    leader_election_namespace: str | None,
    leader_election_lease_name: str,
    leader_election_lease_duration: int,
    leader_election_renew_period: float,
    leader_election_retry_period: float,
    per_namespace_metrics: bool,
    per_object_metrics: bool,
    allow_cross_namespace: bool,
) -> None:
    """Run the operator: reconcile Pipelines in the cluster of the current credentials."""
    import asyncio

    from kubesteps.controller.operator import NoCredentials, OperatorConfig, PortInUse
    from kubesteps.controller.operator import run as run_operator

    if all_namespaces and namespaces:
        raise click.UsageError("--all-namespaces and --namespace exclude each other")
    if leader_election_renew_period >= leader_election_lease_duration:
        raise click.UsageError(
            f"--leader-election-renew-period ({leader_election_renew_period:g}s) must be shorter"
            f" than --leader-election-lease-duration ({leader_election_lease_duration}s): the"
            " leader must renew the Lease before it expires"
        )
    config = OperatorConfig(
        namespaces=namespaces,
        standalone=standalone or leader_election,
        liveness=liveness,
        metrics_port=metrics_port,
        log_format=log_format,
        log_level=log_level,
        leader_election=leader_election,
        lease_namespace=leader_election_namespace,
        lease_name=leader_election_lease_name,
        lease_duration=leader_election_lease_duration,
        lease_renew_every=leader_election_renew_period,
        lease_retry_every=leader_election_retry_period,
        per_namespace_metrics=per_namespace_metrics,
        per_object_metrics=per_object_metrics,
        allow_cross_namespace=allow_cross_namespace,
    )
    try:
        asyncio.run(run_operator(config))
    except PortInUse as error:
        raise click.ClickException(error.strerror or str(error)) from None
    except NoCredentials as error:
        raise click.ClickException(str(error)) from None


@main.command()
@click.argument(
    "examples",
    required=False,
    type=click.Path(exists=True, file_okay=False, path_type=pathlib.Path),
)
@click.option(
    "--budget",
    type=float,
    default=90.0,
    show_default=True,
    help="Seconds to wait for the examples to settle.",
)
def demo(examples: pathlib.Path | None, budget: float) -> None:
    """Run the operator against an in-process Kubernetes API emulator on the examples.

    Prints every step transition and a final table; exits 0 when every example is Ready.
    """
    import asyncio

    from kubesteps.local.demo import run_demo

    directory = examples or pathlib.Path("examples")
    if not directory.is_dir():
        raise click.ClickException(f"{directory} is not a directory of example Pipelines")
    if not asyncio.run(run_demo(directory, budget=budget, echo=click.echo)):
        raise SystemExit(1)


@main.command()
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port on 127.0.0.1 (0: a free one).",
)
@click.option(
    "-n",
    "--namespace",
    default=None,
    help="List the Pipelines of this namespace (default: the kubeconfig context's).",
)
@click.option("-A", "--all-namespaces", is_flag=True, help="List the Pipelines of every namespace.")
@click.option(
    "--kubeconfig",
    metavar="FILE",
    default=None,
    help="The kubeconfig to use (default: $KUBECONFIG, ~/.kube/config).",
)
@click.option("--context", metavar="NAME", default=None, help="The kubeconfig context to use.")
@click.option("--open", "open_browser", is_flag=True, help="Open the page in a web browser.")
def ui(
    port: int,
    namespace: str | None,
    all_namespaces: bool,
    kubeconfig: str | None,
    context: str | None,
    open_browser: bool,
) -> None:
    """Serve a web view of Pipelines on 127.0.0.1, with your own kubeconfig (your RBAC).

    Prints the URL to open: it carries a token, new at every start, that the page needs.
    Stop it with Ctrl-C.
    """
    import asyncio

    from kubesteps.ui.startup import UiError, run_ui

    if all_namespaces and namespace:
        raise click.UsageError("--all-namespaces and --namespace exclude each other")
    try:
        asyncio.run(
            run_ui(
                port=port,
                namespace=namespace,
                all_namespaces=all_namespaces,
                kubeconfig=kubeconfig,
                context=context,
                open_browser=open_browser,
                echo=click.echo,
            )
        )
    except UiError as error:
        raise click.ClickException(str(error)) from None
    except KeyboardInterrupt:
        pass


def _load_yaml(path: pathlib.Path) -> list[object]:
    """Every document of a YAML file; parse errors name the file, line and column."""
    with path.open(encoding="utf-8") as stream:
        return load_all(stream)


def _yaml_files(paths: tuple[pathlib.Path, ...]) -> list[pathlib.Path]:
    files: list[pathlib.Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml")))
        else:
            files.append(path)
    return files


def _kind_of(document: object) -> str:
    kind = document.get("kind") if isinstance(document, dict) else None
    return str(kind) if kind else type(document).__name__


def _not_ours(document: object) -> str:
    if isinstance(document, dict) and document.get("kind") == "Pipeline":
        return f"not a kubesteps Pipeline (apiVersion {document.get('apiVersion')})"
    return "not a Pipeline"


def _name_of(document: object) -> str:
    if isinstance(document, dict):
        metadata = document.get("metadata")
        if isinstance(metadata, dict) and isinstance(metadata.get("name"), str):
            return str(metadata["name"])
    return "<no name>"


def _param_overrides(options: tuple[str, ...]) -> dict[str, Any]:
    """``--param name=value`` options as name -> value (the value read as YAML)."""
    overrides: dict[str, Any] = {}
    for option in options:
        name, sep, text = option.partition("=")
        name = name.strip()
        if not sep or not name:
            raise click.ClickException(
                f"--param {option!r}: write NAME=VALUE, e.g. --param region=eu-west-1"
            )
        try:
            overrides[name] = load(text) if text.strip() else ""
        except YAMLError as error:
            raise click.ClickException(f"--param {name}: the value is not YAML: {error}") from None
    return overrides


def _set_params(document: dict[str, Any], overrides: dict[str, Any]) -> set[str]:
    """Set the overridden params a Pipeline declares; the names it declares of them."""
    spec = document.get("spec")
    declared = spec.get("params") if isinstance(spec, dict) else None
    if not isinstance(declared, list):
        return set()
    set_here = set()
    for param in declared:
        if isinstance(param, dict) and param.get("name") in overrides:
            param["value"] = overrides[param["name"]]
            set_here.add(param["name"])
    return set_here


_register_cluster_commands()
