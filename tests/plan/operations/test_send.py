"""A send: its words, what must still hold, and applying it."""

from __future__ import annotations

import pytest

from reconciler.api.live import Message, Transcript
from reconciler.api.send_identity import external_id_carrying, send_external_id
from reconciler.emulator import Emulator
from reconciler.plan.operations import Applied, LiveView, MessageCursor, Send
from tests.plan.operations.live import PROJECT, apply, conv, painted, seed, view

SEND = Send(project_id=7, name="Demo", reason="missing", session_id="s1", prompt="hi",
            position=2, live_name="Demo", occurrences=1)
SEND_NEW = Send(project_id=7, name="New", reason="missing", session_id=None, prompt="hi",
                position=1)


def test_it_is_shown_with_its_conversation_position_and_prompt() -> None:
    assert painted(SEND) == "\x1b[36m> send   'Demo' message 2: 'hi'  (s1)\x1b[0m"
    assert painted(SEND_NEW) == "\x1b[36m> send   'New' message 1: 'hi'  (new)\x1b[0m"
    assert (SEND.key, SEND_NEW.key) == ("7/send/s1#2", "7/send/New#1")


def test_a_long_prompt_is_shown_on_one_line_clipped() -> None:
    long = Send(project_id=7, name="Demo", reason="missing", session_id=None,
                prompt="first line\n" + "x" * 80, position=1)
    assert long.describe() == (f"send   'Demo' message 1: 'first line {'x' * 48}…'  (new)")
    short = Send(project_id=7, name="Demo", reason="missing", session_id=None,
                 prompt="a  b\tc" + "y" * 55, position=1)  # 60 characters once collapsed
    assert short.describe() == f"send   'Demo' message 1: 'a b c{'y' * 55}'  (new)"


def test_what_must_still_hold_is_said_in_words() -> None:
    assert SEND.requirement == ("session s1 is still named 'Demo', and the prompt is in its "
                                "transcript 1 time(s), as when planned")
    assert SEND_NEW.requirement == "the conversation is created by this plan"


@pytest.mark.parametrize(
    ("op", "live", "why"),
    [
        (SEND, view(conv("s1", "Demo"), prompts={"s1": ["hi"]}), ""),
        (SEND, view(conv("s1", "Demo"), prompts={"s1": ["hi", "hi"]}),
         "the prompt has been sent since the plan was made: it is in the transcript 2 time(s), "
         "1 when planned"),
        (SEND, view(conv("s1", "Demo"), prompts={"s1": [" hi ", "hi"]}),
         "the prompt has been sent since the plan was made: it is in the transcript 2 time(s), "
         "1 when planned"),
        (SEND, view(conv("s1", "Demo"), prompts={"s1": ["hi", "other"]}), ""),
        (SEND, view(conv("s1", "Demo")),
         "the prompt has been sent since the plan was made: it is in the transcript 0 time(s), "
         "1 when planned"),
        (SEND, view(conv("s1", "Renamed"), prompts={"s1": ["hi"]}),
         "changed since the plan was made: name: 'Demo' -> 'Renamed'"),
        (SEND, view(), "session s1 no longer exists"),
        (SEND_NEW, view(), ""),
    ],
    ids=["holds", "sent-since", "sent-since-in-another-form", "other-prompt", "removed-since",
         "conversation-renamed", "gone", "into-created"],
)
def test_what_must_still_hold(op: Send, live: LiveView, why: str) -> None:
    assert op.why_stale(live) == why


@pytest.mark.parametrize(
    ("external_id", "holds"),
    [(send_external_id(7, "s1", 2, "hi"), True), (send_external_id(7, "s1", 3, "hi"), False),
     (send_external_id(7, "s2", 2, "hi"), False), (send_external_id(8, "s1", 2, "hi"), False),
     (send_external_id(7, "s1", 2, "other"), False), (None, False)],
    ids=["this-send", "another-position", "another-conversation", "another-project",
         "another-prompt", "no-id"],
)
def test_a_message_the_service_changed_counts_as_this_send_only_by_its_external_id(
        external_id: str | None, holds: bool) -> None:
    """The planned send finds its prompt once in the transcript, though the service stored it
    differently: only the external_id of this very send says it is the same message."""
    demo = conv("s1", "Demo")
    stored = Message(1, "hi, as the service stored it", "answer", "2024-01-01 00:00:00",
                     external_id=external_id)
    live = LiveView(by_session={"s1": demo}, holders={"Demo": frozenset({"s1"})},
                    transcripts={"s1": Transcript(demo, (stored,))}, vacating=frozenset())
    assert (SEND.why_stale(live) == "") is holds


