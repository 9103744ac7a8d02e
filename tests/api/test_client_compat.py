"""The client does not bet on what the API leaves open: each behaviour against the emulator
variant that answers the other way (and an injected transport for what no variant produces)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest

from reconciler.api.client import Client, ClientSettings, Secret
from reconciler.api.send_identity import send_external_id
from reconciler.emulator import Emulator, FaultRule, Variants
from reconciler.errors import ApiError

KEY = "test-key-0123456789"
PROJECT = 4242
T = TypeVar("T")


class Sleep:
    """asyncio.sleep that waits a little for real (the emulator works meanwhile), counted."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, seconds: float) -> None:
        self.calls += 1
        await asyncio.sleep(min(seconds, 0.05))


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """An emulator with 3 conversations per page and project 4242."""
    with Emulator(api_key=KEY, page_size=3) as emu:
        emu.start()
        emu.ensure_project(PROJECT, "support-bot")
        yield emu


def run(emulator: Emulator, action: Callable[[Client], Awaitable[T]], **settings: Any) -> T:
    config = ClientSettings(api_key=Secret(KEY), base_url=emulator.base_url, **settings)

    async def main() -> T:
        async with Client(config, sleep=Sleep()) as client:
            return await action(client)

    return asyncio.run(main())


def requests(emulator: Emulator) -> int:
    return sum(emulator.stats()["requests"].values())


# -- scope: userFilter=team_member may or may not include the key's user -------------------


@pytest.mark.parametrize("excludes", [False, True], ids=["includes-owner", "excludes-owner"])
def test_team_listing_holds_the_owners_conversations_either_way(
    emulator: Emulator, excludes: bool
) -> None:
    emulator.variants = Variants(team_filter_excludes_owner=excludes)
    emulator.add_conversations(PROJECT, [f"mine {i}" for i in range(4)])
    emulator.add_conversations(PROJECT, ["teammate's"], creator="teammate")
    emulator.add_conversations(PROJECT, [f"visitor {i}" for i in range(3)], creator="visitor")

    async def twice(client: Client) -> list[list[str]]:
        first = await client.list_conversations(PROJECT, user_filter="team_member")
        second = await client.list_conversations(PROJECT, user_filter="team_member")
        return [[c.name for c in first], [c.name for c in second]]

    expected = [f"mine {i}" for i in range(4)] + ["teammate's"]
    assert run(emulator, twice) == [expected, expected]


def test_team_listing_costs_one_page_more_only_until_the_owner_is_seen(
    emulator: Emulator,
) -> None:
    emulator.add_conversations(PROJECT, [f"mine {i}" for i in range(7)])  # 3 pages
    before = requests(emulator)

    async def twice(client: Client) -> None:
        await client.current_user()
        for _ in range(2):
            await client.list_conversations(PROJECT, user_filter="team_member")

    run(emulator, twice)
    assert requests(emulator) - before == 1 + (1 + 3) + 3  # user; page 1 of all + 3; then 3


def test_a_small_project_is_listed_in_one_request(emulator: Emulator) -> None:
    emulator.variants = Variants(team_filter_excludes_owner=True)
    emulator.add_conversations(PROJECT, ["mine", "theirs"])
    emulator.add_conversation(PROJECT, "visitor", creator="visitor")
    before = requests(emulator)
    names = run(emulator, lambda c: c.list_conversations(PROJECT, user_filter="team_member"))
    assert [c.name for c in names] == ["mine", "theirs"]
    assert requests(emulator) - before == 1


# -- sends: external_id, no-cache, a slow model ----------------------------------------------


def sent_messages(emulator: Emulator, session: str) -> list[dict[str, Any]]:
    return emulator.messages(PROJECT, session)


def test_every_send_carries_its_external_id_and_asks_for_no_cache(emulator: Emulator) -> None:
    emulator.variants = Variants(cache_repeated_prompts=True)
    first = emulator.add_conversation(PROJECT, "first")["session_id"]
    second = emulator.add_conversation(PROJECT, "second")["session_id"]
    emulator.add_message(PROJECT, first, "Hello")
    external_id = send_external_id(PROJECT, second, 1, "Hello")
    message = run(emulator, lambda c: c.send_message(PROJECT, second, "Hello",
                                                     external_id=external_id))
    stored = sent_messages(emulator, second)
    assert [m["user_query"] for m in stored] == ["Hello"]  # answered anew, not from a cache
    assert stored[0]["metadata"]["external_id"] == external_id == message.external_id
    assert len(external_id) <= 128
    assert external_id == send_external_id(PROJECT, second, 1, "Hello")
    assert external_id != send_external_id(PROJECT, second, 2, "Hello")


def test_recovery_after_a_lost_answer_finds_the_send_by_its_external_id(
    emulator: Emulator,
) -> None:
    session = emulator.add_conversation(PROJECT, "c")["session_id"]
    emulator.faults.rules.append(FaultRule(method="POST", path="/messages",
                                           mode="commit-then-drop", times=1))
    message = run(emulator, lambda c: c.send_message(PROJECT, session, "Once\n",
                                                     external_id="reconciler-once"))
    stored = sent_messages(emulator, session)
    assert len(stored) == 1 and message.id == stored[0]["id"]


