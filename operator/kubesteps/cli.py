"""The `kubesteps` command line: one click group, one sub-command per job."""

from __future__ import annotations

import click

from kubesteps import __version__


@click.group()
@click.version_option(__version__, prog_name="kubesteps")
def main() -> None:
    """kubesteps: run Pipeline resources with a steps engine, on a cluster or locally."""
