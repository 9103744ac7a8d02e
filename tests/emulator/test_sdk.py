"""The official SDK (`customgpt-client`) pointed at the emulator works unchanged."""

from __future__ import annotations

import asyncio
import datetime
import json
from typing import Any

import httpx
import pytest

from reconciler.emulator import Emulator, Variants
from reconciler.emulator.variants import WIRES

customgpt_client = pytest.importorskip("customgpt_client")
CustomGPT = customgpt_client.CustomGPT

PROJECT = 1001


@pytest.fixture(params=WIRES)
def wire(request: pytest.FixtureRequest) -> str:
    """Each shape of answers: the documented one, the one the real service sent in 2023, and
    the one the clients of 2025-2026 read (documented objects, named stream events)."""
    return str(request.param)


@pytest.fixture
def sdk(wire: str, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The SDK's class, configured the documented way (class attributes) for this test only,
    against the emulator answering in the `wire` shape."""
    emulator.variants = Variants(wire=wire)
    monkeypatch.setattr(CustomGPT, "base_url", emulator.base_url, raising=False)
    monkeypatch.setattr(CustomGPT, "api_key", emulator.api_key, raising=False)
    monkeypatch.setattr(CustomGPT, "timeout", 10.0, raising=False)
    emulator.ensure_project(PROJECT, "demo-bot")
    return CustomGPT


def sdk_limit(request: pytest.FixtureRequest, wire: str, reason: str,
              raises: type[Exception]) -> None:
    """Expect the SDK itself to fail on the real service's shape (strict: it must fail)."""
    if wire == "observed-2023":
        request.applymarker(pytest.mark.xfail(strict=True, raises=raises,
                                              reason=f"the SDK's limit: {reason}"))


def test_create_parses_into_the_sdk_model(sdk: Any, wire: str) -> None:
    response = sdk.Conversation.create(project_id=PROJECT, name="Onboarding FAQ")
    assert response.status_code == 201
    data = response.parsed.data
    assert data.name == "Onboarding FAQ"
    if wire != "observed-2023":
        assert (data.project_id, data.created_by) == (str(PROJECT), "1")
    else:  # the SDK keeps the integers the real service sends
        assert (data.project_id, data.created_by) == (PROJECT, 1)
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


def test_update_and_delete(sdk: Any) -> None:
    sid = sdk.Conversation.create(project_id=PROJECT, name="Billing").parsed.data.session_id
    updated = sdk.Conversation.update(project_id=PROJECT, session_id=sid, name="Billing FAQ")
    assert updated.status_code == 200 and updated.parsed.data.name == "Billing FAQ"
    deleted = sdk.Conversation.delete(project_id=PROJECT, session_id=sid)
    assert deleted.status_code == 200 and deleted.parsed.data.deleted is True
    gone = sdk.Conversation.update(project_id=PROJECT, session_id=sid, name="Again")
    assert gone.status_code == 404 and gone.parsed.data.code == 404


def test_send(sdk: Any, wire: str, request: pytest.FixtureRequest) -> None:
    sid = sdk.Conversation.create(project_id=PROJECT, name="Billing").parsed.data.session_id
    sdk_limit(request, wire, "its send model requires `metadata`, which real answers lack",
              AttributeError)
    sent = sdk.Conversation.send(project_id=PROJECT, session_id=sid, prompt="Refunds?",
                                 custom_persona="You are terse.")
    assert sent.status_code == 200
    assert sent.parsed.data.user_query == "Refunds?"
    assert sent.parsed.data.openai_response


def test_messages(sdk: Any, emulator: Emulator, wire: str, request: pytest.FixtureRequest) -> None:
    sid = sdk.Conversation.create(project_id=PROJECT, name="Billing").parsed.data.session_id
    sent = httpx.post(f"{emulator.base_url}/api/v1/projects/{PROJECT}/conversations/{sid}/messages",
                      json={"prompt": "Refunds?"},
                      headers={"Authorization": f"Bearer {emulator.api_key}"})
    assert sent.status_code == 200
    sdk_limit(request, wire, "it reads times as ISO 8601 only, and a real message listing "
              "gave \"25 Jun 2023 05:01:11\"", ValueError)
    messages = sdk.Conversation.messages(project_id=PROJECT, session_id=sid)
    assert messages.status_code == 200
    assert messages.parsed.data.conversation.name == "Billing"
    assert [m.user_query for m in messages.parsed.data.messages.data] == ["Refunds?"]
    citations = messages.parsed.data.messages.data[0].citations
    if wire == "spec":
        assert citations == []
    else:
        assert citations and all(isinstance(c, int) for c in citations)
    assert messages.parsed.data.messages.data[0].metadata.request_source is not None


def test_send_streams_events_the_sdk_reads(sdk: Any, emulator: Emulator) -> None:
    sid = sdk.Conversation.create(project_id=PROJECT, name="Stream").parsed.data.session_id
    stream = sdk.Conversation.send(project_id=PROJECT, session_id=sid, prompt="Hello there",
                                   stream=True)
    events = [json.loads(event.data) for event in stream.events()]
    assert events[-1]["status"] == "finish"
    text = "".join(event["message"] for event in events if event["status"] == "progress")
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
