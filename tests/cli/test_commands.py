"""plan, apply and show end to end: the CLI against the emulator over sockets."""

from __future__ import annotations

import json
import textwrap

import pytest

from reconciler.desired.schema import validate
from reconciler.emulator import FaultRule
from tests.workspace import OTHER, PROJECT, Workspace


def test_apply_creates_then_plan_is_empty(ws: Workspace) -> None:
    ws.declare(f"""
        version: 1
        projects:
          - id: {PROJECT}
            conversations:
              - name: Onboarding FAQ
              - name: Billing
    """)
    first = ws.apply()
    assert first.code == 0, first.err
    assert "Plan: 2 to create" in first.out
    assert ws.names() == ["Billing", "Onboarding FAQ"]
    again = ws.plan("--detailed-exitcode")
    assert again.code == 0
    assert "No changes." in again.out
    assert ws.apply().code == 0 and ws.names() == ["Billing", "Onboarding FAQ"]


def test_renamed_from_renames_in_place(ws: Workspace) -> None:
    session = ws.seed("Billing")
    ws.emulator.add_message(PROJECT, session, "keep me")
    ws.declare(f"""
        version: 1
        projects:
          - id: {PROJECT}
            prune: true
            conversations:
              - name: Billing questions
                renamed_from: [Billing]
    """)
    assert "~ rename 'Billing' -> 'Billing questions'" in ws.plan().out
    assert ws.apply().code == 0
    (live,) = ws.emulator.conversations(PROJECT)
    assert (live["session_id"], live["name"]) == (session, "Billing questions")
    assert [m["user_query"] for m in ws.emulator.messages(PROJECT, session)] == ["keep me"]


def test_pinned_conversation_is_renamed_to_its_declared_name(ws: Workspace) -> None:
    session = ws.seed("Whatever it was called")
    ws.declare(f"""
        version: 1
        projects:
          - id: {PROJECT}
            conversations:
              - name: Escalations
                session_id: {session}
    """)
    assert ws.apply().code == 0
    assert [(c["session_id"], c["name"]) for c in ws.emulator.conversations(PROJECT)] == [
        (session, "Escalations")]


def test_prune_deletes_undeclared_after_a_backup(ws: Workspace) -> None:
    stray = ws.seed("Stray")
    ws.emulator.add_message(PROJECT, stray, "hello")
    ws.seed("Kept")
    ws.declare(f"""
        version: 1
        projects:
          - id: {PROJECT}
            prune: true
            owns: [Stray]
            max_delete_fraction: 0.5
            conversations: [{{name: Kept}}]
    """)
    result = ws.apply("--report", str(ws.path / "report.json"))
    assert result.code == 0, result.err
    assert ws.names() == ["Kept"]
    (backup,) = (ws.path / "backups" / str(PROJECT)).glob("*.json")
    saved = json.loads(backup.read_text())
    assert saved["conversation"]["session_id"] == stray
    assert [m["user_query"] for m in saved["messages"]] == ["hello"]
    report = json.loads((ws.path / "report.json").read_text())
    assert report["summary"]["done"] == 1
    assert report["operations"][0]["backup"] == str(backup)


def test_without_prune_nothing_is_deleted(ws: Workspace) -> None:
    ws.seed("Stray")
    ws.declare(f"""
        version: 1
        projects: [{{id: {PROJECT}, conversations: []}}]
    """)
    result = ws.plan("--detailed-exitcode")
    assert result.code == 0
    assert "1 conversation(s) in scope left alone" in result.out
    assert ws.apply().code == 0 and ws.names() == ["Stray"]


@pytest.mark.parametrize(
    ("scope", "survivors"),
    [
        ("mine", ["teammate's", "tmp-scratch", "visitor's"]),
        ("team", ["tmp-scratch", "visitor's"]),
        ("all", ["tmp-scratch"]),
    ],
    ids=["mine", "team", "all"],
)
def test_scope_and_ignore_decide_what_prune_may_touch(
    ws: Workspace, scope: str, survivors: list[str]
) -> None:
    ws.seed("visitor's", creator="visitor")
    ws.seed("teammate's", creator="teammate")
    ws.seed("tmp-scratch")
    ws.seed("mine to delete")
    ws.declare(f"""
        version: 1
        projects:
          - id: {PROJECT}
            scope: {scope}
            prune: true
            owns: ["*"]
            ignore: ["tmp-*"]
            conversations: []
    """)
    result = ws.apply("--allow-mass-delete")  # it deletes every conversation it owns
    assert result.code == 0, result.err
    assert ws.names() == survivors


