"""Chaos apply: a plan of creates, renames, deletes and sends over several
projects, applied against an emulator that fails, drops, rate-limits and delays requests,
converges in at most three runs without a duplicate, an unintended delete, a prompt sent twice
or a delete without a backup. The 500-operation configuration: `python -m tests.reliability`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reconciler.emulator import Emulator
from tests.reliability.chaos import ChaosResult, chaos_faults, run_chaos
from tests.reliability.scenario import build_scenario

# Its fixture runs a chaos apply (about a fifth of the suite's time).
pytestmark = pytest.mark.slow

SEED = 20240817
MAX_RUNS = 3


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosResult]:
    """One chaos apply of 120 operations over 3 projects, shared by the tests below."""
    workdir = tmp_path_factory.mktemp("chaos")
    with Emulator(api_key="k-chaos-0123", faults=chaos_faults(seed=SEED)) as emulator:
        emulator.start()
        scenario = build_scenario(emulator, workdir, projects=3, units=10, seed=SEED)
        assert scenario.operations == 120
        result = run_chaos(emulator, scenario, workdir, max_runs=MAX_RUNS, seed=SEED)
        print(result.summary())  # shown with -s: runs, retries, faults, time
        yield result


@pytest.mark.timeout(110)
def test_chaos_apply_converges_keeping_every_promise(outcome: ChaosResult) -> None:
    broken = [(number, problem) for number, run in enumerate(outcome.runs, start=1)
              for problem in run.broken]
    assert broken == []
    assert outcome.converged, outcome.summary()
    assert 1 <= outcome.applies <= MAX_RUNS
    assert outcome.runs[0].planned == 120


def test_chaos_really_injected_every_kind_of_fault(outcome: ChaosResult) -> None:
    faults = outcome.emulator["faults"]
    assert {"server_error", "commit_then_fail", "dropped"} <= set(faults)
    assert outcome.rate_limited > 0
    assert outcome.retries >= sum(faults.values()) // 2
