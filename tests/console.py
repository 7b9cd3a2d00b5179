"""Console blocks of the docs, run as a person would paste them.

A block is a session: ``$ command`` lines, each followed by what it prints. The commands
run one after another in one bash, from the repository's root, with ``/tmp/`` moved to a
directory of the test's own and ``.venv/bin/`` to the running virtualenv. What they print
must be what the block shows, but for what differs from run to run: ages, ports, process
ids, times, and the job line (``[1] 4242``) an interactive shell prints for ``&``.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_MARK = "@@console-block-command-done@@"


@dataclass(frozen=True)
class Command:
    line: str
    output: list[str]


def blocks(text: str) -> list[list[Command]]:
    """The console blocks of a markdown text."""
    found = []
    for body in re.findall(r"```console\n(.*?)```", text, flags=re.S):
        commands: list[Command] = []
        for line in body.splitlines():
            if line.startswith("$ "):
                commands.append(Command(line[2:], []))
            else:
                assert commands, f"output before any command: {line!r}"
                commands[-1].output.append(line)
        found.append(commands)
    return found


_VARYING = [
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:<port>"),
    (re.compile(r"\b(pid|kill) \d+"), r"\1 <pid>"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)"), "<time>"),
    (re.compile(r"(\s)\d+(s|m)(\s|$)"), r"\1<age>\3"),  # kubectl's AGE column
]
_JOB = re.compile(r"^\[\d+\] \d+$")


def normal(lines: list[str]) -> list[str]:
    """Lines as compared: varying parts replaced, runs of blanks made one."""
    shown = []
    for line in lines:
        if _JOB.match(line):
            continue
        for pattern, replacement in _VARYING:
            line = pattern.sub(replacement, line)
        shown.append(" ".join(line.split()))
    return shown


def run(commands: list[Command], tmp: Path, *, timeout: float = 120) -> list[list[str]]:
    """Run a block's commands in one bash; what each printed (stdout and stderr)."""
    bin_dir = Path(sys.executable).parent
    script = ["set -u"]
    for command in commands:
        line = command.line.replace("/tmp/", f"{tmp}/").replace(".venv/bin/", f"{bin_dir}/")
        script += [line, f"echo {_MARK}"]
    process = subprocess.Popen(
        ["bash", "-c", "\n".join(script)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={"PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp)},
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    finally:
        _stop(process)
    printed = output.split(f"{_MARK}\n")
    for text in printed:
        for pid in re.findall(r"in the background \(pid (\d+)", text):
            _kill(int(pid))  # an emulator the block left running
    return [text.splitlines() for text in printed[: len(commands)]]


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)  # what the block started with `&`


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
