"""`reconciler show FILE`: render a saved plan."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reconciler.cli.common import EXIT_OK, Format, read_plan, render, show
from reconciler.cli.console import Console


@dataclass(frozen=True)
class ShowParams:
    """The saved plan's file and the format to render it in."""

    plan_file: str
    format: Format


def run(params: ShowParams, console: Console) -> int:
    """Read, check and render the plan."""
    plan, _ = read_plan(Path(params.plan_file))
    show(console, render(plan, params.format, console, saved_as=params.plan_file), params.format)
    return EXIT_OK
