"""The chaos suite in its bounded form, part of ``make test``: two operator replicas with
leader election, behind the fault-injecting proxy, the leader killed three times while 40
Pipelines run. ``make chaos`` runs the longer form (both modes, 60 Pipelines, a random seed
unless ``SEED`` is given); what is checked: tests/chaos/harness.py and docs/testing.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.harness import ChaosConfig, run_chaos, seed_from_env

# Fixed, so that `make test` is the same run every time; SEED=N picks another.
DEFAULT_SEED = 2026


@pytest.mark.slow
@pytest.mark.timeout(600)  # a 45 s run with operator restarts, on a busy machine
async def test_every_check_holds_under_faults_kills_and_a_leader_election(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = ChaosConfig(
        seed=seed_from_env(DEFAULT_SEED),
        duration=45,
        pipelines=40,
        malformed=3,
        deleted=3,
        kills=3,
        replicas=2,
    )

    report = await run_chaos(config, tmp_path)

    with capsys.disabled():
        print(f"\n{report.summary()}")
    assert report.problems == [], "\n".join([report.summary(), *report.problems])
