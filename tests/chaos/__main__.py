"""``python -m tests.chaos``: one chaos run, its summary line, and exit status 1 on problems.

``make chaos`` runs it with ``SEED`` and ``DURATION`` (see docs/testing.md).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
from pathlib import Path

from tests.chaos.harness import ChaosConfig, run_chaos


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="reproduces a run's Pipelines, schedule and faults (default: random)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=60.0,
        help="seconds over which Pipelines are created and operators killed",
    )
    parser.add_argument("--pipelines", type=int, default=60)
    parser.add_argument("--malformed", type=int, default=4)
    parser.add_argument("--deleted", type=int, default=4)
    parser.add_argument("--kills", type=int, default=None, help="default: 3 to 5, by the seed")
    parser.add_argument(
        "--replicas",
        type=int,
        choices=(1, 2),
        default=None,
        help="1, 2 (leader election), or both one after the other (default)",
    )
    parser.add_argument(
        "--keep", type=Path, default=None, help="a directory to keep the operators' logs in"
    )
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    kills = args.kills if args.kills is not None else random.Random(seed).randint(3, 5)
    failed = False
    for replicas in (args.replicas,) if args.replicas else (1, 2):
        config = ChaosConfig(
            seed=seed,
            duration=args.duration,
            pipelines=args.pipelines,
            malformed=args.malformed,
            deleted=args.deleted,
            kills=kills,
            replicas=replicas,
        )
        with tempfile.TemporaryDirectory(prefix="kubesteps-chaos-") as scratch:
            workdir = args.keep or Path(scratch)
            workdir.mkdir(parents=True, exist_ok=True)
            report = asyncio.run(run_chaos(config, workdir))
        print(report.summary(), flush=True)
        for problem in report.problems:
            print(f"  PROBLEM: {problem}", flush=True)
        failed = failed or bool(report.problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