def test_protect_holds_under_prune(ws: Workspace) -> None:
    ws.seed("Legal hold 2024")
    ws.declare(f"""
        version: 1
        projects:
          - id: {PROJECT}
            prune: true
            owns: ["*"]
            protect: ["Legal *"]
            conversations: []
    """)
    assert ws.apply().code == 0
    assert ws.names() == ["Legal hold 2024"]


def test_ambiguous_names_fail_the_plan_and_nothing_is_applied(ws: Workspace) -> None:
    first, second = ws.seed("FAQ"), ws.seed("FAQ")
    ws.declare(f"""
        version: 1
        projects:
          - id: {PROJECT}
            conversations: [{{name: FAQ}}, {{name: New one}}]
    """)
    result = ws.apply()
    assert result.code == 1
    assert first in result.out and second in result.out
    assert ws.names() == ["FAQ", "FAQ"]


def test_adopt_oldest_manages_the_oldest_and_prunes_the_rest(ws: Workspace) -> None:
    """The other copies carry the declared name: the project owns them without `owns`."""
    oldest = ws.seed("FAQ")
    ws.seed("FAQ")
    ws.declare(f"""
        version: 1
        projects:
          - id: {PROJECT}
            prune: true
            max_delete_fraction: 0.5
            duplicates: adopt-oldest
            conversations: [{{name: FAQ}}]
    """)
    assert ws.apply().code == 0
    assert [c["session_id"] for c in ws.emulator.conversations(PROJECT)] == [oldest]


def test_missing_pin_fails_instead_of_creating(ws: Workspace) -> None:
    ws.declare(f"""
        version: 1
        projects:
          - id: {PROJECT}
            conversations:
              - name: Escalations
                session_id: 6f1c2a4e-0000-4000-8000-000000000000
    """)
    result = ws.plan()
    assert result.code == 1
    assert "pinned to session 6f1c2a4e-0000-4000-8000-000000000000" in result.out
    assert ws.names() == []


def test_unknown_project_is_reported_and_the_others_still_planned(ws: Workspace) -> None:
    ws.declare(f"""
        version: 1
        projects:
          - id: 999999
            conversations: [{{name: A}}]
          - id: {OTHER}
            conversations: [{{name: B}}]
    """)
    result = ws.plan()
    assert result.code == 1
    assert "project 999999 not found or not visible to this API key" in result.out
    assert "+ create 'B'" in result.out


def test_two_projects_are_applied_together(ws: Workspace) -> None:
    ws.declare(f"""
        version: 1
        projects:
          - id: {PROJECT}
            conversations: [{{name: A}}]
          - id: {OTHER}
            conversations: [{{name: B}}]
    """)
    assert ws.apply().code == 0
    assert (ws.names(PROJECT), ws.names(OTHER)) == (["A"], ["B"])


def test_detailed_exitcode_gives_0_1_2(ws: Workspace) -> None:
    ws.declare(f"version: 1\nprojects: [{{id: {PROJECT}, conversations: [{{name: A}}]}}]\n")
    assert ws.plan("--detailed-exitcode").code == 2
    assert ws.plan().code == 0
    ws.apply()
    assert ws.plan("--detailed-exitcode").code == 0
    ws.declare("version: 1\nprojects: [{id: 999999}]\n")
    assert ws.plan("--detailed-exitcode").code == 1


def test_dry_run_changes_nothing(ws: Workspace) -> None:
    ws.seed("Stray")
    ws.declare(f"""
        version: 1
        projects:
          - id: {PROJECT}
            prune: true
            owns: [Stray]
            conversations: [{{name: A, messages: [hi]}}]
    """)
    result = ws.apply("--dry-run", "--allow-mass-delete")
    assert result.code == 0
    assert "Dry run: 3 operation(s) would be applied" in result.out
    assert ws.names() == ["Stray"]
    assert not (ws.path / "backups").exists()


