"""Every response shape of the emulator, over real sockets, against schemas/api/*.json, in the
documented shapes and in those the real service was seen to send (`wire: observed-2023`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jsonschema
import pytest

from reconciler.emulator import Emulator, Variants
from reconciler.emulator.variants import WIRES
from tests import ROOT

SCHEMAS = ROOT / "schemas" / "api"
PROJECT = 1001


def load(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    return schema


def check(document: Any, name: str) -> None:
    jsonschema.Draft202012Validator(load(name)).validate(document)


@pytest.fixture(params=WIRES)
def http(request: pytest.FixtureRequest, emulator: Emulator) -> Iterator[httpx.Client]:
    """A client of the emulator answering in each wire shape, with project 1001."""
    emulator.variants = Variants(wire=request.param)
    emulator.ensure_project(PROJECT, "demo-bot")
    headers = {"Authorization": f"Bearer {emulator.api_key}"}
    with httpx.Client(base_url=emulator.base_url, headers=headers, timeout=10) as http:
        yield http


@pytest.fixture
def session_id(http: httpx.Client) -> str:
    response = http.post(f"/api/v1/projects/{PROJECT}/conversations", json={"name": "Demo"})
    http.post(f"/api/v1/projects/{PROJECT}/conversations/{response.json()['data']['session_id']}"
                "/messages", json={"prompt": "What is the refund policy?"})
    return str(response.json()["data"]["session_id"])


Call = Callable[[httpx.Client, str], httpx.Response]
CONV = f"/api/v1/projects/{PROJECT}/conversations"
SETTINGS = f"/api/v1/projects/{PROJECT}/settings"


def first_message(client: httpx.Client, session: str) -> str:
    """The path of the conversation's first message."""
    listed = client.get(f"{CONV}/{session}/messages").json()["data"]["messages"]["data"]
    return f"{CONV}/{session}/messages/{listed[0]['id']}"

SUCCESSES: list[tuple[str, Call, int, str]] = [
    ("create", lambda c, s: c.post(CONV, json={"name": "New"}), 201, "conversation"),
    ("rename", lambda c, s: c.put(f"{CONV}/{s}", json={"name": "Renamed"}), 200, "conversation"),
    ("list", lambda c, s: c.get(CONV), 200, "conversation-page"),
    ("list-empty-page", lambda c, s: c.get(CONV, params={"page": 9}), 200, "conversation-page"),
    ("messages", lambda c, s: c.get(f"{CONV}/{s}/messages"), 200, "messages-page"),
    ("send", lambda c, s: c.post(f"{CONV}/{s}/messages", json={"prompt": "Hi"}), 200, "message"),
    ("delete", lambda c, s: c.delete(f"{CONV}/{s}"), 200, "deleted"),
    ("projects", lambda c, s: c.get("/api/v1/projects"), 200, "project-page"),
    ("project", lambda c, s: c.get(f"/api/v1/projects/{PROJECT}"), 200, "project"),
    ("create-project", lambda c, s: c.post("/api/v1/projects", files={"file": ("a.txt", b"x")},
                                           data={"project_name": "Other"}), 201, "project"),
    ("user", lambda c, s: c.get("/api/v1/user"), 200, "user"),
    ("create-form", lambda c, s: c.post(CONV, data={"name": "Form"}), 201, "conversation"),
    ("send-multipart", lambda c, s: c.post(f"{CONV}/{s}/messages", data={"prompt": "Hi"},
                                           files={"file": ("a.txt", b"x")}), 200, "message"),
    ("list-me", lambda c, s: c.get(CONV, params={"userFilter": "me"}), 200, "conversation-page"),
    ("message", lambda c, s: c.get(first_message(c, s)), 200, "message"),
    ("feedback", lambda c, s: c.put(first_message(c, s) + "/feedback",
                                    json={"reaction": "liked"}), 200, "message"),
    ("feedback-cleared", lambda c, s: c.put(first_message(c, s) + "/feedback",
                                            json={"reaction": None}), 200, "message"),
    ("usage", lambda c, s: c.get("/api/v1/limits/usage"), 200, "usage"),
    ("settings", lambda c, s: c.get(SETTINGS), 200, "settings"),
    ("settings-update", lambda c, s: c.post(SETTINGS, files={
        "conversation_retention_period": (None, "never")}), 200, "updated"),
]


@pytest.mark.parametrize(("call", "status", "schema"), [case[1:] for case in SUCCESSES],
                         ids=[case[0] for case in SUCCESSES])
def test_success_responses_match_their_schema(
    http: httpx.Client, session_id: str, call: Call, status: int, schema: str
) -> None:
    response = call(http, session_id)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    check(response.json(), "envelope")
    check(response.json(), schema)


ERRORS: list[tuple[str, Call, int]] = [
    ("non-integer-project", lambda c, s: c.get("/api/v1/projects/abc/conversations"), 400),
    ("unknown-project", lambda c, s: c.get("/api/v1/projects/999/conversations"), 404),
    ("unknown-session", lambda c, s: c.delete(f"{CONV}/00000000-0000-4000-8000-000000000000"), 404),
    ("missing-name", lambda c, s: c.post(CONV, json={}), 400),
    ("malformed-json", lambda c, s: c.post(CONV, content=b"{nope"), 400),
    ("missing-prompt", lambda c, s: c.post(f"{CONV}/{s}/messages", json={"prompt": ""}), 400),
    ("bad-order", lambda c, s: c.get(CONV, params={"order": "up"}), 400),
    ("no-token", lambda c, s: c.get(CONV, headers={"Authorization": ""}), 401),
    ("unknown-path", lambda c, s: c.get("/api/v1/nothing"), 404),
    ("unknown-message", lambda c, s: c.get(f"{CONV}/{s}/messages/999999"), 404),
    ("bad-reaction", lambda c, s: c.put(first_message(c, s) + "/feedback",
                                        json={"reaction": "love"}), 400),
    ("bad-chatbot-model", lambda c, s: c.post(f"{CONV}/{s}/messages",
                                              json={"prompt": "Hi", "chatbot_model": "x"}), 400),
    ("bad-retention", lambda c, s: c.post(SETTINGS, data={
        "conversation_retention_period": "month"}), 400),
    ("completion-without-messages", lambda c, s: c.post(
        f"/api/v1/projects/{PROJECT}/chat/completions", json={}), 400),
]


