"""A send's identity, under every variant of the service that changes what it stores of a
prompt: a send is recognised as itself (by its external id where the service echoes it, else by
its prompt in normal form), and never taken for another."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from reconciler.api.client import Client, ClientSettings, Secret
from reconciler.api.live import Message
from reconciler.api.send_identity import (
    as_declared,
    carried_values,
    external_id_carrying,
    is_send,
    own_send,
    same_prompt,
    send_external_id,
    sent_copy,
    sent_identity,
    value_digest,
)
from reconciler.desired.model import SEND_VALUES
from reconciler.emulator import Emulator, Variants
from reconciler.text import normal_form

KEY = "test-key-0123456789"
PROJECT = 4242
# As restore sends a prompt read back from a backup: not in normal form, and with characters
# a service may escape.
PROMPT = "  Q&A <beta>  "

# Each variant that changes what is stored of a prompt, or whether the external id comes back,
# and whether a send can still be told apart there.
VARIANTS = {
    "documented": (Variants(), True),
    "trim-text": (Variants(trim_text=True), True),
    "escape-prompts": (Variants(escape_prompts=True), True),
    "observed-2023": (Variants(wire="observed-2023"), True),
    "observed-2023-trim-text": (Variants(wire="observed-2023", trim_text=True), True),
    # No external id, the prompt escaped: the escapes undone, the prompt is told.
    "observed-2023-escape-prompts": (Variants(wire="observed-2023", escape_prompts=True), True),
}


@pytest.fixture(params=sorted(VARIANTS))
def variant(request: pytest.FixtureRequest) -> Iterator[tuple[Emulator, bool]]:
    variants, recognised = VARIANTS[request.param]
    with Emulator(api_key=KEY, variants=variants) as emu:
        emu.start()
        emu.ensure_project(PROJECT, "support-bot")
        yield emu, recognised


def sent(emu: Emulator, prompts: list[str]) -> tuple[str, tuple[Message, ...]]:
    """A new conversation with `prompts` sent in order as reconciler sends them; its
    transcript as the client reads it."""
    session = emu.add_conversation(PROJECT, "c")["session_id"]
    config = ClientSettings(api_key=Secret(KEY), base_url=emu.base_url)

    async def main() -> tuple[Message, ...]:
        async with Client(config) as client:
            for position, prompt in enumerate(prompts, start=1):
                await client.send_message(
                    PROJECT, session, prompt,
                    external_id=send_external_id(PROJECT, session, position, prompt))
            return (await client.get_transcript(PROJECT, session)).messages

    return session, asyncio.run(main())


def test_a_send_is_recognised_as_itself_whatever_the_service_stored(
    variant: tuple[Emulator, bool],
) -> None:
    emu, recognised = variant
    session, (stored,) = sent(emu, [PROMPT])
    identity = send_external_id(PROJECT, session, 1, PROMPT)
    assert is_send(stored, identity, PROMPT) is recognised
    found = own_send((stored,), PROMPT, identity, after=0)
    assert (found == stored) is recognised
    assert (sent_copy((stored,), identity, PROMPT, occurrence=1) == stored) is recognised


def test_a_plan_counts_a_stored_send_as_its_declared_prompt(
    variant: tuple[Emulator, bool],
) -> None:
    """By its external id where the service echoes it; else by its prompt, in normal form,
    with the service's HTML escapes undone."""
    emu, _ = variant
    session, (stored,) = sent(emu, [PROMPT])
    (declared,) = as_declared(PROJECT, session, [PROMPT], (stored,))
    assert normal_form(declared.user_query) == normal_form(PROMPT)
    if stored.external_id is not None or stored.user_query != normal_form(PROMPT):
        assert declared.user_query == PROMPT  # stands as the declared prompt itself


def test_another_conversations_identity_does_not_stand_for_a_prompt() -> None:
    identity = send_external_id(PROJECT, "s1", 1, PROMPT)
    stored = message("something else", identity)
    assert as_declared(PROJECT, "s2", [PROMPT], (stored,)) == (stored,)
    assert as_declared(PROJECT, "s1", [PROMPT], (stored,))[0].user_query == PROMPT


def test_only_an_escaped_prompt_is_read_with_its_escapes_undone() -> None:
    assert same_prompt("Q&amp;A &lt;beta&gt;", PROMPT)
    assert same_prompt("Q&A <beta>", PROMPT)
    assert not same_prompt("Q&amp;amp;A <beta>", PROMPT)  # escaped twice: another prompt
    assert not same_prompt("Q&amp;B", PROMPT)


def test_the_second_copy_of_a_prompt_is_the_second_send(variant: tuple[Emulator, bool]) -> None:
    emu, recognised = variant
    session, messages = sent(emu, [PROMPT, PROMPT])
    second = send_external_id(PROJECT, session, 2, PROMPT)
    if recognised:
        assert sent_copy(messages, second, PROMPT, occurrence=2) == messages[1]
        assert own_send(messages, PROMPT, second, after=messages[0].id) == messages[1]
    # A message carrying the send's external id is the send, however old; without one, only
    # a message newer than the newest before the send can be.
    echoed = messages[1] if messages[1].external_id is not None else None
    assert own_send(messages, PROMPT, second, after=messages[1].id) == echoed


def message(user_query: str, external_id: str | None) -> Message:
    return Message(1, user_query, "answer", "2024-01-01 00:00:00", external_id=external_id)


@pytest.mark.parametrize(
    ("external_id", "holds"),
    [(send_external_id(7, "s1", 2, "hi"), True), (send_external_id(7, "s1", 3, "hi"), False),
     (send_external_id(7, "s2", 2, "hi"), False), (send_external_id(8, "s1", 2, "hi"), False),
     (send_external_id(7, "s1", 2, "other"), False), ("reconciler-not-ours", False),
     (None, False)],
    ids=["this-send", "another-position", "another-conversation", "another-project",
         "another-prompt", "not-an-identity", "no-id"],
)
def test_a_changed_prompt_is_this_send_only_by_this_sends_identity(
    external_id: str | None, holds: bool,
) -> None:
    identity = send_external_id(7, "s1", 2, "hi")
    assert is_send(message("hi, as stored", external_id), identity, "hi") is holds
    carrying = None if external_id is None else external_id_carrying(
        external_id, {"persona": "calm"})
    assert is_send(message("hi, as stored", carrying), identity, "hi") is holds


def test_an_external_id_carries_the_values_a_send_declared() -> None:
    identity = send_external_id(7, "s1", 1, "hi")
    assert external_id_carrying(identity, {}) == identity
    assert carried_values(identity) is None
    carrying = external_id_carrying(identity, {"persona": "calm", "chatbot_model": "m"})
    assert len(identity) == 47 and len(carrying) <= 128
    assert sent_identity(carrying) == identity
    values = carried_values(carrying)
    assert values is not None and set(values) == set(SEND_VALUES)
    assert (values["persona"], values["chatbot_model"]) == (value_digest("calm"),
                                                            value_digest("m"))
    assert {values[key] for key in SEND_VALUES if key not in ("persona", "chatbot_model")} \
        == {""}
