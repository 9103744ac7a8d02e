"""`-q` for every command: no progress, notes or "wrote …" lines on stderr, but warnings and
errors stay there, and results stay on stdout."""

from __future__ import annotations

from reconciler.emulator import FaultRule
from tests.workspace import PROJECT, Workspace

PRUNING_WITHOUT_OWNS = f"""\
version: 1
projects:
  - id: {PROJECT}
    prune: true
    conversations:
      - name: FAQ
        messages: [How do refunds work?]
"""


def test_quiet_plan_apply_check_and_restore_print_results_only(ws: Workspace) -> None:
    ws.declare(f"version: 1\nprojects:\n  - id: {PROJECT}\n    conversations:\n"
               "      - name: FAQ\n")
    planned = ws.plan("-q", "--out", str(ws.path / "plan.json"))
    assert (planned.code, planned.err) == (0, "")
    assert "+ create 'FAQ'" in planned.out
    applied = ws.apply("-q")
    assert (applied.code, applied.err) == (0, "")
    assert "Apply: 1 done, 0 failed, 0 skipped." in applied.out
    checked = ws.run("check", "-f", str(ws.file), "-q", "--format", "junit",
                     "--out", str(ws.path / "checks.xml"))
    assert (checked.code, checked.err, checked.out) == (0, "", "")


def test_quiet_keeps_a_warning_of_validate(ws: Workspace) -> None:
    ws.declare(PRUNING_WITHOUT_OWNS)
    result = ws.run("validate", "-q", str(ws.file))
    assert result.code == 0
    assert result.out == "OK: 1 projects, 1 conversations\n"
    assert "prune" in result.err and "owns" in result.err


def test_quiet_keeps_a_logged_warning(ws: Workspace) -> None:
    """The credit check that cannot be done is said, -q or not."""
    ws.declare(PRUNING_WITHOUT_OWNS.replace("    prune: true\n", ""))
    ws.emulator.query_credits = 100
    ws.emulator.faults.rules.append(FaultRule(path="limits/usage", status=400, times=None))
    result = ws.plan("-q")
    assert result.code == 0, result.err
    assert "warning: could not read the account's query credits" in result.err


def test_quiet_keeps_the_notes_of_an_export_that_leaves_conversations_out(
        ws: Workspace) -> None:
    ws.seed("Twice")
    ws.seed("Twice")
    result = ws.run("export", "-q", "--project", str(PROJECT))
    assert result.code == 0
    assert "name: Twice" in result.out
    assert "2 conversations are named 'Twice'" in result.err


def test_quiet_restore_prints_what_it_did_and_the_entry_to_declare(ws: Workspace) -> None:
    session = ws.seed("Demo thread")
    ws.emulator.add_message(PROJECT, session, "first question")
    ws.declare_pruned()
    assert ws.apply("--allow-mass-delete").code == 0 and ws.names() == []
    (backup,) = (ws.path / "backups").rglob(f"{session}.json")
    result = ws.run("restore", "-q", str(backup))
    assert (result.code, result.err) == (0, "")
    assert "Restored 'Demo thread'" in result.out
    assert "- name: Demo thread" in result.out