@pytest.mark.parametrize(("call", "status"), [case[1:] for case in ERRORS],
                         ids=[case[0] for case in ERRORS])
def test_error_responses_match_the_error_schema(
    http: httpx.Client, session_id: str, call: Call, status: int
) -> None:
    response = call(http, session_id)
    assert response.status_code == status
    check(response.json(), "error")
    assert response.json()["data"]["code"] == status


def test_a_chat_completion_matches_its_schema(http: httpx.Client) -> None:
    response = http.post(f"/api/v1/projects/{PROJECT}/chat/completions",
                         json={"messages": [{"role": "user", "content": "Hi"}]})
    assert response.status_code == 200
    check(response.json(), "chat-completion")
    with pytest.raises(jsonschema.ValidationError):
        check(response.json(), "envelope")


@pytest.mark.parametrize(("variants", "call", "status"), [
    ({"user_filter_me": "unsupported"}, lambda c: c.get(CONV, params={"userFilter": "me"}), 400),
    ({"error_texts": "agent"}, lambda c: c.get("/api/v1/projects/4040/conversations"), 404),
    ({"per_page": "honoured"}, lambda c: c.get(CONV, params={"per_page": 0}), 400),
], ids=["user-filter-me-unsupported", "agent-error-texts", "per-page-honoured"])
def test_variant_errors_match_the_error_schema(
    emulator: Emulator, variants: dict[str, str], call: Callable[[httpx.Client], httpx.Response],
    status: int
) -> None:
    emulator.variants = Variants(**variants)
    emulator.ensure_project(PROJECT, "demo-bot")
    headers = {"Authorization": f"Bearer {emulator.api_key}"}
    with httpx.Client(base_url=emulator.base_url, headers=headers, timeout=10) as client:
        response = call(client)
    assert response.status_code == status
    check(response.json(), "error")


def test_a_members_refusal_matches_the_error_schema() -> None:
    with Emulator(api_key="owner-key-0123", member_key="member-key-0123") as emulator:
        emulator.start()
        emulator.ensure_project(PROJECT)
        session = emulator.add_conversation(PROJECT, "Owner's")["session_id"]
        refused = httpx.delete(f"{emulator.base_url}{CONV}/{session}",
                               headers={"Authorization": "Bearer member-key-0123"})
    assert refused.status_code == 403
    check(refused.json(), "error")


def test_schemas_are_valid_and_their_embedded_objects_agree() -> None:
    objects: dict[str, Any] = {}
    for path in sorted(SCHEMAS.glob("*.schema.json")):
        schema = json.loads(path.read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        for name, definition in schema.get("$defs", {}).items():
            assert objects.setdefault(name, definition) == definition, f"{path.name}: {name}"
    assert {"conversation", "message", "project", "user"} <= set(objects)


CONVERSATION = {"id": 222, "created_at": "2023-06-25T17:23:34.000000Z",
                "updated_at": "2023-06-25T17:24:41.000000Z",
                "session_id": "8ff8078b-0e2c-4f39-9a0f-1f2b3c4d5e6f", "project_id": 532,
                "created_by": 35, "name": "Who is Tom"}
MESSAGE = {"id": 431, "created_at": "25 Jun 2023 05:01:11", "updated_at": "25 Jun 2023 05:01:11",
           "user_id": 35, "user_query": "Who is Tom", "openai_response": "Tom is ...",
           "citations": ["12061.0", "12055.0"]}


def test_schemas_accept_the_real_services_captured_answers() -> None:
    check({"status": "success", "data": CONVERSATION}, "conversation")
    check({"status": "success", "data": MESSAGE}, "message")


@pytest.mark.parametrize(("schema", "field", "value"), [
    ("conversation", "project_id", [532]),
    ("conversation", "project_id", "5x"),
    ("conversation", "created_by", 1.5),
    ("conversation", "updated_at", "yesterday"),
    ("conversation", "created_at", "25 Jun 2023 05:01:11"),  # seen only in message listings
    ("message", "citations", ["twelve"]),
    ("message", "created_at", "2023/06/25"),
    ("message", "response_feedback", {"created_at": "2024-08-27T21:07:20.000000Z",
                                      "updated_at": "2024-08-27T21:07:20.000000Z",
                                      "user_id": 1, "reaction": "love"}),
    ("message", "response_feedback", "liked"),
], ids=["project-id-list", "project-id-text", "creator-float", "time-word",
        "listing-time-on-conversation", "citation-word", "time-slashes", "reaction-unknown",
        "feedback-not-an-object"])
def test_schemas_reject_what_the_api_never_sends(schema: str, field: str, value: Any) -> None:
    base = CONVERSATION if schema == "conversation" else MESSAGE
    with pytest.raises(jsonschema.ValidationError):
        check({"status": "success", "data": {**base, field: value}}, schema)


def test_every_object_says_which_of_its_fields_real_answers_had() -> None:
    for path in sorted(SCHEMAS.glob("*.schema.json")):
        for name, definition in json.loads(path.read_text()).get("$defs", {}).items():
            if name in ("conversation", "message"):
                assert "Seen in real answers" in definition["description"], (path.name, name)
