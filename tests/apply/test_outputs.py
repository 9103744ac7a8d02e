"""Output paths are checked before anything is done: a plan is never saved over an input file
(by any name), and an output that cannot be written stops the command before the API is
written to (or, for plan and export, read)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.workspace import PROJECT, Workspace

LIVE = ["Onboarding", "Stray"]


def _declare(ws: Workspace) -> None:
    """A plan that deletes 'Stray' (and keeps 'Onboarding')."""
    ws.seed("Stray")
    ws.seed("Onboarding")
    ws.declare_pruned("[{name: Onboarding}]")


def _requests(ws: Workspace) -> int:
    return sum(ws.emulator.stats()["requests"].values())


def _same_path(ws: Workspace) -> Path:
    return ws.file


def _symlink(ws: Workspace) -> Path:
    link = ws.path / "link.json"
    link.symlink_to(ws.file)
    return link


def _hardlink(ws: Workspace) -> Path:
    link = ws.path / "hard.json"
    os.link(ws.file, link)
    return link


def _relative(ws: Workspace) -> Path:
    (ws.path / "sub").mkdir()
    return ws.path / "sub" / ".." / ws.file.name


@pytest.mark.parametrize("alias", [_same_path, _symlink, _hardlink, _relative],
                         ids=["same-path", "symlink", "hardlink", "dot-dot"])
def test_plan_out_never_replaces_an_input_file(
    ws: Workspace, alias: Callable[[Workspace], Path]
) -> None:
    _declare(ws)
    before = ws.file.read_text()
    out = alias(ws)
    result = ws.plan("--out", str(out))
    assert result.code == 1
    assert f"--out: is the input file {ws.file}; refusing to overwrite it" in result.err
    assert ws.file.read_text() == before
    assert _requests(ws) == 0


def test_apply_report_equal_to_the_saved_plan_is_refused(ws: Workspace) -> None:
    _declare(ws)
    plan = ws.path / "plan.json"
    assert ws.plan("--out", str(plan)).code == 0
    saved = plan.read_text()
    result = ws.run("apply", "--plan", str(plan), "--auto-approve", "--report", str(plan))
    assert result.code == 1
    assert "--report: is the input file" in result.err
    assert plan.read_text() == saved
    assert ws.names() == LIVE


def _parent_is_a_file(ws: Workspace) -> Path:
    blocker = ws.path / "blocker"
    blocker.write_text("a file")
    return blocker / "sub" / "out.json"


def _a_directory(ws: Workspace) -> Path:
    directory = ws.path / "dir.json"
    directory.mkdir()
    return directory


@pytest.mark.parametrize(
    ("target", "reason"),
    [(_parent_is_a_file, "cannot be created: {} is not a directory"),
     (_a_directory, "is a directory, not a file")],
    ids=["parent-is-a-file", "a-directory"],
)
@pytest.mark.parametrize("command", ["plan --out", "apply --report", "export -o"])
def test_an_unwritable_output_stops_the_command_before_the_api(
    ws: Workspace, command: str, target: Callable[[Workspace], Path], reason: str
) -> None:
    _declare(ws)
    path = target(ws)
    name, option = command.split()
    args = {"plan": ["plan", "-f", str(ws.file)],
            "apply": ["apply", "-f", str(ws.file), "--auto-approve", "--no-backup"],
            "export": ["export", "--project", str(PROJECT)]}[name]
    result = ws.run(*args, option, str(path))
    assert result.code == 1
    shown = "--output" if option == "-o" else option
    assert f"error: {path}: {shown}: {reason.format(ws.path / 'blocker')}" in result.err
    assert ws.names() == LIVE
    assert _requests(ws) == 0


def test_outputs_are_checked_without_creating_anything(ws: Workspace) -> None:
    _declare(ws)
    out = ws.path / "new" / "deeper" / "plan.json"
    report = ws.path / "reports" / "r.json"
    assert ws.plan("--out", str(out)).code == 0
    assert out.exists()
    result = ws.run("apply", "-f", str(ws.file), "--auto-approve", "--dry-run",
                    "--report", str(report), "--backup-dir", str(ws.path / "backups"))
    assert result.code == 0
    assert report.exists()
    assert not (ws.path / "backups").exists()
    assert [p.name for p in ws.path.rglob(".reconciler-probe-*")] == []


@pytest.mark.parametrize("command", ["plan --out", "apply --report", "export -o"])
def test_no_output_replaces_the_api_key_file(ws: Workspace, command: str) -> None:
    _declare(ws)
    key_file = ws.path / "key"
    key_file.write_text(ws.env.pop("CUSTOMGPT_API_KEY"))
    name, option = command.split()
    args = {"plan": ["plan", "-f", str(ws.file)],
            "apply": ["apply", "-f", str(ws.file), "--auto-approve", "--no-backup"],
            "export": ["export", "--project", str(PROJECT)]}[name]
    result = ws.run(*args, "--api-key-file", str(key_file), option, str(key_file))
    assert result.code == 1
    assert f"is the input file {key_file}; refusing to overwrite it" in result.err
    assert key_file.read_text() not in result.out + result.err
    assert _requests(ws) == 0
