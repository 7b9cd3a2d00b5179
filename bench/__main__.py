"""Run every ``bench/bench_*.py`` module's ``main()`` in name order, or only those named.

python -m bench              # all benchmarks
python -m bench emulator     # bench/bench_emulator.py only
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path


def discover() -> list[str]:
    return sorted(
        path.stem.removeprefix("bench_") for path in Path(__file__).parent.glob("bench_*.py")
    )


def main(argv: list[str]) -> int:
    available = discover()
    wanted = [name.removeprefix("bench_") for name in argv] or available
    unknown = [name for name in wanted if name not in available]
    if unknown:
        print(
            f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available)}",
            file=sys.stderr,
        )
        return 2
    for name in wanted:
        print(f"=== bench_{name} ===", flush=True)
        importlib.import_module(f"bench.bench_{name}").main()
        print(flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
