"""What a create or a send carries, over real sockets: JSON, form-encoded and multipart bodies
(with files), and the newer send fields, checked as documented and stored for a test to read.

The enumerations of `chatbot_model` and `response_source` are those of the send body in the
vendor's OpenAPI document of October 2025 (Poll-The-People/customgpt-integrations, commit
230483cb, docs/openapi.json), and those of `agent_capability` its settings' (the send body
there does not list it); `custom_context` is limited to 500 characters, as a 2026 client says.
"""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest

from reconciler.emulator import Emulator
from reconciler.emulator.multipart import MAX_PARTS
from reconciler.emulator.server import MAX_BODY

PROJECT = 1001
CONV = f"/api/v1/projects/{PROJECT}/conversations"


@pytest.fixture
def session(http: httpx.Client) -> str:
    created = http.post(CONV, json={"name": "Sends"})
    return str(created.json()["data"]["session_id"])


def test_the_new_send_fields_are_stored_with_the_message(
    emulator: Emulator, http: httpx.Client, session: str
) -> None:
    fields = {"custom_context": "The customer is on the Pro plan.",
              "agent_capability": "advanced-reasoning", "chatbot_model": "claude-3.5-sonnet",
              "response_source": "own_content", "custom_persona": "You are terse."}
    sent = http.post(f"{CONV}/{session}/messages", params={"lang": "de"},
                     json={"prompt": "Which plan am I on?", **fields})
    assert sent.status_code == 200, sent.text
    assert not set(fields) & set(sent.json()["data"])  # the API does not show them
    (stored,) = emulator.sends(PROJECT, session)
    assert stored["user_query"] == "Which plan am I on?"
    assert stored["options"] == {**fields, "lang": "de"}
    over_http = httpx.get(emulator.base_url + "/_emulator/sends",
                          params={"project_id": PROJECT, "session_id": session})
    assert over_http.json()["data"] == [stored]


def test_a_send_without_options_stores_none(
    emulator: Emulator, http: httpx.Client, session: str
) -> None:
    http.post(f"{CONV}/{session}/messages", json={"prompt": "Hi", "chatbot_model": None})
    assert [s["options"] for s in emulator.sends(PROJECT, session)] == [{}]


@pytest.mark.parametrize(("field", "value", "fragment"), [
    ("chatbot_model", "gpt-4-turbo", "chatbot_model is invalid"),
    ("response_source", "the-web", "response_source is invalid"),
    ("agent_capability", "optimal", "agent_capability is invalid"),
    ("custom_context", "x" * 501, "500 characters"),
    ("custom_context", 5, "must be a string"),
    ("custom_persona", ["You"], "must be a string"),
], ids=["unknown-model", "unknown-source", "unknown-capability", "long-context",
        "context-number", "persona-list"])
def test_a_value_the_api_does_not_take_is_refused_and_nothing_is_sent(
    emulator: Emulator, http: httpx.Client, session: str, field: str, value: Any, fragment: str
) -> None:
    refused = http.post(f"{CONV}/{session}/messages", json={"prompt": "Hi", field: value})
    assert refused.status_code == 400
    assert fragment in refused.json()["data"]["message"]
    assert emulator.messages(PROJECT, session) == []
    assert emulator.query_credits is None and emulator.application.api.queries_used == 0


def test_the_longest_custom_context_is_taken(
    emulator: Emulator, http: httpx.Client, session: str
) -> None:
    sent = http.post(f"{CONV}/{session}/messages",
                     json={"prompt": "Hi", "custom_context": "x" * 500})
    assert sent.status_code == 200
    assert emulator.sends(PROJECT, session)[0]["options"]["custom_context"] == "x" * 500


def test_create_and_send_accept_form_encoded_bodies(
    emulator: Emulator, http: httpx.Client
) -> None:
    created = http.post(CONV, data={"name": "Form-made"})
    assert created.status_code == 201 and created.json()["data"]["name"] == "Form-made"
    session = created.json()["data"]["session_id"]
    sent = http.post(f"{CONV}/{session}/messages",
                     data={"prompt": "Q&A = yes?", "agent_capability": "fastest-responses",
                           "chatbot_model": ""})
    assert sent.status_code == 200, sent.text
    assert sent.json()["data"]["user_query"] == "Q&A = yes?"
    (stored,) = emulator.sends(PROJECT, session)
    assert stored["options"] == {"agent_capability": "fastest-responses"}  # "" is null


