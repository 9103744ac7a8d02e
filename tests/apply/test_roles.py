"""A key whose role may not change a conversation (a team member's, on another user's
conversation: 403) fails that operation only, naming it; the rest of the apply goes on and the
run exits 1. A rejected key (401, or 403 on a read) still stops everything at once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.emulator import Emulator, FaultRule
from tests.workspace import PROJECT, Workspace

OWNER_KEY = "owner-key-0123456789"
MEMBER_KEY = "member-key-0123456789"
ROLE = ("was refused (HTTP 403): the API key's role may not change this conversation (a team "
        "member's key may change only its own)")


@pytest.fixture
def member(tmp_path: Path) -> Iterator[Workspace]:
    """A workspace whose API key is a team member's, on an emulator whose account owner has
    conversations in PROJECT too."""
    with Emulator(api_key=OWNER_KEY, member_key=MEMBER_KEY, enable_admin=True) as emulator:
        emulator.start()
        emulator.ensure_project(PROJECT, "demo")
        env = {"CUSTOMGPT_API_KEY": MEMBER_KEY, "CUSTOMGPT_BASE_URL": emulator.base_url}
        yield Workspace(tmp_path, env, emulator)


def outcomes(ws: Workspace, report: Path) -> dict[str, tuple[str, str]]:
    """Each operation's key: its outcome and detail, from the apply report."""
    document = json.loads(report.read_text())
    return {op["key"]: (op["outcome"], op["detail"]) for op in document["operations"]}


def test_a_refused_rename_fails_alone_and_the_rest_is_applied(member: Workspace) -> None:
    ws = member
    owners = ws.seed("Owner's old")  # created by the account's owner
    own = ws.seed("Member's old", creator="teammate")  # the member's own
    ws.declare(f"""
        version: 1
        projects:
          - id: {PROJECT}
            scope: team
            conversations:
              - name: Owner's new
                renamed_from: ["Owner's old"]
              - name: Member's new
                renamed_from: ["Member's old"]
              - name: Fresh
                messages: [hello, again]
    """)
    report = ws.path / "report.json"
    applied = ws.apply("--report", str(report))
    assert applied.code == 1
    refused = f"renaming conversation {owners} in project {PROJECT} to \"Owner's new\" {ROLE}"
    assert f"[FAILED] rename \"Owner's new\" (project {PROJECT}, {owners}): {refused}" in (
        applied.err)
    assert "CUSTOMGPT_API_KEY" not in applied.out + applied.err
    results = outcomes(ws, report)
    assert results[f"{PROJECT}/rename/{owners}"] == ("failed", refused)
    assert results[f"{PROJECT}/rename/{own}"][0] == "done"
    assert [results[f"{PROJECT}/{kind}"][0] for kind in
            ("create/Fresh", "send/Fresh#1", "send/Fresh#2")] == ["done"] * 3
    assert ws.names() == ["Fresh", "Member's new", "Owner's old"]
    # trying again would fail the same way: the summary says so instead of "run apply again"
    assert ("The API key's role may not make 1 of the failed change(s) (403): applying again "
            "with this key fails the same way") in applied.out
    assert "Run apply again" not in applied.out + applied.err


def test_a_refused_delete_and_send_fail_alone(member: Workspace) -> None:
    ws = member
    owners_stray = ws.seed("Owner's stray")
    owners_faq = ws.seed("FAQ")
    ws.seed("Member's stray", creator="teammate")
    ws.declare(f"""
        version: 1
        projects:
          - id: {PROJECT}
            scope: team
            prune: true
            owns: ["*"]
            conversations:
              - name: FAQ
                messages: [hello]
    """)
    report = ws.path / "report.json"
    applied = ws.apply("--report", str(report), "--allow-mass-delete")
    assert applied.code == 1
    results = outcomes(ws, report)
    sent = f"sending a message to conversation {owners_faq} in project {PROJECT} {ROLE}"
    assert results[f"{PROJECT}/send/{owners_faq}#1"] == ("failed", sent)
    # the send failed, so the project's deletes are skipped, as after any failure
    assert {key: outcome for key, (outcome, _) in results.items() if "/delete/" in key} == {
        f"{PROJECT}/delete/{owners_stray}": "skipped",
        f"{PROJECT}/delete/{ws.emulator.conversations(PROJECT)[2]['session_id']}": "skipped"}
    ws.declare(f"""
        version: 1
        projects:
          - id: {PROJECT}
            scope: team
            prune: true
            owns: ["*"]
            conversations:
              - name: FAQ
    """)
    applied = ws.apply("--report", str(report), "--allow-mass-delete")
    assert applied.code == 1
    results = outcomes(ws, report)
    deleted = f"deleting conversation {owners_stray} in project {PROJECT} {ROLE}"
    assert results[f"{PROJECT}/delete/{owners_stray}"] == ("failed", deleted)
    assert ws.names() == ["FAQ", "Owner's stray"]  # the member's stray is gone


@pytest.mark.parametrize("path", ["/api/v1/user$", "/api/v1/projects/1001/conversations$"],
                         ids=["the-user", "the-project's-listing"])
def test_a_403_on_a_read_still_stops_everything_with_the_key_message(
    member: Workspace, path: str
) -> None:
    ws = member
    ws.seed("Member's", creator="teammate")
    ws.declare_pruned('[{name: "Fresh"}]')
    ws.emulator.faults.rules.append(FaultRule(method="GET", path=path, status=403, times=None))
    applied = ws.apply()
    assert applied.code == 1
    assert ("the API rejected the key (HTTP 403 (Forbidden)): check CUSTOMGPT_API_KEY or "
            "--api-key-file") in applied.err
    assert ws.names() == ["Member's"]
    assert "POST" not in ws.emulator.stats()["requests"]


def test_a_401_still_stops_everything(member: Workspace) -> None:
    ws = member
    ws.env["CUSTOMGPT_API_KEY"] = "not-a-key-0123456789"
    ws.declare_pruned('[{name: "Fresh"}]')
    applied = ws.apply()
    assert applied.code == 1 and "the API rejected the key (HTTP 401" in applied.err
    assert ws.names() == []
