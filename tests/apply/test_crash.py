"""Killing apply at any moment: a real apply process is SIGKILLed at seeded random
moments after its first write; the next apply converges with no duplicate, no unintended
delete, no prompt sent twice and a backup for every delete (a kill between the backup and the
DELETE leaves a backup and a live conversation; the next apply backs it up again)."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from reconciler.emulator import Emulator, Faults
from tests.reliability.crash import CrashTrial, crash_trial

# Its fixture runs 20 real apply processes (about a quarter of the suite's time).
pytestmark = pytest.mark.slow

SEED = 4711
TRIALS = 20


@pytest.fixture(scope="module")
def trials(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[CrashTrial]]:
    """TRIALS kills, each of a fresh project, at delays drawn from a seeded generator."""
    rng = random.Random(SEED)
    done: list[CrashTrial] = []
    faults = Faults(latency_ms=15, latency_jitter_ms=10, seed=SEED)
    with Emulator(api_key="k-crash-0123", faults=faults) as emulator:
        emulator.start()
        for number in range(TRIALS):
            delay = rng.uniform(0.0, 0.25)
            done.append(crash_trial(emulator, tmp_path_factory.mktemp(f"crash{number}"),
                                    first_project=8000 + number, units=4, delay=delay,
                                    parallelism=2, seed=SEED + number))
    mid = sum(t.killed_mid_apply for t in done)
    print(f"{TRIALS} kills, {mid} in the middle of an apply; writes before each kill: "
          f"{[t.writes_before_kill for t in done]}")  # shown with -s
    yield done


@pytest.mark.timeout(110)
def test_every_kill_leaves_promises_kept_and_the_next_apply_converges(
    trials: list[CrashTrial],
) -> None:
    for number, trial in enumerate(trials):
        context = f"trial {number} (killed {trial.delay:.3f} s after the first write)"
        assert trial.broken_after_kill == [], context
        assert trial.recovery_code == 0, f"{context}: {trial.recovery_stderr}"
        assert trial.plan_code == 0, context
        assert trial.broken_after_recovery == [], context


def test_most_kills_land_in_the_middle_of_an_apply(trials: list[CrashTrial]) -> None:
    mid = [t for t in trials if t.killed_mid_apply]
    assert len(mid) >= TRIALS // 3
    assert len({t.writes_before_kill for t in mid}) >= 3  # at different points of the work
