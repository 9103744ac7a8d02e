"""`reconciler export`: what is live as desired state; `plan` right after shows no changes."""

from __future__ import annotations

import httpx
import pytest

from reconciler.emulator import Emulator
from tests.workspace import PROJECT, Workspace

ODD_NAMES = [
    'He said "hi"', "it's", "key: value", "  leading spaces", "trailing space ",
    "ünïcödé 日本語 🚀", "- dash", "#hash", "yes", "null", "123", "[brackets]", "{braces}",
    "Cost ${price}", "a\ttab", "100%", "*star", "&amp", "!bang", "@at", "`tick`",
]


def export_then_plan(ws: Workspace, *flags: str) -> str:
    exported = ws.run("export", "--project", str(PROJECT), "-o", str(ws.file), *flags)
    assert exported.code == 0, exported.err
    text = ws.file.read_text(encoding="utf-8")
    assert text.startswith("# yaml-language-server: $schema=")
    assert ws.run("validate", "-f", str(ws.file)).code == 0
    plan = ws.plan("--detailed-exitcode")
    assert plan.code == 0, plan.out + plan.err
    assert "No changes." in plan.out
    return text


@pytest.mark.parametrize("scope", ["mine", "team", "all"])
@pytest.mark.parametrize("pin", [False, True], ids=["names", "pinned"])
def test_round_trip_for_every_scope(ws: Workspace, scope: str, pin: bool) -> None:
    for name in ODD_NAMES:
        ws.seed(name)
    ws.seed("Visitor chat", creator="visitor")
    ws.seed("Colleague's", creator="teammate")
    flags = ("--scope", scope, *(("--pin",) if pin else ()))
    text = export_then_plan(ws, *flags)
    assert ("Visitor chat" in text) is (scope == "all")
    assert ("Colleague's" in text) is (scope in ("team", "all"))
    assert ("session_id:" in text) is pin


def test_duplicates_adopt_the_oldest_and_round_trip(ws: Workspace) -> None:
    oldest = ws.seed("FAQ")
    ws.seed("FAQ")
    ws.seed("Other")
    result = ws.run("export", "--project", str(PROJECT), "--pin", "-o", str(ws.file))
    assert "2 conversations are named 'FAQ'" in result.err
    text = export_then_plan(ws, "--pin")
    assert "duplicates: adopt-oldest" in text
    assert oldest in text


def test_messages_round_trip(ws: Workspace) -> None:
    session = ws.seed("Demo")
    for prompt in ("first: question?", "second ${not a var}", "third"):
        ws.emulator.add_message(PROJECT, session, prompt)
    text = export_then_plan(ws, "--with-messages")
    assert "first: question?" in text
    assert ws.apply().code == 0
    assert len(ws.emulator.messages(PROJECT, session)) == 3


def test_thousand_conversations_round_trip(ws: Workspace, emulator: Emulator) -> None:
    emulator.add_conversations(PROJECT, [f"conversation {i:04}" for i in range(1200)])
    text = export_then_plan(ws)
    assert text.count("- name: ") == 1200


def test_export_to_stdout_is_deterministic(ws: Workspace) -> None:
    for name in ("b", "a", "c"):
        ws.seed(name)
    first = ws.run("export", "--project", str(PROJECT))
    second = ws.run("export", "--project", str(PROJECT))
    assert first.code == 0 and first.out == second.out
    assert first.out.index("name: a") < first.out.index("name: b") < first.out.index("name: c")


def test_export_of_an_unknown_project_fails_clearly(ws: Workspace) -> None:
    result = ws.run("export", "--project", "999999")
    assert result.code == 1
    assert "project 999999 not found or not visible to this API key" in result.err


HOSTILE_STRINGS = ["${HOME}", "$${literal}", "${", "ends with $", "$$", "\x1b[31mred\x07",
                   "${" + "y" * 253, "z" * 255, "line\nbreak", "nul\x00byte", "\x85next"]


def test_every_exported_string_round_trips(ws: Workspace) -> None:
    hostile_project = 3003
    ws.emulator.ensure_project(hostile_project, "${HOME} label " + "L" * 300)
    for name in HOSTILE_STRINGS:
        session = ws.seed(name, project=hostile_project)
        ws.emulator.add_message(hostile_project, session, f"prompt {name}")
    exported = ws.run("export", "--project", str(hostile_project), "--with-messages",
                      "--pin", "-o", str(ws.file))
    assert exported.code == 0, exported.err
    assert ws.run("validate", "-f", str(ws.file)).code == 0
    plan = ws.plan("--detailed-exitcode")
    assert plan.code == 0, plan.out + plan.err
    assert "No changes." in plan.out
    assert f"Project $${{HOME}} label {'L' * 10}" not in plan.out
    assert "Project ${HOME} label LLL" in plan.out
    assert ws.run("export", "--project", str(hostile_project)).out.count("$${") == 5


def test_reactions_are_exported_in_the_mapping_form_only_where_given(
        ws: Workspace, http: httpx.Client) -> None:
    session = ws.seed("Demo")
    ids = [ws.emulator.add_message(PROJECT, session, p)["id"] for p in ("hi", "thanks", "bye")]
    for message, reaction in ((ids[1], "liked"), (ids[2], "neutral")):
        answered = http.put(f"/api/v1/projects/{PROJECT}/conversations/{session}/messages/"
                            f"{message}/feedback", json={"reaction": reaction})
        assert answered.status_code == 200
    text = export_then_plan(ws, "--with-messages")
    assert ("    messages:\n    - hi\n    - prompt: thanks\n      reaction: liked\n"
            "    - prompt: bye\n      reaction: neutral\n") in text
