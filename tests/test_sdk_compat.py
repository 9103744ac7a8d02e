"""The official SDK (`customgpt-client`) pointed at the emulator works unchanged."""

from __future__ import annotations

import asyncio
import datetime
import json
from typing import Any

import pytest

from reconciler.emulator import Emulator

customgpt_client = pytest.importorskip("customgpt_client")
CustomGPT = customgpt_client.CustomGPT

PROJECT = 1001


@pytest.fixture
def sdk(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The SDK's class, configured the documented way (class attributes) for this test only."""
    monkeypatch.setattr(CustomGPT, "base_url", emulator.base_url, raising=False)
    monkeypatch.setattr(CustomGPT, "api_key", emulator.api_key, raising=False)
    monkeypatch.setattr(CustomGPT, "timeout", 10.0, raising=False)
    emulator.ensure_project(PROJECT, "demo-bot")
    return CustomGPT


def test_create_parses_into_the_sdk_model(sdk: Any) -> None:
    response = sdk.Conversation.create(project_id=PROJECT, name="Onboarding FAQ")
    assert response.status_code == 201
    data = response.parsed.data
    assert data.name == "Onboarding FAQ"
    assert data.project_id == str(PROJECT)
    assert data.created_by == "1"
    assert isinstance(data.id, int) and len(data.session_id) == 36
    assert isinstance(data.created_at, datetime.datetime)


@pytest.mark.parametrize(("user_filter", "expected"), [
    ("all", ["visitor's", "teammate's", "mine"]),
    ("team_member", ["teammate's", "mine"]),
    ("anonymous", ["visitor's"]),
], ids=["all", "team_member", "anonymous"])
def test_get_lists_with_each_user_filter(
    sdk: Any, emulator: Emulator, user_filter: str, expected: list[str]
) -> None:
    for name, creator in (("mine", "me"), ("teammate's", "teammate"), ("visitor's", "visitor")):
        emulator.add_conversation(PROJECT, name, creator=creator)
    response = sdk.Conversation.get(project_id=PROJECT, user_filter=user_filter)
    assert response.status_code == 200
    page = response.parsed.data
    assert [item.name for item in page.data] == expected
    assert (page.total, page.current_page, page.last_page, page.next_page_url) == (
        len(expected), 1, 1, None)


def test_get_with_name_and_pages(sdk: Any, emulator: Emulator) -> None:
    emulator.add_conversations(PROJECT, [f"Billing {i}" for i in range(12)] + ["Other"])
    first = sdk.Conversation.get(project_id=PROJECT, name="Billing", order="asc").parsed.data
    second = sdk.Conversation.get(project_id=PROJECT, name="Billing", order="asc",
                                  page=2).parsed.data
    names = [item.name for item in first.data + second.data]
    assert names == [f"Billing {i}" for i in range(12)]
    assert first.next_page_url is not None and second.next_page_url is None


def test_update_messages_send_and_delete(sdk: Any) -> None:
    sid = sdk.Conversation.create(project_id=PROJECT, name="Billing").parsed.data.session_id
    updated = sdk.Conversation.update(project_id=PROJECT, session_id=sid, name="Billing FAQ")
    assert updated.status_code == 200 and updated.parsed.data.name == "Billing FAQ"

    sent = sdk.Conversation.send(project_id=PROJECT, session_id=sid, prompt="Refunds?",
                                 custom_persona="You are terse.")
    assert sent.status_code == 200
    assert sent.parsed.data.user_query == "Refunds?"
    assert sent.parsed.data.openai_response
    assert sent.parsed.data.citations == []

    messages = sdk.Conversation.messages(project_id=PROJECT, session_id=sid)
    assert messages.status_code == 200
    assert messages.parsed.data.conversation.name == "Billing FAQ"
    assert [m.user_query for m in messages.parsed.data.messages.data] == ["Refunds?"]
    assert messages.parsed.data.messages.data[0].metadata.request_source is not None

    deleted = sdk.Conversation.delete(project_id=PROJECT, session_id=sid)
    assert deleted.status_code == 200 and deleted.parsed.data.deleted is True
    gone = sdk.Conversation.messages(project_id=PROJECT, session_id=sid)
    assert gone.status_code == 404 and gone.parsed.data.code == 404


def test_send_streams_events_the_sdk_reads(sdk: Any, emulator: Emulator) -> None:
    sid = sdk.Conversation.create(project_id=PROJECT, name="Stream").parsed.data.session_id
    stream = sdk.Conversation.send(project_id=PROJECT, session_id=sid, prompt="Hello there",
                                   stream=True)
    events = [json.loads(event.data) for event in stream.events()]
    assert events[-1]["status"] == "finish"
    text = "".join(event["message"] for event in events[:-1])
    stored = emulator.messages(PROJECT, sid)
    assert [m["user_query"] for m in stored] == ["Hello there"]
    assert text == stored[0]["openai_response"]


def test_async_variants(sdk: Any) -> None:
    created = asyncio.run(sdk.Conversation.acreate(project_id=PROJECT, name="Async"))
    listed = asyncio.run(sdk.Conversation.aget(project_id=PROJECT))
    assert created.status_code == 201
    assert [item.session_id for item in listed.parsed.data.data] == [
        created.parsed.data.session_id]


def test_errors_parse_into_the_sdk_error_models(sdk: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = sdk.Conversation.get(project_id=4040)
    assert missing.status_code == 404
    assert missing.parsed.status == "error" and missing.parsed.data.code == 404
    monkeypatch.setattr(CustomGPT, "api_key", "wrong", raising=False)
    refused = sdk.Conversation.get(project_id=PROJECT)
    assert refused.status_code == 401
    assert refused.parsed.data.message == "API Token is either missing or invalid"
