"""The `kubesteps` command line: one click group, one sub-command per job."""

from __future__ import annotations

import pathlib

import click
import yaml

from kubesteps import __version__


@click.group()
@click.version_option(__version__, prog_name="kubesteps")
def main() -> None:
    """kubesteps: run Pipeline resources with a steps engine, on a cluster or locally."""


@main.command()
def crd() -> None:
    """Print the Pipeline CustomResourceDefinition as YAML."""
    # Imported on use: each sub-command loads only its own layer, so `--help` stays quick.
    from kubesteps.pipeline.crd import crd_yaml

    click.echo(crd_yaml(), nl=False)


@main.command()
@click.argument(
    "paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=pathlib.Path)
)
def validate(paths: tuple[pathlib.Path, ...]) -> None:
    """Check Pipeline manifests in YAML files (or directories of them) without a cluster.

    Prints `OK <file> <name>` per valid Pipeline and one line per problem; other kinds of
    objects are reported as skipped. Exits 1 if any Pipeline (or file) is invalid.
    """
    from kubesteps.pipeline.validate import validate as validate_manifest

    failed = False
    for path in _yaml_files(paths):
        try:
            documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            click.echo(f"{path}: not valid YAML: {error}")
            failed = True
            continue
        for document in documents:
            kind = document.get("kind") if isinstance(document, dict) else None
            name = _name_of(document)
            if kind != "Pipeline":
                click.echo(f"SKIP {path} {kind or type(document).__name__}/{name}: not a Pipeline")
                continue
            result = validate_manifest(document)
            if isinstance(result, list):
                failed = True
                for problem in result:
                    click.echo(f"{path}: Pipeline/{name}: {problem}")
            else:
                click.echo(f"OK {path} {name}")
    if failed:
        raise SystemExit(1)


def _yaml_files(paths: tuple[pathlib.Path, ...]) -> list[pathlib.Path]:
    files: list[pathlib.Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml")))
        else:
            files.append(path)
    return files


def _name_of(document: object) -> str:
    if isinstance(document, dict):
        metadata = document.get("metadata")
        if isinstance(metadata, dict) and isinstance(metadata.get("name"), str):
            return str(metadata["name"])
    return "<no name>"
