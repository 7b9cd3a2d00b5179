"""`kubesteps validate` on a large file, YAML loading with libyaml's C loader against the
pure-Python one, and what `kubesteps --help` imports.

The file: 200 Pipelines made from the shipped examples (each example in turn, renamed),
padded to about 1 MB. `validate` runs as a user runs it, in a child process, so its time
includes the interpreter's start-up and imports. Figures are printed with their targets.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from kubesteps.yamlio import C_LOADER, load_all

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PIPELINES = 200
TARGET_BYTES = 1_000_000
VALIDATE_TARGET = 2.5
ROUNDS = 3
COMMAND = "import sys; from kubesteps.cli import main; sys.exit(main())"


def big_file(count: int = PIPELINES, size: int = TARGET_BYTES) -> str:
    """``count`` Pipelines from the examples, each renamed, about ``size`` bytes in all."""
    shipped = [
        doc
        for path in sorted(EXAMPLES.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if isinstance(doc, dict)
    ]
    pipelines = [doc for doc in shipped if doc.get("kind") == "Pipeline"]
    # The templates the examples' Pipelines use go in the same file (validate reads them).
    templates = [doc for doc in shipped if doc.get("kind") == "PipelineTemplate"]
    documents = []
    for index in range(count):
        doc = yaml.safe_load(yaml.safe_dump(pipelines[index % len(pipelines)]))
        doc["metadata"]["name"] = f"{doc['metadata']['name']}-{index}"
        documents.append(doc)
    # Grow each to its share of the size with more steps, as a large Pipeline has them.
    share = size // count
    for doc in documents:
        steps = doc["spec"]["steps"]
        index = 0
        while len(yaml.safe_dump(doc)) < share:
            steps.append(
                {
                    "name": f"extra-{index}",
                    "action": "python",
                    "condition": f"Extra{index}",
                    "with": {
                        "function": "kubesteps.examples.greet",
                        "args": {
                            "who": "${ self.metadata.name }",
                            "greeting": f"extra step {index} of a large Pipeline",
                        },
                    },
                }
            )
            index += 1
    return yaml.safe_dump_all([*templates, *documents], sort_keys=False)


def timed(run: object, clock: Callable[[], float] = time.perf_counter) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        start = clock()
        run()  # type: ignore[operator]
        best = min(best, clock() - start)
    return best


def verdict(met: bool) -> str:
    return "MET" if met else "MISSED"


def main() -> None:
    text = big_file()
    with tempfile.TemporaryDirectory(prefix="kubesteps-bench-") as scratch:
        path = Path(scratch) / "pipelines.yaml"
        path.write_text(text)
        size = path.stat().st_size
        pure = timed(lambda: list(yaml.load_all(text, Loader=yaml.SafeLoader)), time.process_time)
        fast = timed(lambda: load_all(text), time.process_time)
        print(
            f"YAML load of a {size / 1e6:.2f} MB file of {PIPELINES} Pipelines "
            f"(CPU time, best of {ROUNDS}):"
        )
        print(f"  PyYAML pure-Python SafeLoader  {pure:6.2f} s")
        print(
            f"  kubesteps.yamlio ({'libyaml CSafeLoader' if C_LOADER else 'no libyaml!'})"
            f"  {fast:6.2f} s = {pure / fast:.1f}x faster"
        )

        def validate() -> None:
            done = subprocess.run(
                [sys.executable, "-c", COMMAND, "validate", str(path)],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise RuntimeError(f"validate failed: {done.stdout[-500:]}{done.stderr[-500:]}")

        cpu: list[float] = []

        def validate_cpu() -> None:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            validate()
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)

        seconds = timed(validate_cpu)
        used = min(cpu)
        # Judged on CPU time: on an idle machine the wall time is about the same, on a
        # shared one it counts the waits for a core too.
        print(
            f"  `kubesteps validate` on it, start-up included: {used:.2f} s CPU, "
            f"{seconds:.2f} s wall   target <= {VALIDATE_TARGET} s: "
            f"{verdict(used <= VALIDATE_TARGET)}"
        )

    probe = (
        "import sys; from kubesteps.cli import main\n"
        "try:\n    main(['--help'], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
        "print(sorted({m.split('.')[0] for m in sys.modules}))"
    )
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    modules = done.stdout.strip().splitlines()[-1]
    otel = "opentelemetry" in modules
    print(
        f"`kubesteps --help`: {wall:.2f} s; imports OpenTelemetry: {'yes' if otel else 'no'}"
        f"   target: no: {verdict(not otel)}"
    )
