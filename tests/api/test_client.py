"""The API client's normal behaviour: settings, reads, writes, pagination, auth and 404s.

Against the real emulator over a loopback socket; failures and odd responses are in
tests/api/test_engine.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from reconciler.api.client import Client, ClientSettings, ClientStats, Secret
from reconciler.desired.model import Reaction
from reconciler.emulator import Emulator, FaultRule, Variants
from reconciler.errors import AuthError, ForbiddenError, InputError, NotFoundError

KEY = "test-key-0123456789"
PROJECT = 4242
T = TypeVar("T")


class RecordedSleep:
    """Stands in for asyncio.sleep: remembers the delays, waits for none."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def settings_for(emulator: Emulator, *, key: str = KEY, parallelism: int = 4) -> ClientSettings:
    return ClientSettings(api_key=Secret(key), base_url=emulator.base_url, parallelism=parallelism)


def run(
    settings: ClientSettings, action: Callable[[Client], Awaitable[T]], **options: Any
) -> tuple[T, ClientStats]:
    """Run `action` with a fresh client (its sleep recorded, not waited); return its result
    and the client's counters."""

    async def main() -> tuple[T, ClientStats]:
        async with Client(settings, sleep=RecordedSleep(), **options) as client:
            return await action(client), client.stats

    return asyncio.run(main())


# -- settings --------------------------------------------------------------------------------


def test_settings_take_key_and_url_from_environment() -> None:
    env = {"CUSTOMGPT_API_KEY": f"  {KEY}\n", "CUSTOMGPT_BASE_URL": "https://api.example.com/"}
    settings = ClientSettings.from_environment(env)
    assert settings.api_key.reveal() == KEY
    assert settings.base_url == "https://api.example.com"


def test_settings_flags_win_over_environment(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("file-key-123\n", encoding="utf-8")
    env = {"CUSTOMGPT_API_KEY": "env-key", "CUSTOMGPT_BASE_URL": "https://env.example.com"}
    settings = ClientSettings.from_environment(
        env, base_url="https://flag.example.com", api_key_file=str(key_file),
        timeout=5.0, parallelism=3,
    )
    assert settings.api_key.reveal() == "file-key-123"
    assert (settings.base_url, settings.timeout, settings.parallelism) == (
        "https://flag.example.com", 5.0, 3,
    )


def test_settings_default_to_the_public_api() -> None:
    settings = ClientSettings.from_environment({"CUSTOMGPT_API_KEY": KEY})
    assert settings.base_url == "https://app.customgpt.ai"


@pytest.mark.parametrize(
    ("env", "options", "expected"),
    [
        ({}, {}, "no API key"),
        ({"CUSTOMGPT_API_KEY": "   "}, {}, "no API key"),
        ({"CUSTOMGPT_API_KEY": "a key"}, {}, "cannot contain"),
        ({"CUSTOMGPT_API_KEY": KEY}, {"api_key_file": "/nonexistent/key"},
         "cannot read the file given with --api-key-file: no such file or directory"),
        ({"CUSTOMGPT_API_KEY": KEY}, {"base_url": "app.customgpt.ai"}, "must look like"),
        ({"CUSTOMGPT_API_KEY": KEY}, {"base_url": "ftp://example.com"}, "must look like"),
        ({"CUSTOMGPT_API_KEY": KEY}, {"base_url": "https://example.com:99999"}, "not a valid URL"),
        ({"CUSTOMGPT_API_KEY": KEY}, {"base_url": "https://u:p@example.com"}, "credentials"),
        ({"CUSTOMGPT_API_KEY": KEY}, {"base_url": "http://api.example.com"}, "refusing plain"),
        ({"CUSTOMGPT_API_KEY": KEY}, {"base_url": "http://10.0.0.7:8000"}, "refusing plain"),
        ({"CUSTOMGPT_API_KEY": KEY}, {"parallelism": 0}, "parallelism must be at least 1"),
        ({"CUSTOMGPT_API_KEY": KEY}, {"timeout": 0}, "timeout must be positive"),
    ],
    ids=["no-key", "blank-key", "key-with-space", "unreadable-key-file", "no-scheme", "ftp",
         "bad-port", "credentials-in-url", "http-remote-host", "http-private-ip",
         "zero-parallelism", "zero-timeout"],
)
def test_bad_settings_are_input_errors(
    env: dict[str, str], options: dict[str, Any], expected: str
) -> None:
    with pytest.raises(InputError) as caught:
        ClientSettings.from_environment(env, **options)
    assert expected in str(caught.value)


def test_empty_key_file_is_an_input_error(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"the file given with --api-key-file is empty"):
        ClientSettings.from_environment({"CUSTOMGPT_API_KEY": KEY}, api_key_file=str(key_file))


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080", "http://127.3.4.5", "http://localhost:1", "http://[::1]:8080"],
    ids=["127.0.0.1", "127.x", "localhost", "ipv6-loopback"],
)
def test_plain_http_is_allowed_to_loopback(url: str) -> None:
    settings = ClientSettings.from_environment({"CUSTOMGPT_API_KEY": KEY}, base_url=url)
    assert settings.base_url == url


