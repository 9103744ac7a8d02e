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


TARGETS: dict[str, Target] = {
    "match": Target("reconciler/match.py", ("tests/test_match.py",)),
    "planning": Target("reconciler/planning.py", ("tests/test_planning.py",)),
    "guards": Target("reconciler/guards.py", ("tests/test_guards.py",)),
    "preconditions": Target("reconciler/preconditions.py", ("tests/test_preconditions.py",)),
    "rules": Target("reconciler/rules.py", ("tests/test_rules.py",)),
    "retry": Target("reconciler/retry.py", ("tests/test_retry.py",)),
    "pacer": Target("reconciler/pacer.py", ("tests/test_pacer.py",)),
}

MINIMUM_SCORE = 0.90