def test_apply_without_a_terminal_needs_auto_approve(ws: Workspace) -> None:
    ws.declare(f"version: 1\nprojects: [{{id: {PROJECT}, conversations: [{{name: A}}]}}]\n")
    result = ws.run("apply", "-f", str(ws.file))
    assert result.code == 1
    assert "--auto-approve" in result.err
    assert ws.names() == []


def test_saved_plan_is_applied_as_reviewed(ws: Workspace) -> None:
    ws.declare(f"version: 1\nprojects: [{{id: {PROJECT}, conversations: [{{name: A}}]}}]\n")
    saved = ws.path / "plan.json"
    assert ws.plan("--out", str(saved)).code == 0
    shown = ws.run("show", str(saved), "--format", "markdown")
    assert shown.code == 0 and "| 1 |" in shown.out
    result = ws.run("apply", "--plan", str(saved), "--auto-approve")
    assert result.code == 0, result.err
    assert ws.names() == ["A"]


def test_stale_saved_plan_is_refused_and_nothing_changes(ws: Workspace) -> None:
    old = ws.seed("Old")
    doomed = ws.seed("Doomed")
    ws.declare(f"""
        version: 1
        projects:
          - id: {PROJECT}
            prune: true
            owns: ["*"]
            max_delete_fraction: 0.5
            conversations:
              - {{name: New, renamed_from: [Old]}}
              - {{name: Fresh}}
    """)
    saved = ws.path / "plan.json"
    assert ws.plan("--out", str(saved)).code == 0
    ws.emulator.add_message(PROJECT, doomed, "a colleague wrote here")
    ws.seed("Fresh")
    result = ws.run("apply", "--plan", str(saved), "--auto-approve")
    assert result.code == 1
    assert "stale" in result.err
    assert f"{PROJECT}/delete/{doomed}: changed since the plan was made: messages: 0 -> 1" \
        in result.err
    assert f"{PROJECT}/create/Fresh: a conversation named 'Fresh' now exists" in result.err
    assert f"{PROJECT}/rename/{old}" not in result.err
    assert ws.names() == ["Doomed", "Fresh", "Old"]


def test_partial_failure_is_reported_and_the_rerun_converges(ws: Workspace) -> None:
    ws.seed("Stray")
    ws.declare(f"""
        version: 1
        projects:
          - id: {PROJECT}
            prune: true
            owns: [Stray]
            conversations: [{{name: A}}, {{name: B}}, {{name: C}}]
    """)
    ws.emulator.faults.rules = [
        FaultRule(method="POST", path="/conversations$", status=400, mode="fail", times=1)]
    report_file = ws.path / "report.json"
    first = ws.apply("--report", str(report_file), "--allow-mass-delete")
    assert first.code == 1
    assert "1 failed" in first.out
    report = json.loads(report_file.read_text())
    assert validate(report, "report") == []
    outcomes = sorted((op["action"], op["outcome"]) for op in report["operations"])
    assert outcomes == [("create", "done"), ("create", "done"), ("create", "failed"),
                        ("delete", "skipped")]
    assert len(ws.names()) == 3 and "Stray" in ws.names()
    second = ws.apply("--allow-mass-delete")
    assert second.code == 0, second.err
    assert ws.names() == ["A", "B", "C"]
    assert ws.plan("--detailed-exitcode").code == 0


def test_a_rejected_key_stops_with_advice(ws: Workspace) -> None:
    ws.env["CUSTOMGPT_API_KEY"] = "wrong-key-123"
    ws.declare(f"version: 1\nprojects: [{{id: {PROJECT}}}]\n")
    result = ws.plan()
    assert result.code == 1
    assert "CUSTOMGPT_API_KEY" in result.err
    assert "wrong-key-123" not in result.out + result.err