def test_create_and_send_accept_multipart_bodies_with_files(
    emulator: Emulator, http: httpx.Client
) -> None:
    created = http.post(CONV, files={"name": (None, "Multipart-made")})
    assert created.status_code == 201 and created.json()["data"]["name"] == "Multipart-made"
    session = created.json()["data"]["session_id"]
    sent = http.post(f"{CONV}/{session}/messages", data={"prompt": "What does it say?"},
                     files=[("files[]", ("notes.txt", b"hello", "text/plain")),
                            ("files[]", ("scan.pdf", b"%PDF-1.4 " * 100, "application/pdf"))])
    assert sent.status_code == 200, sent.text
    (stored,) = emulator.sends(PROJECT, session)
    assert stored["user_query"] == "What does it say?"
    assert stored["options"]["files"] == [
        {"field": "files[]", "filename": "notes.txt", "size": 5, "content_type": "text/plain"},
        {"field": "files[]", "filename": "scan.pdf", "size": 900,
         "content_type": "application/pdf"}]


def test_a_form_send_can_stream(http: httpx.Client, session: str) -> None:
    streamed = http.post(f"{CONV}/{session}/messages", data={"prompt": "Hi", "stream": "1"})
    assert streamed.headers["content-type"].startswith("text/event-stream")


def test_a_file_over_the_body_limit_is_refused_before_it_is_read(
    emulator: Emulator, http: httpx.Client, session: str
) -> None:
    host, port = emulator.base_url.removeprefix("http://").rsplit(":", 1)
    head = (f"POST {CONV}/{session}/messages HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {emulator.api_key}\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\n"
            f"Content-Length: {MAX_BODY + 1}\r\n\r\n")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(head.encode("ascii"))  # the server answers without the body
        answer = connection.makefile("rb").readline()
    assert answer.startswith(b"HTTP/1.1 413")
    assert emulator.messages(PROJECT, session) == []


@pytest.mark.parametrize(("content_type", "body", "fragment"), [
    ("multipart/form-data", b"prompt=Hi", "could not be read"),
    ("application/x-www-form-urlencoded", "&".join(["a=1"] * (MAX_PARTS + 1)).encode(),
     "more than"),
    ("application/x-www-form-urlencoded", b"prompt=\xff\xfe", "UTF-8"),
    ("application/x-www-form-urlencoded", b"name=Hi", "prompt"),
    ("multipart/form-data; boundary=b",
     b"--b\r\nContent-Disposition: form-data; name=\"prompt\"; filename=\"p.txt\"\r\n\r\n"
     b"Hi\r\n--b--\r\n", "prompt"),
    ("multipart/form-data; boundary=b",
     b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n" * 20_000 + b"--b--",
     "more than 64 parts"),
    ("multipart/form-data; boundary=b",
     b"--b\r\nContent-Disposition: form-data; name=\"prompt\"\r\n" + b"X-A: b\r\n" * 50_000
     + b"\r\nHi\r\n--b--", "could not be read"),
    ("multipart/form-data; boundary=b",
     b"--b\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nHi", "could not be read"),
], ids=["multipart-without-boundary", "too-many-fields", "not-utf-8", "no-prompt",
        "prompt-sent-as-a-file", "20000-parts", "50000-header-lines", "no-closing-delimiter"])
def test_unreadable_forms_are_refused(
    emulator: Emulator, http: httpx.Client, session: str, content_type: str, body: bytes,
    fragment: str
) -> None:
    refused = http.post(f"{CONV}/{session}/messages", content=body,
                        headers={"Content-Type": content_type})
    assert refused.status_code == 400
    assert fragment in refused.json()["data"]["message"]
    assert emulator.messages(PROJECT, session) == []


def test_too_many_multipart_parts_are_refused(http: httpx.Client, session: str) -> None:
    files = [("files[]", (f"f{i}.txt", b"x")) for i in range(MAX_PARTS)]
    refused = http.post(f"{CONV}/{session}/messages", data={"prompt": "Hi"}, files=files)
    assert refused.status_code == 400 and "parts" in refused.json()["data"]["message"]


def test_a_project_form_of_thousands_of_parts_is_refused(
    emulator: Emulator, http: httpx.Client
) -> None:
    body = b'--b\r\nContent-Disposition: form-data; name="project_name"\r\n\r\nx\r\n' * 15_000
    refused = http.post("/api/v1/projects", content=body + b"--b--",
                        headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert refused.status_code == 400 and "64 parts" in refused.json()["data"]["message"]
    assert [p["id"] for p in http.get("/api/v1/projects").json()["data"]["data"]] == [PROJECT]
