"""The emulator as a program of its own (for demos and manual poking)::

    python -m kubesteps.testing --port 8080 --kubeconfig /tmp/kubeconfig \\
        --crd crds/pipelines.kubesteps.dev.yaml

``--background`` returns once it serves, so that the next command finds it up.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from kubesteps import yamlio
from kubesteps.testing.emulator import Emulator
from kubesteps.testing.kubeconfig import write_kubeconfig


async def serve(
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    crd_files: Sequence[Path] = (),
    kubeconfig: Path | None = None,
) -> None:
    """Run an emulator until cancelled, e.g. for ``make demo``."""
    emulator = Emulator()
    for path in crd_files:
        for document in yamlio.load_all(path.read_text()):
            if document:
                emulator.register_crd(document)
    async with emulator.serving(host, port) as url:
        if kubeconfig is not None:
            write_kubeconfig(kubeconfig, url)
        print(f"Kubernetes API emulator serving on {url}", flush=True)
        await asyncio.Event().wait()


def _in_background(argv: Sequence[str], parser: argparse.ArgumentParser) -> None:
    """Start the emulator as a process of its own and return once it serves, so that the
    next command (``kubectl apply``) finds it up: a shell's ``&`` would race it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "kubesteps.testing", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        text=True,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    line = process.stdout.readline().strip()  # the first line says it serves, or nothing
    if not line.startswith("Kubernetes API emulator serving on"):
        process.wait()
        parser.exit(1, process.stderr.read())
    process.stdout.close()
    process.stderr.close()
    print(f"{line} in the background (pid {process.pid}; kill {process.pid} stops it)", flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m kubesteps.testing",
        description="Serve an in-memory Kubernetes API for kubectl, kopf and kubernetes-asyncio.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument(
        "--crd",
        type=Path,
        action="append",
        default=[],
        help="a CRD manifest (YAML) to register at start; repeatable",
    )
    parser.add_argument(
        "--kubeconfig", type=Path, help="write a kubeconfig pointing at the emulator to this path"
    )
    parser.add_argument(
        "--background",
        action="store_true",
        help="serve from a process of its own; return once it serves",
    )
    args = parser.parse_args(argv)
    for path in args.crd:
        if not path.is_file():
            parser.error(f"--crd {path}: no such file")
    if args.background:
        given = list(sys.argv[1:] if argv is None else argv)
        _in_background([arg for arg in given if arg != "--background"], parser)
        return
    try:
        asyncio.run(serve(args.host, args.port, crd_files=args.crd, kubeconfig=args.kubeconfig))
    except KeyboardInterrupt:
        sys.exit(0)
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        parser.exit(
            1,
            f"{parser.prog}: error: port {args.port} is in use (another emulator?);"
            " pick another with --port, or --port 0 for a free one\n",
        )