def test_plain_http_to_a_remote_host_needs_the_insecure_flag() -> None:
    settings = ClientSettings.from_environment(
        {"CUSTOMGPT_API_KEY": KEY}, base_url="http://api.example.com", insecure_http=True
    )
    assert settings.base_url == "http://api.example.com"


def test_the_key_never_shows_in_reprs() -> None:
    settings = ClientSettings.from_environment({"CUSTOMGPT_API_KEY": KEY})
    client = Client(settings)
    try:
        for text in (repr(settings), str(settings), repr(settings.api_key),
                     str(settings.api_key), f"{settings.api_key}", repr(client)):
            assert KEY not in text
    finally:
        asyncio.run(client.aclose())


# -- reading -----------------------------------------------------------------------------------


def test_current_user_and_project(paged: Emulator) -> None:
    async def read(client: Client) -> tuple[Any, Any]:
        return await client.current_user(), await client.get_project(PROJECT)

    (user, project), _ = run(settings_for(paged), read)
    assert project.id == PROJECT and project.name == "support-bot"
    mine = paged.add_conversation(PROJECT, "mine")
    assert user.id == str(mine["created_by"])


def test_listing_reads_every_page_in_id_order(paged: Emulator) -> None:
    names = [f"conversation {n:02d}" for n in range(25)]  # 9 pages of 3
    paged.add_conversations(PROJECT, names)
    listing, stats = run(settings_for(paged, parallelism=4),
                         lambda c: c.list_conversations(PROJECT))
    assert [c.name for c in listing] == names
    assert [c.id for c in listing] == sorted(c.id for c in listing)
    assert len({c.session_id for c in listing}) == 25
    assert all(c.project_id == PROJECT for c in listing)
    assert stats.requests == 9 and stats.relists == 0


def test_listing_an_empty_project(paged: Emulator) -> None:
    listing, stats = run(settings_for(paged), lambda c: c.list_conversations(PROJECT))
    assert listing == []
    assert stats.requests == 1


@pytest.mark.parametrize(
    ("user_filter", "expected"),
    [
        ("all", {"mine", "teammate's", "visitor's"}),
        ("team_member", {"mine", "teammate's"}),
        ("anonymous", {"visitor's"}),
    ],
    ids=["all", "team", "anonymous"],
)
def test_listing_by_user_filter(paged: Emulator, user_filter: str, expected: set[str]) -> None:
    paged.add_conversation(PROJECT, "mine", creator="me")
    paged.add_conversation(PROJECT, "teammate's", creator="teammate")
    paged.add_conversation(PROJECT, "visitor's", creator="visitor")
    listing, _ = run(
        settings_for(paged), lambda c: c.list_conversations(PROJECT, user_filter=user_filter)
    )
    assert {c.name for c in listing} == expected
    assert all((c.created_by is None) == (c.name == "visitor's") for c in listing)


def test_listing_by_name(paged: Emulator) -> None:
    paged.add_conversations(PROJECT, ["Billing", "Onboarding", "Billing", "Other"])
    listing, _ = run(settings_for(paged), lambda c: c.list_conversations(PROJECT, name="Billing"))
    assert [c.name for c in listing] == ["Billing", "Billing"]


def test_transcript_reads_every_message_page_oldest_first(paged: Emulator) -> None:
    session = paged.add_conversation(PROJECT, "long thread")["session_id"]
    prompts = [f"question {n}" for n in range(8)]  # 3 pages of 3
    for prompt in prompts:
        paged.add_message(PROJECT, session, prompt)
    transcript, _ = run(settings_for(paged), lambda c: c.get_transcript(PROJECT, session))
    assert transcript.conversation.session_id == session
    assert [m.user_query for m in transcript.messages] == prompts
    assert all(m.openai_response for m in transcript.messages)


# -- writing -----------------------------------------------------------------------------------


