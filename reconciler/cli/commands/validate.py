"""`reconciler validate [-f PATH…] [PATH…]`: check files without touching the API."""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.cli.common import EXIT_OK, refuse_stray_values
from reconciler.cli.console import Console
from reconciler.desired.loader import load_desired
from reconciler.errors import InputError, Problem


@dataclass(frozen=True)
class ValidateParams:
    """The files and directories to check (-f and positional, in the order given)."""

    paths: tuple[str, ...]


def run(params: ValidateParams, console: Console) -> int:
    """Load and check every file; print how many projects and conversations they declare."""
    if not params.paths:
        raise InputError([Problem("validate needs at least one file or directory "
                                  "(-f PATH or PATH)")])
    refuse_stray_values(params.paths)
    state = load_desired(list(params.paths), env=console.env, secrets=console.secrets)
    for warning in state.warnings:
        console.warning(str(warning))
    console.result(f"OK: {len(state.projects)} projects, {state.conversation_count} conversations")
    return EXIT_OK
