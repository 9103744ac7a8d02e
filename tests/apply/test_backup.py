"""Backups before deletes: no delete without a backup it could write, opting out said
explicitly, and where each backup went."""

from __future__ import annotations

import json

from tests.saved_plans import prune_all
from tests.workspace import PROJECT, Workspace


def test_unwritable_backup_dir_means_no_delete(ws: Workspace) -> None:
    ws.seed("Precious")
    prune_all(ws)
    blocker = ws.path / "not-a-directory"
    blocker.write_text("a file where the backup directory should be")
    result = ws.run("apply", "-f", str(ws.file), "--auto-approve", "--allow-mass-delete",
                    "--backup-dir", str(blocker / "backups"))
    assert result.code == 1
    assert f"--backup-dir: cannot be created: {blocker} is not a directory" in result.err
    written = {m: n for m, n in ws.emulator.stats()["requests"].items() if m != "GET"}
    assert written == {}
    assert ws.names() == ["Precious"]


def test_an_apply_that_deletes_nothing_needs_no_backup_dir(ws: Workspace) -> None:
    ws.declare(f"""
        version: 1
        projects:
          - id: {PROJECT}
            conversations:
              - name: New
    """)
    blocker = ws.path / "not-a-directory"
    blocker.write_text("a file where the backup directory would be")
    result = ws.run("apply", "-f", str(ws.file), "--auto-approve",
                    "--backup-dir", str(blocker / "backups"))
    assert result.code == 0, result.err
    assert ws.names() == ["New"]


def test_no_backup_opts_out_explicitly(ws: Workspace) -> None:
    ws.seed("Scratch")
    prune_all(ws)
    result = ws.run("apply", "-f", str(ws.file), "--auto-approve", "--no-backup",
                    "--allow-mass-delete")
    assert result.code == 0
    assert ws.names() == []
    assert not (ws.path / "backups").exists()


def test_apply_says_where_each_backup_went(ws: Workspace) -> None:
    sessions = [ws.seed(f"Scratch {i}") for i in range(2)]
    prune_all(ws)
    report = ws.path / "report.json"
    result = ws.apply("--report", str(report), "--allow-mass-delete")
    assert result.code == 0, result.err
    backups = ws.path / "backups" / str(PROJECT)
    written = [backups / f"{session}.json" for session in sessions]
    for name, session, path in zip(("Scratch 0", "Scratch 1"), sessions, written, strict=True):
        assert path.is_file()
        assert f"[ok] delete '{name}' (project {PROJECT}, {session}): deleted; backup: " \
               f"{path}\n" in result.err
    assert (f"The transcripts of the 2 deleted conversation(s) are backed up under {backups} "
            "(`reconciler restore FILE` brings one back).") in result.out
    operations = json.loads(report.read_text())["operations"]
    assert sorted(op["backup"] for op in operations) == sorted(map(str, written))
    ws.seed("Unsaved")
    unsaved = ws.run("apply", "-f", str(ws.file), "--auto-approve", "--no-backup")
    assert "backup" not in unsaved.out + unsaved.err
