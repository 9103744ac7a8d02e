"""`restore` across machines and with backups it cannot restore: one conversation however many
runs restore one backup at the same time, and a backup checked whole before the first write."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reconciler.api.client import Client
from reconciler.api.live import Conversation
from reconciler.api.settings import ClientSettings, Secret
from reconciler.apply.restore import Restored, RestoreResult, restore_conversation
from reconciler.emulator import Emulator, FaultRule
from tests.saved_plans import deleted_with_backup, prune_all
from tests.workspace import PROJECT, Workspace


class _LookedUpTogether:
    """The API as one of two runs on two machines sees it when both looked the name up before
    either created it: its create waits until the other run asks for its own."""

    def __init__(self, api: Client, both_looked_up: asyncio.Barrier) -> None:
        self.api, self.both_looked_up = api, both_looked_up

    def __getattr__(self, name: str) -> Any:
        return getattr(self.api, name)

    async def create_conversation(self, project_id: int, name: str) -> Conversation:
        await self.both_looked_up.wait()
        return await self.api.create_conversation(project_id, name)


def _restore_twice_at_once(
    emulator: Emulator, session: str, prompts: list[str] | None
) -> list[RestoreResult]:
    settings = ClientSettings(api_key=Secret(emulator.api_key), base_url=emulator.base_url)

    async def restore(barrier: asyncio.Barrier) -> RestoreResult:
        async with Client(settings) as client:
            api: Any = _LookedUpTogether(client, barrier)
            return await restore_conversation(api, PROJECT, session, "Demo thread", prompts)

    async def both() -> list[RestoreResult]:
        barrier = asyncio.Barrier(2)
        return list(await asyncio.gather(restore(barrier), restore(barrier)))

    return asyncio.run(both())


@pytest.mark.parametrize("prompts", [["a", "b"], None], ids=["resend-prompts", "name-only"])
def test_two_restores_of_one_backup_at_once_make_one_conversation(
    ws: Workspace, prompts: list[str] | None
) -> None:
    """Neither sees the other's conversation before it creates its own: the later one finds
    the older after its create, deletes its own (still empty) and sends nothing."""
    session, _ = deleted_with_backup(ws, "a", "b")
    results = _restore_twice_at_once(ws.emulator, session, prompts)
    assert _restored(ws) == [prompts or []]
    (kept,) = [c["session_id"] for c in ws.emulator.conversations(PROJECT)]
    states = sorted(r.state for r in results)
    assert states == sorted([Restored.CREATED, Restored.RACED])
    (raced,) = [r for r in results if r.state is Restored.RACED]
    assert raced.session_id == kept and raced.own != kept and raced.own_deleted
    assert raced.prompts_sent == 0


def test_restores_of_one_backup_from_two_working_directories(ws: Workspace) -> None:
    """Two `reconciler restore` processes, each in its own working directory (so neither
    sees the other's lock), started together against one API: one conversation, each prompt
    sent once; a run that lost the race says so and exits 1."""
    _, backup = deleted_with_backup(ws, "a", "b")
    ws.emulator.faults.latency_ms = 150  # both look the name up before either creates
    env = {**os.environ, **ws.env}
    runs = []
    for place in ("laptop", "ci-runner"):
        directory = ws.path / place
        directory.mkdir()
        runs.append(subprocess.Popen(
            [sys.executable, "-m", "reconciler", "restore", str(backup), "--resend-prompts"],
            cwd=directory, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    ended = [(run.wait(timeout=60), *run.communicate()) for run in runs]
    ws.emulator.faults.latency_ms = 0
    assert _restored(ws) == [["a", "b"]]
    assert all("Traceback" not in err for _, _, err in ended)
    for code, out, err in ended:
        assert code == 0 or "at the same time" in err, (code, out, err)


def _edited_backup(ws: Workspace, edit: Any, *prompts: str) -> Path:
    _, backup = deleted_with_backup(ws, *prompts)
    document = json.loads(backup.read_text())
    edit(document)
    backup.write_text(json.dumps(document))
    return backup


def _name(value: str) -> Any:
    return lambda document: document["conversation"].update(name=value)


def _prompt(position: int, value: str) -> Any:
    return lambda document: document["messages"][position - 1].update(user_query=value)


@pytest.mark.parametrize(
    ("edit", "flags", "problem"),
    [
        (_name("x" * 100_000), (), "the conversation's name is 100000 characters long; a "
                                   "name has at most 255"),
        (_name("   "), (), "the conversation's name is empty or blank"),
        (_prompt(3, ""), ("--resend-prompts",), "message 3 has an empty prompt, which cannot "
                                                "be sent again (restore without "
                                                "--resend-prompts brings back the conversation "
                                                "alone)"),
        (_prompt(2, " \n"), ("--resend-prompts",), "message 2 has an empty prompt"),
        (_prompt(1, "p" * 100_001), ("--resend-prompts",),
         "message 1 has a prompt of 100001 characters; restore sends at most 100000"),
    ],
    ids=["huge-name", "blank-name", "empty-prompt", "blank-prompt", "huge-prompt"],
)
def test_a_backup_restore_cannot_finish_is_refused_before_anything_is_written(
    ws: Workspace, edit: Any, flags: tuple[str, ...], problem: str
) -> None:
    backup = _edited_backup(ws, edit, "a", "b", "c")
    writes = {m: n for m, n in ws.emulator.stats()["requests"].items() if m != "GET"}
    for _ in range(2):  # no half-restore that every run after it trips over
        result = ws.run("restore", str(backup), *flags)
        assert result.code == 1
        assert f"backup {backup}: {problem}" in result.err
        assert "nothing was restored" in result.err
    assert ws.names() == []
    assert {m: n for m, n in ws.emulator.stats()["requests"].items() if m != "GET"} == writes


def test_an_empty_prompt_does_not_stop_a_restore_of_the_conversation_alone(
    ws: Workspace
) -> None:
    backup = _edited_backup(ws, _prompt(2, ""), "a", "b")
    result = ws.run("restore", str(backup))
    assert result.code == 0, result.err
    assert ws.names() == ["Demo thread"]


def _restored(ws: Workspace) -> list[list[str]]:
    """The prompts of every conversation named 'Demo thread'."""
    return [[m["user_query"] for m in ws.emulator.messages(PROJECT, c["session_id"])]
            for c in ws.emulator.conversations(PROJECT) if c["name"] == "Demo thread"]


def test_restore_recreates_a_deleted_conversation_once(ws: Workspace) -> None:
    _, backup = deleted_with_backup(ws, "first question", "second question")
    plain = ws.run("restore", str(backup))
    assert plain.code == 0, plain.err
    assert "Restored 'Demo thread' in project" in plain.out
    assert "2 message(s) were not re-sent" in plain.err
    again = ws.run("restore", str(backup))
    assert again.code == 0, again.err
    assert "Already restored: 'Demo thread'" in again.out
    assert _restored(ws) == [[]]

    resent = ws.run("restore", str(backup), "--resend-prompts")
    assert resent.code == 0, resent.err
    assert "Resumed the restore" in resent.out
    assert "answers were generated anew" in resent.out
    assert _restored(ws) == [["first question", "second question"]]
    last = ws.run("restore", str(backup), "--resend-prompts")
    assert last.code == 0, last.err
    assert "with the backup's prompts; nothing was done" in last.out
    assert _restored(ws) == [["first question", "second question"]]


def test_restore_with_prompts_twice_makes_one_conversation(ws: Workspace) -> None:
    _, backup = deleted_with_backup(ws, "a", "b")
    assert [ws.run("restore", str(backup), "--resend-prompts").code for _ in range(2)] == [0, 0]
    assert _restored(ws) == [["a", "b"]]


@pytest.mark.parametrize(
    ("creator", "prompts", "flags"),
    [("me", ["something else"], ("--resend-prompts",)), ("visitor", [], ()),
     ("me", ["a", "b", "c"], ("--resend-prompts",))],
    ids=["other-prompts", "someone-elses", "more-prompts"],
)
def test_restore_refuses_a_name_taken_by_another_conversation(
    ws: Workspace, creator: str, prompts: list[str], flags: tuple[str, ...]
) -> None:
    _, backup = deleted_with_backup(ws, "a", "b")
    taken = ws.seed("Demo thread", creator=creator)
    for prompt in prompts:
        ws.emulator.add_message(PROJECT, taken, prompt)
    result = ws.run("restore", str(backup), *flags)
    assert result.code == 1
    assert f"the name 'Demo thread' is taken in project {PROJECT} by session(s) {taken}" \
        in result.err
    assert "nothing was restored" in result.err
    assert _restored(ws) == [prompts]


def test_restore_sends_no_more_prompts_than_max_sends_allows(ws: Workspace) -> None:
    _, backup = deleted_with_backup(ws, "a", "b", "c")
    refused = ws.run("restore", str(backup), "--resend-prompts", "--max-sends", "2")
    assert refused.code == 1
    assert "restoring this backup sends 3 prompt(s), more than --max-sends 2" in refused.err
    assert "nothing was restored" in refused.err
    assert _restored(ws) == []
    allowed = ws.run("restore", str(backup), "--resend-prompts", "--max-sends", "3")
    assert allowed.code == 0, allowed.err
    assert _restored(ws) == [["a", "b", "c"]]


def test_restore_counts_only_the_prompts_it_still_has_to_send(ws: Workspace) -> None:
    _, backup = deleted_with_backup(ws, "a", "b", "c")
    assert ws.run("restore", str(backup)).code == 0  # the conversation, no prompts yet
    (session,) = [c["session_id"] for c in ws.emulator.conversations(PROJECT)]
    ws.emulator.add_message(PROJECT, session, "a")  # a restore that stopped after one
    ws.emulator.query_credits = 2
    resumed = ws.run("restore", str(backup), "--resend-prompts", "--max-sends", "2")
    assert resumed.code == 0, resumed.err
    assert _restored(ws) == [["a", "b", "c"]]


def test_restore_sends_no_more_prompts_than_the_credits_left(ws: Workspace) -> None:
    _, backup = deleted_with_backup(ws, "a", "b")
    ws.emulator.query_credits = 1
    refused = ws.run("restore", str(backup), "--resend-prompts")
    assert refused.code == 1
    assert "sends 2 prompt(s) but the account has 1 query credit(s) left" in refused.err
    assert _restored(ws) == []
    assert ws.run("restore", str(backup)).code == 0  # without its prompts: no credit needed
    assert _restored(ws) == [[]]


def test_restore_of_a_conversation_that_still_exists_does_nothing(ws: Workspace) -> None:
    session = ws.seed("Demo thread")
    ws.emulator.faults.rules = [FaultRule(method="DELETE", path="/conversations/", status=400,
                                          mode="fail", times=None)]
    prune_all(ws)
    assert ws.apply("--allow-mass-delete").code == 1
    ws.emulator.faults.rules = []
    (backup,) = (ws.path / "backups").rglob(f"{session}.json")
    result = ws.run("restore", str(backup), "--resend-prompts")
    assert result.code == 0, result.err
    assert f"Nothing to restore: 'Demo thread' in project {PROJECT} (session {session}) " \
        "still exists." in result.out
    assert ws.names() == ["Demo thread"]


@pytest.mark.parametrize("content", ["{not json", '{"format_version": 1}', "[]"],
                         ids=["not-json", "missing-fields", "not-an-object"])
def test_restore_refuses_what_is_not_a_backup(ws: Workspace, content: str) -> None:
    bad = ws.path / "bad.json"
    bad.write_text(content)
    result = ws.run("restore", str(bad))
    assert result.code == 1
    assert str(bad) in result.err


@pytest.mark.parametrize("session_id", ["../../outside", "a\x1b[31mred", ""],
                         ids=["path", "escape", "empty"])
def test_restore_refuses_a_backup_whose_session_id_is_not_one(
    ws: Workspace, session_id: str
) -> None:
    _, backup = deleted_with_backup(ws, "a")
    document = json.loads(backup.read_text())
    document["conversation"]["session_id"] = session_id
    backup.write_text(json.dumps(document))
    result = ws.run("restore", str(backup), "--resend-prompts")
    assert result.code == 1
    assert "not a reconciler backup file: conversation.session_id is not a session id" \
        in result.err
    assert "\x1b" not in result.err + result.out
    assert _restored(ws) == []
