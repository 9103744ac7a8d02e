"""Every response shape of the emulator, over real sockets, against schemas/api/*.json."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas" / "api"
PROJECT = 1001


def load(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    return schema


def check(document: Any, name: str) -> None:
    jsonschema.Draft202012Validator(load(name)).validate(document)



@pytest.fixture
def session_id(client: httpx.Client) -> str:
    response = client.post(f"/api/v1/projects/{PROJECT}/conversations", json={"name": "Demo"})
    client.post(f"/api/v1/projects/{PROJECT}/conversations/{response.json()['data']['session_id']}"
                "/messages", json={"prompt": "What is the refund policy?"})
    return str(response.json()["data"]["session_id"])


Call = Callable[[httpx.Client, str], httpx.Response]
CONV = f"/api/v1/projects/{PROJECT}/conversations"

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
]


@pytest.mark.parametrize(("call", "status", "schema"), [case[1:] for case in SUCCESSES],
                         ids=[case[0] for case in SUCCESSES])
def test_success_responses_match_their_schema(
    client: httpx.Client, session_id: str, call: Call, status: int, schema: str
) -> None:
    response = call(client, session_id)
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
]


@pytest.mark.parametrize(("call", "status"), [case[1:] for case in ERRORS],
                         ids=[case[0] for case in ERRORS])
def test_error_responses_match_the_error_schema(
    client: httpx.Client, session_id: str, call: Call, status: int
) -> None:
    response = call(client, session_id)
    assert response.status_code == status
    check(response.json(), "error")
    assert response.json()["data"]["code"] == status


def test_schemas_are_valid_and_their_embedded_objects_agree() -> None:
    objects: dict[str, Any] = {}
    for path in sorted(SCHEMAS.glob("*.schema.json")):
        schema = json.loads(path.read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        for name, definition in schema.get("$defs", {}).items():
            assert objects.setdefault(name, definition) == definition, f"{path.name}: {name}"
    assert {"conversation", "message", "project", "user"} <= set(objects)


def test_schemas_reject_what_the_api_never_sends() -> None:
    conversation = {"id": 1, "session_id": "2bd65a44-bb41-48d0-aaa7-e756a224ef66", "name": "x",
                    "project_id": 5, "created_by": None, "created_at": "2024-01-01 00:00:00",
                    "updated_at": "2024-01-01T00:00:00Z"}
    with pytest.raises(jsonschema.ValidationError):
        check({"status": "success", "data": conversation}, "conversation")