@pytest.mark.parametrize("wire", ["spec", "observed-2023"])
def test_recovery_without_an_echoed_id_compares_prompts_in_normal_form(
    emulator: Emulator, wire: str
) -> None:
    emulator.variants = Variants(wire=wire, trim_text=True)  # observed: no metadata at all
    session = emulator.add_conversation(PROJECT, "c")["session_id"]
    emulator.faults.rules.append(FaultRule(method="POST", path="/messages",
                                           mode="commit-then-fail", times=1))
    run(emulator, lambda c: c.send_message(PROJECT, session, "  Padded prompt\n",
                                           external_id="reconciler-padded"))
    assert [m["user_query"] for m in sent_messages(emulator, session)] == ["Padded prompt"]


def test_a_send_waits_for_a_slow_model(emulator: Emulator) -> None:
    emulator.variants = Variants(send_delay_ms=700, send_commits="end")
    session = emulator.add_conversation(PROJECT, "c")["session_id"]
    message = run(emulator, lambda c: c.send_message(PROJECT, session, "Slow"),
                  timeout=0.3, send_timeout=5.0)  # reads time out fast, a send does not
    assert message.user_query == "Slow" and len(sent_messages(emulator, session)) == 1


def test_a_late_commit_is_found_by_watching_the_transcript(emulator: Emulator) -> None:
    emulator.variants = Variants(send_delay_ms=500, send_commits="end")
    session = emulator.add_conversation(PROJECT, "c")["session_id"]
    run(emulator, lambda c: c.send_message(PROJECT, session, "Late"),
        send_timeout=0.1, send_watch=5.0)
    assert [m["user_query"] for m in sent_messages(emulator, session)] == ["Late"]


def test_an_answer_from_a_cache_is_not_taken_for_a_send() -> None:
    old = {"id": 7, "user_query": "Hello", "openai_response": "old",
           "created_at": "2023-06-25T17:00:31.000000Z"}
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"status": "success", "data": old})

    config = ClientSettings(api_key=Secret(KEY), base_url="http://127.0.0.1:9")

    async def main() -> None:
        async with Client(config, transport=httpx.MockTransport(handle)) as client:
            await client.send_message(PROJECT, "s", "Hello", newest_id=9, external_id="x-1")

    with pytest.raises(ApiError, match="an answer from a cache, and nothing was stored"):
        asyncio.run(main())
    assert seen[0].headers["Cache-Control"] == "no-cache"
    assert seen[0].url.params["external_id"] == "x-1"


# -- what real answers hold ------------------------------------------------------------------


def test_observed_shapes_parse(emulator: Emulator) -> None:
    emulator.variants = Variants(wire="observed-2023")
    session = emulator.add_conversation(PROJECT, "Who is Tom")["session_id"]
    for number in range(23):  # message pages of 20
        emulator.add_message(PROJECT, session, f"question {number}")
    transcript = run(emulator, lambda c: c.get_transcript(PROJECT, session))
    assert transcript.conversation.project_id == PROJECT
    assert transcript.conversation.created_by == "1"
    assert [m.user_query for m in transcript.messages] == [f"question {n}" for n in range(23)]
    assert transcript.messages[0].created_at.count(" ") == 3  # "25 Jun 2023 05:01:11"


def listed_from(conversation: dict[str, Any]) -> list[str]:
    """The names a client lists from a one-page answer holding `conversation` (a shape the
    emulator never sends)."""
    page = {"current_page": 1, "data": [conversation], "per_page": 10, "total": 1,
            "last_page": 1}

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"status": "success", "data": page})

    config = ClientSettings(api_key=Secret(KEY), base_url="http://127.0.0.1:9")

    async def main() -> list[str]:
        async with Client(config, transport=httpx.MockTransport(handle)) as client:
            return [c.name for c in await client.list_conversations(PROJECT)]

    return asyncio.run(main())


@pytest.mark.parametrize(("field", "value", "said"), [
    ("project_id", [532], "'project_id' of a conversation is a list ([532]), not an integer"),
    ("name", 12, "'name' of a conversation is an integer (12), not a string"),
    ("created_by", {"id": 35}, "'created_by' of a conversation is an object ({\"id\": 35})"),
    ("id", list(range(100)), "'id' of a conversation is a list ([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, "
                             "10, 11, 1…), not an integer"),
    ("created_at", 1687712431, "'created_at' of a conversation is an integer (1687712431), "
                               "not a time"),
], ids=["list-id", "number-name", "object-creator", "long-value-clipped", "epoch-time"])
def test_a_parse_failure_names_the_field_and_what_was_seen(
    field: str, value: Any, said: str
) -> None:
    conversation = {"id": 1, "session_id": "s", "name": "n", "project_id": 532,
                    "created_by": 35, "created_at": "t", "updated_at": "t", field: value}
    with pytest.raises(ApiError) as raised:
        listed_from(conversation)
    assert said in str(raised.value)


def test_times_are_not_required_since_they_are_never_compared() -> None:
    conversation = {"id": 1, "session_id": "s", "name": "n", "project_id": 532,
                    "created_by": 35, "created_at": None}
    assert listed_from(conversation) == ["n"]
