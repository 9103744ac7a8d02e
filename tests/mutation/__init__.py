"""On-demand mutation testing of the modules that decide what happens to conversations.

`python -m tests.mutation [MODULE…]` runs mutmut on each module with that module's fast unit
tests only, and prints per module the mutants, the killed, the score and the survivors, less
the equivalent mutants documented in `equivalent.toml`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    """A module under mutation and the fast unit tests that must pin its behaviour."""

    source: str  # path of the module, relative to the repository root
    tests: tuple[str, ...]  # its test files

    @property
    def mutant_glob(self) -> str:
        """The mutmut names of this module's mutants, as a glob (`reconciler.match.*`)."""
        return self.source.removesuffix(".py").replace("/", ".") + ".*"


# The operation kinds, one module each: a kind's own tests, and those of what reads every kind
# (its JSON form, its cost, the stale-plan check that gathers what its precondition needs).
KINDS = ("rename", "create", "send", "react", "delete")
KIND_TESTS = ("tests/plan/operations/test_registry.py", "tests/plan/test_model.py",
              "tests/plan/test_budget.py", "tests/plan/test_stale.py")

TARGETS: dict[str, Target] = {
    "match": Target("reconciler/plan/match.py", ("tests/plan/test_match.py",)),
    "build": Target("reconciler/plan/build.py", ("tests/plan/test_build.py",)),
    "guards": Target("reconciler/plan/guards.py", ("tests/plan/test_guards.py",)),
    "stale": Target("reconciler/plan/stale.py", ("tests/plan/test_stale.py",)),
    **{kind: Target(f"reconciler/plan/operations/{kind}.py", (
        f"tests/plan/operations/test_{kind}.py", *KIND_TESTS)) for kind in KINDS},
    "operations": Target("reconciler/plan/operations/base.py", (
        *(f"tests/plan/operations/test_{kind}.py" for kind in KINDS), *KIND_TESTS)),
    "rules": Target("reconciler/desired/rules.py", ("tests/desired/test_rules.py",)),
    "expectations": Target("reconciler/desired/expectations.py",
                           ("tests/desired/test_expectations.py",)),
    "retry": Target("reconciler/api/retry.py", ("tests/api/test_retry.py",)),
    "pacer": Target("reconciler/api/pacer.py", ("tests/api/test_pacer.py",)),
}

MINIMUM_SCORE = 0.90
