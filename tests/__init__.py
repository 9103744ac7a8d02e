"""The test suite: one folder per layer of the package (`tests/plan/` pins `reconciler/plan/`),
and the cross-cutting tests at the top."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
"""The repository's root: where `examples/`, `schemas/` and `reconciler/` are."""
