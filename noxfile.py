"""Test sessions per supported Python: `nox` runs the suite on each interpreter found on this
machine (`nox -s tests-3.13` one of them, `nox -s lint` the linters). The supported versions
are the `Programming Language :: Python :: 3.N` classifiers of pyproject.toml; the project's
own CI (.github/workflows/ci.yml) tests the same list."""

from __future__ import annotations

import re
from pathlib import Path

import nox

ROOT = Path(__file__).parent
PYTHONS = re.findall(r'"Programming Language :: Python :: (3\.\d+)"',
                     (ROOT / "pyproject.toml").read_text(encoding="utf-8"))

nox.options.error_on_missing_interpreters = False  # a machine without one skips it, and says so


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The test suite; extra arguments go to pytest (`nox -s tests -- -m "not slow"`)."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", "-q", *session.posargs)


@nox.session(python=PYTHONS[0])
def lint(session: nox.Session) -> None:
    """ruff and mypy on the package, as before a commit."""
    session.install("-e", ".[test]")
    session.run("ruff", "check", "reconciler", "tests")
    session.run("mypy")
