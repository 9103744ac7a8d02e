"""A react: its words, what must still hold, and applying it."""

from __future__ import annotations

import pytest

from reconciler.api.live import Message, Transcript
from reconciler.desired.model import Reaction
from reconciler.emulator import Emulator
from reconciler.plan.operations import Applied, LiveView, React, Send
from tests.plan.operations.live import PROJECT, apply, conv, painted, seed

REACT = React(project_id=7, name="Demo", reason="declared", session_id="s1", prompt="hi",
              position=2, reaction=Reaction.LIKED, message_id=41, before=Reaction.DISLIKED)
REACT_NONE = React(project_id=7, name="Demo", reason="declared", session_id="s1", prompt="hi",
                   position=2, reaction=Reaction.NEUTRAL, message_id=41)
ONCE_SENT = React(project_id=7, name="New", reason="declared", session_id=None, prompt="hi",
                  position=1, reaction=Reaction.LIKED, occurrence=1)


def test_it_is_shown_with_its_message_and_the_change() -> None:
    assert painted(REACT) == "\x1b[35m* react  'Demo' message 2: disliked -> liked  (s1)\x1b[0m"
    assert REACT_NONE.describe() == "react  'Demo' message 2: none -> neutral  (s1)"
    assert painted(ONCE_SENT) == "\x1b[35m* react  'New' message 1: liked once sent  (new)\x1b[0m"
    assert (REACT.key, ONCE_SENT.key) == ("7/react/s1#2", "7/react/New#1")


def test_what_must_still_hold_is_said_in_words() -> None:
    assert REACT.requirement == ("session s1 still holds message 41, and its reaction is still "
                                 "disliked")
    assert REACT_NONE.requirement.endswith("its reaction is still none")
    assert ONCE_SENT.requirement == "the message is sent by this plan"


def live_with(*messages: Message) -> LiveView:
    demo = conv("s1", "Demo")
    return LiveView(by_session={"s1": demo}, holders={"Demo": frozenset({"s1"})},
                    transcripts={"s1": Transcript(demo, messages)}, vacating=frozenset())


def message(reaction: Reaction | None, *, shown: bool = True, id: int = 41) -> Message:
    return Message(id, "hi", "answer", "2024-01-01 00:00:00", reaction=reaction,
                   reaction_shown=shown)


@pytest.mark.parametrize(
    ("op", "live", "why"),
    [
        (REACT, live_with(message(Reaction.DISLIKED)), ""),
        (REACT_NONE, live_with(message(None)), ""),
        (REACT, live_with(message(Reaction.NEUTRAL)),
         "changed since the plan was made: reaction: 'disliked' -> 'neutral'"),
        (REACT, live_with(message(Reaction.LIKED)),
         "changed since the plan was made: reaction: 'disliked' -> 'liked'"),
        (REACT_NONE, live_with(message(Reaction.LIKED)),
         "changed since the plan was made: reaction: 'none' -> 'liked'"),
        (REACT, live_with(message(None, shown=False)),
         "the API no longer shows the message's reaction"),
        (REACT, live_with(message(Reaction.DISLIKED, id=42)),
         "message 41 is no longer in session s1"),
        (REACT, LiveView(by_session={}, holders={}, transcripts={"s1": None},
                         vacating=frozenset()), "session s1 no longer exists"),
        (ONCE_SENT, LiveView(by_session={}, holders={}, transcripts={}, vacating=frozenset()),
         ""),
    ],
    ids=["holds", "holds-none", "changed", "set-since", "set-since-from-none", "not-shown",
         "message-gone", "conversation-gone", "once-sent"],
)
def test_what_must_still_hold(op: React, live: LiveView, why: str) -> None:
    assert op.why_stale(live) == why


def test_where_it_goes_and_what_it_reads() -> None:
    assert (REACT.waits_for(), ONCE_SENT.waits_for()) == (None, "New")
    assert (REACT.target({}), ONCE_SENT.target({"New": "s7"})) == ("s1", "s7")
    assert (REACT.transcript_needed({}), ONCE_SENT.transcript_needed({})) == ("s1", None)
    assert (REACT.reads_once(), ONCE_SENT.reads_once()) == (None, (7, "New#messages"))
    assert (REACT.group(), ONCE_SENT.group()) == ((7, "s1"), (7, "New"))
    assert (REACT.requests, REACT.credits) == (1, 0)


def reaction_of(emulator: Emulator, session: str) -> list[str | None]:
    return [(m["response_feedback"] or {}).get("reaction")
            for m in emulator.messages(PROJECT, session)]


def test_it_sets_the_reaction_of_its_message(emulator: Emulator) -> None:
    session = seed(emulator, "Demo", "hi", "bye")
    first = emulator.messages(PROJECT, session)[0]["id"]
    react = React(project_id=PROJECT, name="Demo", reason="r", session_id=session, prompt="hi",
                  position=1, reaction=Reaction.DISLIKED, message_id=first)
    (applied,), _ = apply(emulator, react)
    assert applied == Applied("set the reaction to message 1 to disliked", session_id=session)
    assert reaction_of(emulator, session) == ["disliked", None]


def test_after_its_send_it_finds_the_message_by_the_sends_external_id(
        emulator: Emulator) -> None:
    """The conversation already held the prompt once: the copy the send made is the one
    whose external id is the send's, whatever the copy count says."""
    session = seed(emulator, "Demo", "next")
    send = Send(project_id=PROJECT, name="Demo", reason="r", session_id=session,
                prompt="next", position=2, live_name="Demo", occurrences=1)
    react = React(project_id=PROJECT, name="Demo", reason="r", session_id=session,
                  prompt="next", position=2, reaction=Reaction.LIKED, occurrence=1)
    applied, _ = apply(emulator, send, react)
    assert applied[1] == Applied("set the reaction to message 2 to liked", session_id=session)
    assert reaction_of(emulator, session) == [None, "liked"]


def test_where_no_external_id_is_echoed_it_takes_the_copy_it_was_planned_for(
        emulator: Emulator) -> None:
    session = seed(emulator, "New", "hi", "other", "hi", "hi")
    react = React(project_id=PROJECT, name="New", reason="r", session_id=None, prompt=" hi ",
                  position=3, reaction=Reaction.NEUTRAL, occurrence=2)
    (applied,), _ = apply(emulator, react, created={"New": session})
    assert applied.session_id == session and not applied.failed
    assert reaction_of(emulator, session) == [None, None, "neutral", None]


def test_the_reactions_after_sends_read_the_conversation_once(emulator: Emulator) -> None:
    session = seed(emulator, "New", "a", "b")
    reacts = [React(project_id=PROJECT, name="New", reason="r", session_id=None, prompt=p,
                    position=n, reaction=Reaction.LIKED, occurrence=1)
              for n, p in enumerate(("a", "b"), start=1)]
    before = emulator.stats()["requests"].get("GET", 0)
    applied, _ = apply(emulator, *reacts, created={"New": session})
    assert [a.failed for a in applied] == [False, False]
    assert emulator.stats()["requests"]["GET"] - before == 1
    assert reaction_of(emulator, session) == ["liked", "liked"]


def test_a_message_whose_send_was_not_done_is_not_reacted_to(emulator: Emulator) -> None:
    session = seed(emulator, "New", "hi")
    react = React(project_id=PROJECT, name="New", reason="r", session_id=session, prompt="hi",
                  position=2, reaction=Reaction.LIKED, occurrence=2)
    (applied,), _ = apply(emulator, react)
    assert applied == Applied("not set: message 2 is not in the conversation (its send was "
                              "not done)", session_id=session, failed=True)
    assert reaction_of(emulator, session) == [None]