def test_create_rename_send_delete(paged: Emulator) -> None:
    async def lifecycle(client: Client) -> list[Any]:
        created = await client.create_conversation(PROJECT, "Billing")
        renamed = await client.rename_conversation(PROJECT, created.session_id, "Billing FAQ")
        message = await client.send_message(PROJECT, created.session_id, "How do refunds work?")
        transcript = await client.get_transcript(PROJECT, created.session_id)
        await client.delete_conversation(PROJECT, created.session_id)
        return [created, renamed, message, transcript]

    (created, renamed, message, transcript), stats = run(settings_for(paged), lifecycle)
    assert created.name == "Billing" and created.project_id == PROJECT
    assert renamed.session_id == created.session_id and renamed.name == "Billing FAQ"
    assert message.user_query == "How do refunds work?" and message.openai_response
    assert [m.id for m in transcript.messages] == [message.id]
    assert paged.conversations(PROJECT) == []
    assert stats.retries == 0


def test_a_reaction_is_set_changed_and_read_back_with_the_transcript(paged: Emulator) -> None:
    session = paged.add_conversation(PROJECT, "Feedback")["session_id"]
    first, second = (paged.add_message(PROJECT, session, p)["id"] for p in ("hi", "bye"))

    async def react(client: Client) -> list[Any]:
        await client.set_reaction(PROJECT, session, first, Reaction.LIKED)
        await client.set_reaction(PROJECT, session, first, Reaction.DISLIKED)
        await client.set_reaction(PROJECT, session, first, Reaction.DISLIKED)
        transcript = await client.get_transcript(PROJECT, session)
        return [(m.id, m.reaction, m.reaction_shown) for m in transcript.messages]

    found, stats = run(settings_for(paged), react)
    assert found == [(first, Reaction.DISLIKED, True), (second, None, True)]
    assert paged.messages(PROJECT, session)[0]["response_feedback"]["reaction"] == "disliked"
    assert stats.requests == 4  # one PUT each, and the transcript's single page


def test_a_reaction_to_a_message_that_is_not_there_is_not_found(paged: Emulator) -> None:
    session = paged.add_conversation(PROJECT, "Feedback")["session_id"]
    with pytest.raises(NotFoundError) as caught:
        run(settings_for(paged),
            lambda c: c.set_reaction(PROJECT, session, 987, Reaction.LIKED))
    assert str(caught.value) == (f"message 987 not found in conversation {session} of project "
                                 f"{PROJECT}")


def test_where_the_service_shows_no_feedback_the_reaction_is_unknown() -> None:
    with Emulator(api_key=KEY, variants=Variants(wire="observed-2023")) as emulator:
        emulator.start()
        emulator.ensure_project(PROJECT)
        session = emulator.add_conversation(PROJECT, "Old")["session_id"]
        emulator.add_message(PROJECT, session, "hi")
        transcript, _ = run(settings_for(emulator),
                            lambda c: c.get_transcript(PROJECT, session))
    assert [(m.reaction, m.reaction_shown) for m in transcript.messages] == [(None, False)]


def test_a_send_carries_the_options_given(paged: Emulator) -> None:
    session = paged.add_conversation(PROJECT, "Options")["session_id"]
    run(settings_for(paged), lambda c: c.send_message(
        PROJECT, session, "hi", persona="Be brief.", response_source="own_content",
        custom_context="A premium customer.", agent_capability="fastest-responses",
        chatbot_model="gpt-4-1-mini", lang="de"))
    run(settings_for(paged), lambda c: c.send_message(PROJECT, session, "plain"))
    carried = [sent["options"] for sent in paged.sends(PROJECT, session)]
    assert carried == [{"custom_persona": "Be brief.", "response_source": "own_content",
                        "custom_context": "A premium customer.",
                        "agent_capability": "fastest-responses",
                        "chatbot_model": "gpt-4-1-mini", "lang": "de"}, {}]


def test_created_conversation_belongs_to_the_keys_user(paged: Emulator) -> None:
    async def create(client: Client) -> tuple[Any, Any]:
        return await client.create_conversation(PROJECT, "Mine"), await client.current_user()

    (created, user), _ = run(settings_for(paged), create)
    assert created.created_by == user.id


# -- refusals ----------------------------------------------------------------------------------


def test_wrong_key_stops_at_once(paged: Emulator) -> None:
    with pytest.raises(AuthError) as caught:
        run(settings_for(paged, key="wrong-key-999"), lambda c: c.list_conversations(PROJECT))
    assert str(caught.value) == (
        "the API rejected the key (HTTP 401 (Unauthorized)): check CUSTOMGPT_API_KEY or "
        "--api-key-file"
    )
    assert caught.value.status == 401
    assert sum(paged.stats()["requests"].values()) == 1


MEMBER = "member-key-0123456789"
ROLE = ("was refused (HTTP 403): the API key's role may not change this conversation (a team "
        "member's key may change only its own)")


