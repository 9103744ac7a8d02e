"""A delete: its words, what must still hold, and applying it (backup first)."""

from __future__ import annotations

import pytest

from reconciler.emulator import Emulator
from reconciler.plan.operations import Applied, Delete, LiveView
from tests.plan.operations.live import PROJECT, apply, conv, names, painted, seed, view

DELETE = Delete(project_id=7, name="Stray", reason="prune", session_id="s1", message_count=1)


def test_it_is_shown_with_its_session_and_messages() -> None:
    assert painted(DELETE) == "\x1b[31m- delete 'Stray'  (s1, 1 messages)\x1b[0m"
    assert DELETE.requirement == "session s1 still exists, named 'Stray', with 1 messages"
    assert (DELETE.key, DELETE.transcript_needed({"s1": conv("s1", "Stray")})) == (
        "7/delete/s1", "s1")


@pytest.mark.parametrize(
    ("live", "why"),
    [
        (view(conv("s1", "Stray"), prompts={"s1": ["a"]}), ""),
        (view(conv("s1", "Stray"), prompts={"s1": ["a", "b"]}),
         "changed since the plan was made: messages: 1 -> 2"),
        (view(conv("s1", "Kept"), prompts={"s1": ["a"]}),
         "changed since the plan was made: name: 'Stray' -> 'Kept'"),
        (view(conv("s1", "Kept"), prompts={"s1": ["a", "b"]}),
         "changed since the plan was made: messages: 1 -> 2; name: 'Stray' -> 'Kept'"),
        (view(), "session s1 no longer exists"),
    ],
    ids=["holds", "new-messages", "renamed", "renamed-and-new-messages", "gone"],
)
def test_what_must_still_hold(live: LiveView, why: str) -> None:
    assert DELETE.why_stale(live) == why


def delete(session: str, messages: int = 1) -> Delete:
    return Delete(project_id=PROJECT, name="Stray", reason="prune", session_id=session,
                  message_count=messages)


def test_it_backs_the_transcript_up_then_deletes(emulator: Emulator) -> None:
    session = seed(emulator, "Stray", "a")
    (applied,), context = apply(emulator, delete(session))
    assert applied == Applied("deleted", session_id=session,
                              backup=f"backups/{PROJECT}/{session}.json")
    assert [(t.conversation.session_id, [m.user_query for m in t.messages])
            for t in context.backups] == [(session, ["a"])]
    assert names(emulator) == []


def test_without_backups_it_deletes_and_names_no_backup(emulator: Emulator) -> None:
    session = seed(emulator, "Stray", "a")
    (applied,), _ = apply(emulator, delete(session), backups_off=True)
    assert applied == Applied("deleted", session_id=session)
    assert names(emulator) == []


def test_a_conversation_already_gone_is_done(emulator: Emulator) -> None:
    emulator.ensure_project(PROJECT)
    (applied,), context = apply(emulator, delete("gone-session"))
    assert applied == Applied("already deleted", session_id="gone-session")
    assert context.backups == []


def test_a_conversation_changed_since_the_plan_is_kept(emulator: Emulator) -> None:
    session = seed(emulator, "Stray", "a", "typed since")
    (applied,), context = apply(emulator, delete(session))
    assert applied == Applied("not deleted: changed since the plan (messages: 1 -> 2)",
                              session_id=session, failed=True)
    assert (names(emulator), context.backups) == (["Stray"], [])
    renamed = Delete(project_id=PROJECT, name="Old name", reason="prune", session_id=session,
                     message_count=1)
    (applied,), _ = apply(emulator, renamed)
    assert applied.detail == ("not deleted: changed since the plan (messages: 1 -> 2; name: "
                              "'Old name' -> 'Stray')")


def test_a_backup_that_cannot_be_written_keeps_the_conversation(emulator: Emulator) -> None:
    session = seed(emulator, "Stray", "a")
    (applied,), _ = apply(emulator, delete(session),
                          backup_error=PermissionError(13, "Permission denied"))
    assert applied == Applied("not deleted: the transcript backup could not be written "
                              "([Errno 13] Permission denied)", session_id=session, failed=True)
    assert names(emulator) == ["Stray"]
