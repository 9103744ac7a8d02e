"""Output paths are checked before anything is done: a plan is never saved over an input file
(by any name), and an output that cannot be written stops the command before the API is
written to (or, for plan and export, read)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.apply.outputs import write_output
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


@pytest.mark.parametrize("command", ["plan --out", "apply --report", "export -o"])
def test_no_output_is_written_through_a_symbolic_link(ws: Workspace, command: str) -> None:
    """A link committed to a repository (`plan.json -> ~/.bashrc`) must not make a CI job
    overwrite what it points to."""
    _declare(ws)
    outside = ws.path.parent / f"{ws.path.name}-outside"
    outside.mkdir()
    target = outside / "precious"
    target.write_text("precious\n")
    link = ws.path / "planted.json"
    link.symlink_to(target)
    name, option = command.split()
    args = {"plan": ["plan", "-f", str(ws.file)],
            "apply": ["apply", "-f", str(ws.file), "--auto-approve", "--no-backup"],
            "export": ["export", "--project", str(PROJECT)]}[name]
    result = ws.run(*args, option, str(link))
    assert result.code == 1
    shown = "--output" if option == "-o" else option
    assert (f"error: {link}: {shown}: is a symbolic link; reconciler does not write through "
            "one (a link in a working tree can point anywhere); remove it, or give the path "
            "it points to") in result.err
    assert target.read_text() == "precious\n"
    assert link.is_symlink()
    assert sorted(ws.names()) == LIVE
    assert _requests(ws) == 0


def test_an_output_outside_the_working_directory_is_written(ws: Workspace) -> None:
    _declare(ws)
    outside = ws.path.parent / f"{ws.path.name}-plans" / "plan.json"
    assert ws.plan("--out", str(outside.resolve())).code == 0
    assert '"format_version"' in outside.read_text()


def test_an_output_file_is_replaced_whole_keeping_its_permissions(tmp_path: Path) -> None:
    """Replaced by a rename: a hard link to the old file keeps the old content (it is another
    name of what was there), the name gets the new content with the old file's mode."""
    out = tmp_path / "report.json"
    out.write_text("old report, longer than the new one\n")
    out.chmod(0o640)
    os.link(out, tmp_path / "kept.json")
    write_output(out, b"new\n")
    assert out.read_text() == "new\n"
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    assert (tmp_path / "kept.json").read_text() == "old report, longer than the new one\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.json", "report.json"]


def test_an_output_that_must_not_replace_a_file_keeps_one_made_meanwhile(
    tmp_path: Path
) -> None:
    out = tmp_path / "support.yaml"
    write_output(out, b"first\n", replace=False)
    with pytest.raises(FileExistsError):
        write_output(out, b"second\n", replace=False)
    assert out.read_text() == "first\n"
    assert [p.name for p in tmp_path.iterdir()] == ["support.yaml"]


def test_a_link_planted_at_an_output_is_never_followed_by_the_writer(tmp_path: Path) -> None:
    target = tmp_path / "precious"
    target.write_text("precious\n")
    (tmp_path / "out.json").symlink_to(target)
    with pytest.raises(OSError, match="is a symbolic link"):
        write_output(tmp_path / "out.json", b"plan\n")
    assert target.read_text() == "precious\n"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=True).stdout


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_add_all_never_stages_the_state_directory(ws: Workspace) -> None:
    """Backups (full transcripts), locks and the sandbox stay out of a careless `git add .`:
    `.reconciler/` carries its own `.gitignore`."""
    _declare(ws)
    _git(ws.path, "init", "-q")
    applied = ws.run("apply", "-f", str(ws.file), "--auto-approve")  # default backup directory
    assert applied.code == 0, applied.err
    sandboxed = ws.run("plan", "--sandbox", "-f", str(ws.file))
    assert sandboxed.code == 0, sandboxed.err
    state = ws.path / ".reconciler"
    assert [p.name for p in (state / "backups").iterdir()]
    assert (state / "sandbox.db").exists() and (state / "locks").is_dir()
    _git(ws.path, "add", ".")
    assert _git(ws.path, "diff", "--cached", "--name-only").split() == ["conversations.yaml"]
    assert (state / ".gitignore").read_text().splitlines()[-1] == "*"
