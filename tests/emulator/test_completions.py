"""`POST …/chat/completions` over real sockets: OpenAI's chat format, and a new conversation of
the key's user on every call, as a production integration sharing the key makes them.

The request and answer shapes follow the vendor's OpenAPI document of October 2025
(Poll-The-People/customgpt-integrations, commit 230483cb, docs/openapi.json:
`/api/v1/projects/{projectId}/chat/completions`, response `SendConversationMessageOpenAI`).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from reconciler.emulator import Emulator, Variants
from reconciler.emulator.store import ME, TEAMMATE
from tests.conftest import TEST_API_KEY

PROJECT = 1001
COMPLETIONS = f"/api/v1/projects/{PROJECT}/chat/completions"
MEMBER_KEY = "member-key-0123456789"


def ask(http: httpx.Client, content: str, **fields: Any) -> httpx.Response:
    return http.post(COMPLETIONS, json={"messages": [{"role": "user", "content": content}],
                                        **fields})


def test_each_call_creates_a_new_conversation_of_the_keys_user(
    emulator: Emulator, http: httpx.Client
) -> None:
    emulator.add_conversation(PROJECT, "Declared FAQ")
    answers = [ask(http, "What are your hours?") for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200]
    conversations = emulator.conversations(PROJECT)
    assert [c["name"] for c in conversations] == [
        "Declared FAQ", "What are your hours?", "What are your hours?"]
    assert {c["created_by"] for c in conversations} == {ME}
    for conversation, answered in zip(conversations[1:], answers, strict=True):
        (stored,) = emulator.messages(PROJECT, conversation["session_id"])
        assert stored["user_query"] == "What are your hours?"
        assert answered.json()["id"] == str(stored["id"])
        assert answered.json()["choices"][0]["message"]["content"] == stored["openai_response"]
    mine = http.get(f"/api/v1/projects/{PROJECT}/conversations", params={"userFilter": "me"})
    assert mine.json()["data"]["total"] == 3  # the integration's conversations are the key's


def test_the_answer_is_an_openai_chat_completion_without_the_envelope(
    http: httpx.Client
) -> None:
    answer = ask(http, "Hi", model="gpt-4-o").json()
    assert answer["object"] == "chat.completion" and "status" not in answer
    assert answer["model"] == "gpt-4-o" and isinstance(answer["created"], int)
    (choice,) = answer["choices"]
    assert choice["message"]["role"] == "assistant" and choice["finish_reason"] == "stop"
    assert answer["usage"]["total_tokens"] == 0


def test_the_last_user_message_is_the_prompt(emulator: Emulator, http: httpx.Client) -> None:
    messages = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": "First question"},
                {"role": "assistant", "content": "First answer"},
                {"role": "user", "content": "Second question"}]
    assert http.post(COMPLETIONS, json={"messages": messages}).status_code == 200
    (conversation,) = emulator.conversations(PROJECT)
    assert conversation["name"] == "Second question"
    assert [m["user_query"] for m in emulator.messages(PROJECT, conversation["session_id"])] == [
        "Second question"]


def test_external_id_and_options_are_stored_with_the_message(
    emulator: Emulator, http: httpx.Client
) -> None:
    assert ask(http, "Hi", external_id="order-77", lang="fr", is_inline_citation=True,
               model="gpt-4-1").status_code == 200
    (conversation,) = emulator.conversations(PROJECT)
    (stored,) = emulator.messages(PROJECT, conversation["session_id"])
    assert stored["metadata"]["external_id"] == "order-77"
    (sent,) = emulator.sends(PROJECT, conversation["session_id"])
    assert sent["options"] == {"lang": "fr", "model": "gpt-4-1", "is_inline_citation": True}


def test_a_stream_is_openai_chunks_ending_with_done(emulator: Emulator, http: httpx.Client) -> None:
    response = ask(http, "Stream it", stream=True)
    assert response.headers["content-type"].startswith("text/event-stream")
    lines = [line[6:] for line in response.text.split("\n\n") if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    chunks = [json.loads(line) for line in lines[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    (conversation,) = emulator.conversations(PROJECT)
    assert text == emulator.messages(PROJECT, conversation["session_id"])[0]["openai_response"]


def test_it_spends_a_query_credit_and_stops_at_none(emulator: Emulator, http: httpx.Client) -> None:
    emulator.query_credits = 1
    assert ask(http, "One").status_code == 200
    refused = ask(http, "Two")
    assert refused.status_code == 429 and refused.json()["status"] == "error"
    assert len(emulator.conversations(PROJECT)) == 1


def test_a_team_members_key_makes_the_members_conversations() -> None:
    with Emulator(api_key=TEST_API_KEY, member_key=MEMBER_KEY) as served:
        served.start()
        served.ensure_project(PROJECT)
        answer = httpx.post(served.base_url + COMPLETIONS,
                            json={"messages": [{"role": "user", "content": "Hi"}]},
                            headers={"Authorization": f"Bearer {MEMBER_KEY}"})
        assert answer.status_code == 200
        (conversation,) = served.conversations(PROJECT)
        assert conversation["created_by"] == TEAMMATE
        assert served.messages(PROJECT, conversation["session_id"])[0]["user_id"] == int(TEAMMATE)


@pytest.mark.parametrize(("body", "status", "fragment"), [
    ({}, 400, "messages"),
    ({"messages": []}, 400, "messages"),
    ({"messages": "Hi"}, 400, "messages"),
    ({"messages": [{"role": "robot", "content": "Hi"}]}, 400, "role"),
    ({"messages": [{"role": "user", "content": ["Hi"]}]}, 400, "content"),
    ({"messages": [{"role": "system", "content": "Be brief."}]}, 400, "user message"),
    ({"messages": [{"role": "user", "content": "  "}]}, 400, "user message"),
    ({"messages": [{"role": "user", "content": "Hi"}], "stream": "sometimes"}, 400, "stream"),
    ({"messages": [{"role": "user", "content": "Hi"}], "external_id": "x" * 129}, 400, "128"),
    ({"messages": [{"role": "user", "content": "Hi"}], "is_inline_citation": "yes"}, 400,
     "is_inline_citation"),
    ({"messages": [{"role": "user", "content": "Hi"}], "audio": {}}, 501, "audio"),
    ([{"role": "user", "content": "Hi"}], 400, "object"),
], ids=["no-messages", "empty", "not-a-list", "bad-role", "content-parts", "no-user-message",
        "blank-prompt", "bad-stream", "long-external-id", "bad-inline-citation", "audio",
        "not-an-object"])
def test_bad_requests_are_refused_and_create_nothing(
    emulator: Emulator, http: httpx.Client, body: Any, status: int, fragment: str
) -> None:
    response = http.post(COMPLETIONS, json=body)
    assert response.status_code == status
    assert response.json()["status"] == "error" and fragment in response.json()["data"]["message"]
    assert emulator.conversations(PROJECT) == []


def test_the_prompt_is_stored_as_the_service_stores_prompts() -> None:
    with Emulator(api_key=TEST_API_KEY, variants=Variants(trim_text=True,
                                                          escape_prompts=True)) as served:
        served.start()
        served.ensure_project(PROJECT)
        answered = httpx.post(served.base_url + COMPLETIONS,
                              json={"messages": [{"role": "user", "content": " Q&A "}]},
                              headers={"Authorization": f"Bearer {TEST_API_KEY}"})
        assert answered.status_code == 200
        (conversation,) = served.conversations(PROJECT)
        assert conversation["name"] == "Q&A"
        assert served.messages(PROJECT, conversation["session_id"])[0]["user_query"] == "Q&amp;A"


def test_unknown_project_is_a_404_envelope(http: httpx.Client) -> None:
    response = http.post("/api/v1/projects/4040/chat/completions",
                         json={"messages": [{"role": "user", "content": "Hi"}]})
    assert response.status_code == 404 and response.json()["data"]["code"] == 404