@pytest.mark.parametrize(("action", "said"), [
    (lambda c, s: c.rename_conversation(PROJECT, s, "New"),
     "renaming conversation {s} in project 4242 to 'New' " + ROLE),
    (lambda c, s: c.delete_conversation(PROJECT, s),
     "deleting conversation {s} in project 4242 " + ROLE),
    (lambda c, s: c.send_message(PROJECT, s, "Hello", newest_id=0),
     "sending a message to conversation {s} in project 4242 " + ROLE),
], ids=["rename", "delete", "send"])
def test_a_write_the_keys_role_may_not_make_is_refused_naming_it_not_the_key(
    action: Callable[[Client, str], Awaitable[object]], said: str
) -> None:
    with Emulator(api_key=KEY, member_key=MEMBER) as emulator:
        emulator.start()
        emulator.ensure_project(PROJECT)
        owners = emulator.add_conversation(PROJECT, "Owner's")["session_id"]
        with pytest.raises(ForbiddenError) as caught:
            run(settings_for(emulator, key=MEMBER), lambda c: action(c, owners))
        assert [c["name"] for c in emulator.conversations(PROJECT)] == ["Owner's"]
        assert sum(emulator.stats()["requests"].values()) == 1  # never retried
    assert str(caught.value) == said.format(s=owners)
    assert not isinstance(caught.value, AuthError) and caught.value.status == 403


def test_a_member_changes_its_own_conversations() -> None:
    with Emulator(api_key=KEY, member_key=MEMBER) as emulator:
        emulator.start()
        emulator.ensure_project(PROJECT)
        own = emulator.add_conversation(PROJECT, "Mine", creator="teammate")["session_id"]
        renamed, _ = run(settings_for(emulator, key=MEMBER),
                         lambda c: c.rename_conversation(PROJECT, own, "Still mine"))
    assert renamed.name == "Still mine"


@pytest.mark.parametrize("path", ["/api/v1/user", "/api/v1/projects/4242/conversations$"],
                         ids=["the-user", "a-listing"])
def test_a_403_on_a_read_is_still_the_key(paged: Emulator, path: str) -> None:
    paged.faults.rules.append(FaultRule(method="GET", path=path, status=403, times=None))

    async def read(client: Client) -> object:
        await client.current_user()
        return await client.list_conversations(PROJECT)

    with pytest.raises(AuthError) as caught:
        run(settings_for(paged), read)
    assert str(caught.value) == (
        "the API rejected the key (HTTP 403 (Forbidden)): check CUSTOMGPT_API_KEY or "
        "--api-key-file")


@pytest.mark.parametrize(
    "action",
    [
        lambda c: c.get_project(999),
        lambda c: c.list_conversations(999),
        lambda c: c.create_conversation(999, "x"),
    ],
    ids=["get-project", "list", "create"],
)
def test_unknown_project(paged: Emulator, action: Callable[[Client], Awaitable[Any]]) -> None:
    with pytest.raises(NotFoundError) as caught:
        run(settings_for(paged), action)
    assert str(caught.value) == "project 999 not found or not visible to this API key"


@pytest.mark.parametrize(
    "action",
    [
        lambda c: c.get_transcript(PROJECT, "no-such-session"),
        lambda c: c.rename_conversation(PROJECT, "no-such-session", "x"),
        lambda c: c.delete_conversation(PROJECT, "no-such-session"),
        lambda c: c.send_message(PROJECT, "no-such-session", "hi"),
    ],
    ids=["transcript", "rename", "delete", "send"],
)
def test_unknown_session(paged: Emulator, action: Callable[[Client], Awaitable[Any]]) -> None:
    with pytest.raises(NotFoundError) as caught:
        run(settings_for(paged), action)
    assert "conversation no-such-session not found in project 4242" in str(caught.value)


def test_session_ids_cannot_escape_their_path(paged: Emulator) -> None:
    with pytest.raises(NotFoundError):
        run(settings_for(paged), lambda c: c.delete_conversation(PROJECT, "../../4242"))
    assert paged.stats()["requests"].get("DELETE", 0) == 1


# -- logging -----------------------------------------------------------------------------------


def test_one_debug_line_per_request_without_the_key(
    paged: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    paged.add_conversations(PROJECT, [f"c{n}" for n in range(7)])  # 3 pages
    with caplog.at_level(logging.DEBUG):
        run(settings_for(paged), lambda c: c.list_conversations(PROJECT))
    lines = [r.getMessage() for r in caplog.records if r.name == "reconciler.http"]
    assert len(lines) == 3
    assert all(line.startswith("GET /api/v1/projects/4242/conversations?page=") for line in lines)
    assert all("-> 200 in " in line and "(attempt 1)" in line for line in lines)
    assert all(KEY not in r.getMessage() and KEY not in str(r.args) for r in caplog.records)
