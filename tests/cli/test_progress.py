"""Progress bars: on a terminal stderr only; never in pipelines or with -q."""

from __future__ import annotations

import io

import pytest

from reconciler.cli.main import main
from tests.workspace import PROJECT, Workspace


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("stderr_is_terminal", "quiet", "shown"),
    [(True, False, True), (False, False, False), (True, True, False)],
    ids=["terminal", "pipeline", "quiet"],
)
def test_progress_bars_only_on_a_terminal(
    ws: Workspace, stderr_is_terminal: bool, quiet: bool, shown: bool
) -> None:
    ws.declare(f"version: 1\nprojects: [{{id: {PROJECT}, conversations: "
               + str([{"name": f"c{i}"} for i in range(30)]).replace("'", '"') + "}]\n")
    err = Terminal() if stderr_is_terminal else io.StringIO()
    out = io.StringIO()
    args = ["apply", "-f", str(ws.file), "--auto-approve", "--no-backup"]
    code = main([*args, *(["-q"] if quiet else [])], env=ws.env, stdout=out, stderr=err)
    assert code == 0
    assert ("Applying" in err.getvalue()) is shown
    assert "Applying" not in out.getvalue()
    assert "\x1b[" not in out.getvalue(), "stdout is not a terminal: no colour"


@pytest.mark.parametrize(
    ("extra_env", "flags", "coloured"),
    [({}, [], True), ({"NO_COLOR": "1"}, [], False), ({}, ["--no-color"], False)],
    ids=["terminal", "no-color-env", "no-color-flag"],
)
def test_colour_only_on_a_terminal_and_never_with_no_color(
    ws: Workspace, extra_env: dict[str, str], flags: list[str], coloured: bool
) -> None:
    ws.declare(f"version: 1\nprojects: [{{id: {PROJECT}, conversations: [{{name: A}}]}}]\n")
    out = Terminal()
    code = main(["plan", "-f", str(ws.file), *flags], env={**ws.env, **extra_env},
                stdout=out, stderr=io.StringIO())
    assert code == 0
    assert ("\x1b[32m+ create 'A'" in out.getvalue()) is coloured


def test_the_apply_bar_says_how_long_is_left_at_the_pace(ws: Workspace) -> None:
    ws.emulator.faults.rate_limit_per_minute = 60
    ws.emulator.faults.rate_limit_window = 1.0  # a scaled minute: 30 requests a second taken
    ws.declare(f"version: 1\nprojects: [{{id: {PROJECT}, conversations: "
               + str([{"name": f"c{i}"} for i in range(6)]).replace("'", '"') + "}]\n")
    err = Terminal()
    code = main(["apply", "-f", str(ws.file), "--auto-approve", "--no-backup"], env=ws.env,
                stdout=io.StringIO(), stderr=err)
    assert code == 0
    assert "left at 1800/min" in err.getvalue()
    assert ws.emulator.refusals() == 0
