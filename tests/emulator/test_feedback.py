"""One message by id, and the reaction to its answer, over real sockets.

Paths, the `reaction` values and the `response_feedback` object ({created_at, updated_at,
user_id|null, reaction}) follow the vendor's OpenAPI document of October 2025
(Poll-The-People/customgpt-integrations, commit 230483cb, docs/openapi.json: `PromptHistory`,
`…/messages/{promptId}`, `…/messages/{promptId}/feedback`, and the 404 text "Conversation
message with id {messageId} not found"). The 2023 answers of the real service had no
`response_feedback` (Poll-The-People/customgpt-cookbook, commit ab828988,
examples/Retrieve_messages_for_a_conversation.ipynb).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from reconciler.emulator import Emulator, Variants
from reconciler.emulator.store import TEAMMATE
from tests.conftest import TEST_API_KEY

PROJECT = 1001
CONV = f"/api/v1/projects/{PROJECT}/conversations"
MEMBER_KEY = "member-key-0123456789"


def exchange(http: httpx.Client, prompt: str = "Refunds?") -> tuple[str, dict[str, Any]]:
    session = http.post(CONV, json={"name": "Feedback"}).json()["data"]["session_id"]
    sent = http.post(f"{CONV}/{session}/messages", json={"prompt": prompt})
    return str(session), dict(sent.json()["data"])


def react(http: httpx.Client, session: str, message: int, reaction: Any) -> httpx.Response:
    return http.put(f"{CONV}/{session}/messages/{message}/feedback", json={"reaction": reaction})


def test_a_message_is_read_by_its_id(http: httpx.Client) -> None:
    session, sent = exchange(http)
    http.post(f"{CONV}/{session}/messages", json={"prompt": "Another"})
    read = http.get(f"{CONV}/{session}/messages/{sent['id']}")
    assert read.status_code == 200
    assert read.json()["data"] == sent


@pytest.mark.parametrize("reaction", ["liked", "disliked", "neutral"])
def test_a_reaction_is_recorded_and_shown_in_every_representation(
    http: httpx.Client, reaction: str
) -> None:
    session, sent = exchange(http)
    assert sent["response_feedback"] is None
    answered = react(http, session, sent["id"], reaction)
    assert answered.status_code == 200
    feedback = answered.json()["data"]["response_feedback"]
    assert feedback["reaction"] == reaction and feedback["user_id"] == 1
    assert feedback["created_at"].endswith(".000000Z")
    by_id = http.get(f"{CONV}/{session}/messages/{sent['id']}").json()["data"]
    listed = http.get(f"{CONV}/{session}/messages").json()["data"]["messages"]["data"]
    assert by_id["response_feedback"] == feedback == listed[0]["response_feedback"]


def test_a_reaction_changes_and_null_clears_it(http: httpx.Client) -> None:
    session, sent = exchange(http)
    first = react(http, session, sent["id"], "liked").json()["data"]["response_feedback"]
    second = react(http, session, sent["id"], "disliked").json()["data"]["response_feedback"]
    assert second["reaction"] == "disliked" and second["created_at"] == first["created_at"]
    cleared = react(http, session, sent["id"], None)  # what the vendor's widget sends
    assert cleared.status_code == 200
    assert cleared.json()["data"]["response_feedback"]["reaction"] is None
    missing_key = http.put(f"{CONV}/{session}/messages/{sent['id']}/feedback", json={})
    assert missing_key.status_code == 200


def test_a_team_members_reaction_names_the_member() -> None:
    with Emulator(api_key=TEST_API_KEY, member_key=MEMBER_KEY) as emulator:
        emulator.start()
        emulator.ensure_project(PROJECT)
        owner = httpx.Client(base_url=emulator.base_url,
                             headers={"Authorization": f"Bearer {TEST_API_KEY}"})
        with owner:
            session, sent = exchange(owner)
        answered = httpx.put(f"{emulator.base_url}{CONV}/{session}/messages/{sent['id']}/feedback",
                             json={"reaction": "liked"},
                             headers={"Authorization": f"Bearer {MEMBER_KEY}"})
        assert answered.json()["data"]["response_feedback"]["user_id"] == int(TEAMMATE)


@pytest.mark.parametrize(("path", "method", "body", "status", "fragment"), [
    ("{session}/messages/999", "GET", None, 404, "Conversation message with id 999 not found"),
    ("{session}/messages/999/feedback", "PUT", {"reaction": "liked"}, 404,
     "Conversation message with id 999 not found"),
    ("{session}/messages/abc", "GET", None, 400, "must be integer"),
    ("{session}/messages/" + "9" * 5000, "GET", None, 404, "not found"),
    ("{session}/messages/{message}/feedback", "PUT", {"reaction": "love"}, 400, "reaction"),
    ("{session}/messages/{message}/feedback", "PUT", {"reaction": 1}, 400, "reaction"),
    ("{session}/messages/{message}/feedback", "PUT", ["liked"], 400, "object"),
    ("{session}/messages/{message}/feedback", "GET", None, 405, "GET"),
    ("00000000-0000-4000-8000-000000000000/messages/{message}", "GET", None, 404,
     "Conversation with session id"),
], ids=["unknown-message", "feedback-unknown-message", "id-not-a-number", "5000-digit-id",
        "unknown-reaction", "reaction-number", "body-not-object", "wrong-method",
        "unknown-conversation"])
def test_bad_requests_get_error_envelopes(
    http: httpx.Client, path: str, method: str, body: Any, status: int, fragment: str
) -> None:
    session, sent = exchange(http)
    url = f"{CONV}/" + path.format(session=session, message=sent["id"])
    response = http.request(method, url, json=body)
    assert response.status_code == status
    assert fragment in response.json()["data"]["message"]
    listed = http.get(f"{CONV}/{session}/messages").json()["data"]["messages"]["data"]
    assert listed[0]["response_feedback"] is None


def test_a_message_of_another_conversation_is_not_found(http: httpx.Client) -> None:
    _, sent = exchange(http)
    other, _ = exchange(http, "Other")
    assert http.get(f"{CONV}/{other}/messages/{sent['id']}").status_code == 404
    assert react(http, other, sent["id"], "liked").status_code == 404


@pytest.mark.parametrize(("wire", "shown"), [
    ("spec", True), ("observed-2026", True), ("observed-2023", False)])
def test_response_feedback_is_shown_where_the_wire_has_it(wire: str, shown: bool) -> None:
    with Emulator(api_key=TEST_API_KEY, variants=Variants(wire=wire)) as emulator:
        emulator.start()
        emulator.ensure_project(PROJECT)
        with httpx.Client(base_url=emulator.base_url,
                          headers={"Authorization": f"Bearer {TEST_API_KEY}"}) as http:
            session, sent = exchange(http)
            reacted = react(http, session, sent["id"], "liked").json()["data"]
            by_id = http.get(f"{CONV}/{session}/messages/{sent['id']}").json()["data"]
            listed = http.get(f"{CONV}/{session}/messages").json()["data"]["messages"]["data"]
    for message in (sent, reacted, by_id, listed[0]):
        assert ("response_feedback" in message) is shown
    assert reacted["openai_response"] == sent["openai_response"]
