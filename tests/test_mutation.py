"""The table of the on-demand mutation run (`python -m tests.mutation`) stays true: each module
it mutates and each test file that must pin it exist, and the equivalent mutants it leaves out
of the score belong to modules it mutates."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tests.mutation import TARGETS, Target

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("module", sorted(TARGETS))
def test_every_module_and_its_tests_exist(module: str) -> None:
    target = TARGETS[module]
    assert (ROOT / target.source).is_file(), f"{target.source} moved: update tests/mutation"
    for test_file in target.tests:
        assert (ROOT / test_file).is_file(), f"{test_file} moved: update tests/mutation"


def test_equivalent_mutants_are_listed_with_a_reason_under_a_mutated_module() -> None:
    listed = tomllib.loads((ROOT / "tests/mutation/equivalent.toml").read_text(encoding="utf-8"))
    assert set(listed) <= set(TARGETS)
    for entries in listed.values():
        for description, why in entries.items():
            assert ": " in description and " -> " in description
            assert why.strip()


def test_a_modules_mutants_are_named_after_its_path() -> None:
    assert Target("reconciler/match.py", ()).mutant_glob == "reconciler.match.*"
    assert Target("reconciler/plan/build.py", ()).mutant_glob == "reconciler.plan.build.*"