def test_where_it_goes_and_what_it_reads_first() -> None:
    assert (SEND.waits_for(), SEND.target({"Demo": "s7"})) == (None, "s1")
    assert (SEND_NEW.waits_for(), SEND_NEW.target({"New": "s7"})) == ("New", "s7")
    assert SEND_NEW.target({}) is None
    assert (SEND.reads_once(), SEND_NEW.reads_once()) == ((7, "s1"), None)
    assert (SEND.transcript_needed({}), SEND_NEW.transcript_needed({})) == ("s1", None)
    assert (SEND.group(), SEND_NEW.group()) == ((7, "s1"), (7, "New"))


def test_it_sends_into_its_conversation_with_its_external_id(emulator: Emulator) -> None:
    session = seed(emulator, "Demo", "earlier")
    send = Send(project_id=PROJECT, name="Demo", reason="r", session_id=session,
                prompt="next", position=2, persona="calm", lang="de", live_name="Demo",
                occurrences=0)
    (applied,), context = apply(emulator, send, created={"Demo": "elsewhere"})
    messages = emulator.messages(PROJECT, session)
    assert [m["user_query"] for m in messages] == ["earlier", "next"]
    assert applied.answer is not None  # the message it made, for its answer's checks
    assert (applied.answer.id, applied.answer.openai_response) == (
        messages[-1]["id"], messages[-1]["openai_response"])
    assert applied == Applied("sent message 2", session_id=session, answer=applied.answer)
    assert messages[-1]["metadata"]["external_id"] == external_id_carrying(
        send_external_id(PROJECT, session, 2, "next"), {"persona": "calm"})
    assert context.cursor.newest_id == messages[-1]["id"]


def test_into_a_conversation_this_run_created_it_goes_where_the_create_made_it(
        emulator: Emulator) -> None:
    session = seed(emulator, "New")
    first, second = (Send(project_id=PROJECT, name="New", reason="r", session_id=None,
                          prompt=prompt, position=n, response_source="own_content")
                     for n, prompt in enumerate(("one", "two"), start=1))
    applied, context = apply(emulator, first, second, created={"New": session},
                             cursor=MessageCursor())
    assert [a.session_id for a in applied] == [session, session]
    assert [m["user_query"] for m in emulator.messages(PROJECT, session)] == ["one", "two"]
    assert context.cursor.newest_id == emulator.messages(PROJECT, session)[-1]["id"]


def test_it_passes_what_is_declared_and_the_newest_message_it_knows(emulator: Emulator) -> None:
    """Into a live conversation the first send lets the client read the newest message id;
    into one this run created there is none yet; each next send knows the one before."""
    live, created = seed(emulator, "Demo", "earlier"), seed(emulator, "New")

    def sends(session: str | None, name: str) -> list[Send]:
        return [Send(project_id=PROJECT, name=name, reason="r", session_id=session,
                     prompt=f"p{n}", position=n, persona="calm", response_source="own_content",
                     lang="de") for n in (1, 2)]

    for session, name, created_by_run, first_newest in (
            (live, "Demo", {}, None), (None, "New", {"New": created}, 0)):
        _, context = apply(emulator, *sends(session, name), created=created_by_run)
        target = session or created
        ids = [m["id"] for m in emulator.messages(PROJECT, target)]
        assert context.api.sent == [  # type: ignore[attr-defined]
            ((PROJECT, target, f"p{n}"), {
                "persona": "calm", "response_source": "own_content", "lang": "de",
                "newest_id": newest, "custom_context": None, "agent_capability": None,
                "chatbot_model": None, "external_id": external_id_carrying(
                    send_external_id(PROJECT, target, n, f"p{n}"),
                    {"persona": "calm", "response_source": "own_content"})})
            for n, newest in ((1, first_newest), (2, ids[-2]))]
