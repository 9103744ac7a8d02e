"""Plan and apply (scope mine, prune on) while visitors and teammates create, rename and
delete their own conversations in the same projects, some under the names we declare:
nothing of theirs is touched, nothing of ours is duplicated, ours ends as declared."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from reconciler.emulator import Emulator, Faults
from tests.reliability.chaos import ChaosResult, run_chaos
from tests.reliability.scenario import build_scenario
from tests.reliability.writers import Crowd, Writer

SEED = 1337


@dataclass
class Outcome:
    result: ChaosResult
    writers: list[Writer]
    crowd_errors: list[BaseException]
    theirs_broken: list[str]


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    workdir = tmp_path_factory.mktemp("writers")
    faults = Faults(latency_ms=3, latency_jitter_ms=6, seed=SEED)
    with Emulator(api_key="k-writers-0123", faults=faults, page_size=8) as emulator:
        emulator.start()
        scenario = build_scenario(emulator, workdir, projects=2, units=8, seed=SEED)
        writers = [
            Writer(creator, expect.project_id,
                   [*expect.declared, "Stray", "Legal hold", "tmp-x"], seed=SEED + i)
            for i, (creator, expect) in enumerate(
                (c, e) for e in scenario.projects for c in ("visitor", "teammate", "teammate"))
        ]
        crowd = Crowd(emulator, writers, pause=0.04)
        crowd.start()
        try:
            result = run_chaos(emulator, scenario, workdir, rate_limited=0.0, seed=SEED)
        finally:
            crowd.stop()
        broken = [problem for w in writers for problem in w.missing_or_changed(emulator)]
        print(result.summary(), f"; writers acted {sum(w.actions for w in writers)} times")
        yield Outcome(result, writers, crowd.errors, broken)


def test_nothing_of_theirs_is_touched(outcome: Outcome) -> None:
    assert outcome.crowd_errors == []
    assert outcome.theirs_broken == []
    assert sum(len(w.alive) for w in outcome.writers) > 0


def test_ours_converges_without_duplicates_or_unintended_deletes(outcome: Outcome) -> None:
    assert [run.broken for run in outcome.result.runs if run.broken] == []
    assert outcome.result.converged, outcome.result.summary()
    assert outcome.result.applies <= 3


def test_the_others_really_wrote_while_we_applied(outcome: Outcome) -> None:
    assert sum(w.actions for w in outcome.writers) >= 30
    assert {w.creator for w in outcome.writers if w.actions} == {"visitor", "teammate"}
