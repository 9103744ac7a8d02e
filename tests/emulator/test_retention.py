"""A project's settings and its conversation retention, over real sockets: conversations older
than the retention period are gone at the next request, 12 months by default.

`conversation_retention_period` (custom | year | never, default year) and
`conversation_retention_days` (default 0) are the `ProjectSettings` of the vendor's OpenAPI
document of October 2025 (Poll-The-People/customgpt-integrations, commit 230483cb,
docs/openapi.json); `POST …/settings` answers `{"updated": true}` there.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest

from reconciler.emulator import Emulator, EmulatorError

PROJECT = 1001
CONV = f"/api/v1/projects/{PROJECT}/conversations"
SETTINGS = f"/api/v1/projects/{PROJECT}/settings"


def names(http: httpx.Client) -> list[str]:
    listed = http.get(CONV, params={"order": "asc"})
    assert listed.status_code == 200, listed.text
    return [c["name"] for c in listed.json()["data"]["data"]]


def test_settings_show_the_default_retention_of_a_year(http: httpx.Client) -> None:
    settings = http.get(SETTINGS)
    assert settings.status_code == 200
    data = settings.json()["data"]
    assert (data["conversation_retention_period"], data["conversation_retention_days"]) == (
        "year", 0)


def test_conversations_older_than_a_year_are_gone_at_the_next_request(
    emulator: Emulator, http: httpx.Client
) -> None:
    old = emulator.add_conversation(PROJECT, "Old")["session_id"]
    emulator.add_message(PROJECT, old, "still there?")
    almost = emulator.add_conversation(PROJECT, "Almost a year")["session_id"]
    emulator.add_conversation(PROJECT, "New")
    emulator.age_conversation(PROJECT, old, 366)
    emulator.age_conversation(PROJECT, almost, 364)
    assert names(http) == ["Almost a year", "New"]
    assert http.get(f"{CONV}/{old}/messages").status_code == 404
    assert emulator.messages(PROJECT, old) == []  # deleted for good, messages included


def test_the_admin_control_ages_a_conversation(emulator: Emulator, http: httpx.Client) -> None:
    created = emulator.add_conversation(PROJECT, "Old")
    aged = httpx.post(emulator.base_url + "/_emulator/age",
                      json={"project_id": PROJECT, "session_id": created["session_id"],
                            "days": 400})
    assert aged.status_code == 200
    moved = [datetime.fromisoformat(aged.json()["data"][key]) for key in ("created_at",
                                                                           "updated_at")]
    assert moved == [datetime.fromisoformat(created[key]) - timedelta(days=400)
                     for key in ("created_at", "updated_at")]
    assert names(http) == []


def test_a_project_set_to_never_keeps_everything(emulator: Emulator, http: httpx.Client) -> None:
    answered = http.post(SETTINGS, files={"conversation_retention_period": (None, "never")})
    assert answered.status_code == 200 and answered.json()["data"] == {"updated": True}
    session = emulator.add_conversation(PROJECT, "Ancient")["session_id"]
    emulator.age_conversation(PROJECT, session, 3650)
    assert http.get(SETTINGS).json()["data"]["conversation_retention_period"] == "never"
    assert names(http) == ["Ancient"]


def test_a_custom_period_counts_its_days(emulator: Emulator, http: httpx.Client) -> None:
    sessions = {days: emulator.add_conversation(PROJECT, f"{days} days old")["session_id"]
                for days in (29, 31)}
    for days, session in sessions.items():
        emulator.age_conversation(PROJECT, session, days)
    answered = http.post(SETTINGS, data={"conversation_retention_period": "custom",
                                         "conversation_retention_days": "30"})
    assert answered.status_code == 200, answered.text
    data = http.get(SETTINGS).json()["data"]
    assert (data["conversation_retention_period"], data["conversation_retention_days"]) == (
        "custom", 30)
    assert names(http) == ["29 days old"]


def test_the_admin_control_and_python_set_the_retention(
    emulator: Emulator, http: httpx.Client
) -> None:
    session = emulator.add_conversation(PROJECT, "Two days old")["session_id"]
    emulator.age_conversation(PROJECT, session, 2)
    emulator.set_retention(PROJECT, "never")
    assert names(http) == ["Two days old"]
    answered = httpx.put(emulator.base_url + "/_emulator/retention",
                         json={"project_id": PROJECT, "period": "custom", "days": 1})
    assert answered.json()["data"] == {"period": "custom", "days": 1}
    assert names(http) == []


def test_retention_applies_to_every_request_of_the_project(
    emulator: Emulator, http: httpx.Client
) -> None:
    session = emulator.add_conversation(PROJECT, "Old")["session_id"]
    emulator.age_conversation(PROJECT, session, 400)
    renamed = http.put(f"{CONV}/{session}", json={"name": "Renamed"})
    assert renamed.status_code == 404
    assert emulator.conversations(PROJECT) == []


def test_other_projects_keep_their_conversations(emulator: Emulator, http: httpx.Client) -> None:
    emulator.ensure_project(2002)
    session = emulator.add_conversation(2002, "Other project's")["session_id"]
    emulator.age_conversation(2002, session, 400)
    assert names(http) == []
    assert [c["name"] for c in emulator.conversations(2002)] == ["Other project's"]


@pytest.mark.parametrize(("fields", "fragment"), [
    ({"conversation_retention_period": "month"}, "custom, year, never"),
    ({"conversation_retention_period": "custom"}, "at least 1"),
    ({"conversation_retention_period": "custom", "conversation_retention_days": "-3"},
     "whole number"),
    ({"conversation_retention_period": "custom", "conversation_retention_days": "9" * 40},
     "whole number"),
    ({"conversation_retention_period": "custom", "conversation_retention_days": "99999999"},
     "from 0 to"),
], ids=["unknown-period", "custom-without-days", "negative-days", "40-digit-days", "too-many"])
def test_bad_settings_are_refused_and_change_nothing(
    http: httpx.Client, fields: dict[str, str], fragment: str
) -> None:
    refused = http.post(SETTINGS, data=fields)
    assert refused.status_code == 400 and fragment in refused.json()["data"]["message"]
    assert http.get(SETTINGS).json()["data"]["conversation_retention_period"] == "year"


@pytest.mark.parametrize(("path", "body", "status"), [
    ("age", {"project_id": PROJECT, "session_id": "nope", "days": 3}, 404),
    ("age", {"project_id": PROJECT, "session_id": "x", "days": -1}, 400),
    ("age", {"project_id": PROJECT, "session_id": "x", "days": True}, 400),
    ("retention", {"project_id": 4040, "period": "never"}, 404),
    ("retention", {"project_id": PROJECT, "period": "custom", "days": 0}, 400),
], ids=["unknown-session", "negative-days", "boolean-days", "unknown-project", "custom-zero"])
def test_admin_controls_refuse_bad_input(
    emulator: Emulator, http: httpx.Client, path: str, body: dict[str, object], status: int
) -> None:
    method = "POST" if path == "age" else "PUT"
    response = httpx.request(method, f"{emulator.base_url}/_emulator/{path}", json=body)
    assert response.status_code == status and response.json()["status"] == "error"


def test_python_helpers_refuse_what_cannot_be(emulator: Emulator, http: httpx.Client) -> None:
    with pytest.raises(EmulatorError, match="at least 1"):
        emulator.set_retention(PROJECT, "custom", 0)
    with pytest.raises(EmulatorError, match="does not exist"):
        emulator.set_retention(4040, "never")
    with pytest.raises(EmulatorError, match="not found"):
        emulator.age_conversation(PROJECT, "nope", 3)