def test_project_filter_plans_only_the_named_projects(ws: Workspace) -> None:
    ws.declare(f"""
        version: 1
        projects:
          - {{id: {PROJECT}, conversations: [{{name: A}}]}}
          - {{id: {OTHER}, conversations: [{{name: B}}]}}
    """)
    result = ws.plan("--project", str(OTHER))
    assert "'B'" in result.out and "'A'" not in result.out
    assert ws.plan("--project", "5").code == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("apply", "--auto-approve"), "apply needs either desired-state files (-f PATH… or "
                                      "PATH…) or --plan FILE"),
        (("apply", "--plan", "p.json", "-f", "c.yaml"), "apply needs either desired-state"),
        (("apply", "--plan", "p.json", "c.yaml"), "apply needs either desired-state"),
        (("apply", "--plan", "p.json", "--project", "1001"), "--project cannot be combined"),
    ],
    ids=["neither", "both", "both-positional", "project-with-plan"],
)
def test_apply_arguments_that_contradict_each_other(
    ws: Workspace, args: tuple[str, ...], message: str
) -> None:
    result = ws.run(*args)
    assert result.code == 1
    assert message in result.err


def test_an_entry_removed_with_prune_off_is_said_to_be_left_alone(ws: Workspace) -> None:
    ws.declare(f"version: 1\nprojects: [{{id: {PROJECT}, conversations: "
               "[{name: Onboarding FAQ}, {name: Billing}]}]\n")
    assert ws.apply().code == 0
    ws.declare(f"version: 1\nprojects: [{{id: {PROJECT}, conversations: "
               "[{name: Onboarding FAQ}]}]\n")
    said = ("No changes. 1 conversation is not declared and is left alone (prune is off): "
            "'Billing'")
    plan = ws.plan("--detailed-exitcode")
    assert plan.code == 0, plan.err
    assert said in plan.out.splitlines()
    assert "Live conversations match" not in plan.out
    applied = ws.apply()
    assert applied.code == 0 and said in applied.out.splitlines()
    (billing,) = [c["session_id"] for c in ws.emulator.conversations(PROJECT)
                  if c["name"] == "Billing"]
    document = json.loads(ws.plan("--format", "json").out)
    assert document["projects"][0]["unmanaged"] == [
        {"session_id": billing, "name": "Billing", "why": "not declared, prune is off"}]
    assert ws.names() == ["Billing", "Onboarding FAQ"]


def test_a_duplicate_deleted_under_adopt_oldest_is_explained_as_a_duplicate(
    ws: Workspace
) -> None:
    oldest, newer = ws.seed("FAQ"), ws.seed("FAQ")
    ws.declare(f"version: 1\nprojects: [{{id: {PROJECT}, prune: true, duplicates: "
               "adopt-oldest, conversations: [{name: FAQ}]}]\n")
    why = f"a duplicate of 'FAQ' (the oldest, {oldest}, is kept)"
    plan = ws.plan("-v")
    assert f"  - delete 'FAQ'  ({newer}, 0 messages)\n      because {why}; requires" in plan.out
    assert "not declared" not in plan.out
    (delete,) = json.loads(ws.plan("--format", "json").out)["projects"][0]["operations"]
    assert delete["reason"] == why


@pytest.mark.parametrize("resend", [False, True], ids=["name-only", "resent-prompts"])
def test_restore_prints_the_entry_that_keeps_the_next_plan_from_deleting_it_again(
        ws: Workspace, resend: bool) -> None:
    session = ws.seed("Demo thread")
    for prompt in ("first question", "second: ${NOT_A_VAR}"):
        ws.emulator.add_message(PROJECT, session, prompt)
    ws.declare_pruned()
    assert ws.apply("--allow-mass-delete").code == 0 and ws.names() == []
    (backup,) = (ws.path / "backups").rglob(f"{session}.json")
    restored = ws.run("restore", str(backup), *(["--resend-prompts"] if resend else []))
    assert restored.code == 0, restored.err
    said, _, entry = restored.out.partition(
        f"Declare it again: add this entry to project {PROJECT}'s conversations in the "
        "desired-state files; without it, the next plan deletes it again.\n")
    assert "Restored 'Demo thread'" in said
    entry = entry.partition("\nSent ")[0]
    expected = "  - name: Demo thread\n"
    if resend:
        expected += "    messages:\n    - first question\n    - 'second: $${NOT_A_VAR}'\n"
    assert entry.rstrip("\n") == expected.rstrip("\n")
    assert "- delete 'Demo thread'" in ws.plan().out  # undeclared, it is deleted again
    ws.declare_pruned("\n" + textwrap.indent(textwrap.dedent(entry), "      "))
    again = ws.plan("--detailed-exitcode")
    assert again.code == 0, again.out + again.err
