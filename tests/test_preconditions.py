"""Each action's precondition, checked against live state: what must still hold when a plan
is applied, and how each way of breaking it is named."""

from __future__ import annotations

import pytest

from reconciler.live import Conversation, Message, Transcript
from reconciler.plan import Action, Operation, Precondition
from reconciler.preconditions import LiveView, why_stale


def conv(session: str, name: str) -> Conversation:
    return Conversation(id=int(session.removeprefix("s")), session_id=session, name=name,
                        project_id=7, created_by="1", created_at="2024-01-01 00:00:00",
                        updated_at="2024-01-01 00:00:00")


def view(*conversations: Conversation, prompts: dict[str, list[str]] | None = None,
         renamed: tuple[str, ...] = ()) -> LiveView:
    prompts = prompts or {}
    transcripts: dict[str, Transcript | None] = {
        c.session_id: Transcript(c, tuple(
            Message(i, p, "answer", "2024-01-01 00:00:00")
            for i, p in enumerate(prompts.get(c.session_id, []), start=1)))
        for c in conversations
    }
    holders: dict[str, frozenset[str]] = {}
    for c in conversations:
        holders[c.name] = holders.get(c.name, frozenset()) | {c.session_id}
    return LiveView(by_session={c.session_id: c for c in conversations}, holders=holders,
                    transcripts=transcripts, renamed=frozenset(renamed))


CREATE = Operation(Action.CREATE, 7, "New", "declared", Precondition(name="New"))
RENAME = Operation(Action.RENAME, 7, "New", "renamed_from", Precondition(name="Old",
                   session_id="s1"), session_id="s1", old_name="Old")
SEND = Operation(Action.SEND, 7, "Demo", "missing", Precondition(
    name="Demo", session_id="s1", prompt="hi", occurrences=1), session_id="s1", prompt="hi",
    position=2)
SEND_NEW = Operation(Action.SEND, 7, "New", "missing", Precondition(prompt="hi"), prompt="hi",
                     position=1)
DELETE = Operation(Action.DELETE, 7, "Stray", "prune", Precondition(
    name="Stray", session_id="s1", message_count=1), session_id="s1")


@pytest.mark.parametrize(
    ("op", "live", "why"),
    [
        (CREATE, view(conv("s9", "Other")), ""),
        (CREATE, view(conv("s9", "New")), "a conversation named 'New' now exists (s9)"),
        (CREATE, view(conv("s9", "New"), renamed=("s9",)), ""),
        (RENAME, view(conv("s1", "Old")), ""),
        (RENAME, view(), "session s1 no longer exists"),
        (RENAME, view(conv("s1", "Other")), "name: 'Old' -> 'Other'"),
        (RENAME, view(conv("s1", "Old"), conv("s9", "New")),
         "the new name 'New' has been taken since the plan was made (s9)"),
        (RENAME, view(conv("s1", "Old"), conv("s9", "New"), renamed=("s1", "s9")), ""),
        (SEND, view(conv("s1", "Demo"), prompts={"s1": ["hi"]}), ""),
        (SEND, view(conv("s1", "Demo"), prompts={"s1": ["hi", "hi"]}),
         "the prompt has been sent since the plan was made: it is in the transcript 2 time(s), "
         "1 when planned"),
        (SEND, view(conv("s1", "Demo"), prompts={"s1": ["hi", "other"]}), ""),
        (SEND, view(conv("s1", "Renamed"), prompts={"s1": ["hi"]}), "name: 'Demo' -> 'Renamed'"),
        (SEND, view(), "session s1 no longer exists"),
        (SEND_NEW, view(), ""),
        (DELETE, view(conv("s1", "Stray"), prompts={"s1": ["a"]}), ""),
        (DELETE, view(conv("s1", "Stray"), prompts={"s1": ["a", "b"]}), "messages: 1 -> 2"),
        (DELETE, view(conv("s1", "Kept")), "name: 'Stray' -> 'Kept'"),
        (DELETE, view(), "session s1 no longer exists"),
    ],
    ids=["create-free", "create-taken", "create-taken-by-renamed",
         "rename-holds", "rename-gone", "rename-source-renamed", "rename-target-taken",
         "rename-target-renamed-away",
         "send-holds", "send-sent-since", "send-other-prompt", "send-conversation-renamed",
         "send-gone", "send-into-created",
         "delete-holds", "delete-new-messages", "delete-renamed", "delete-gone"],
)
def test_each_precondition(op: Operation, live: LiveView, why: str) -> None:
    got = why_stale(op, live)
    assert (why in got) if why else got == ""
    assert bool(got) is bool(why)


@pytest.mark.parametrize("op", [CREATE, RENAME, SEND, SEND_NEW, DELETE],
                         ids=lambda op: op.action.value)
def test_every_precondition_is_described_in_the_plan(op: Operation) -> None:
    words = op.requirement
    assert words
    for value in (op.precondition.name, op.precondition.session_id):
        if value:
            assert value in words
