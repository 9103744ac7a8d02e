"""A team member's key (`member_key`, `--member-key`) over real sockets: the member manages its
own conversations, reads everyone's, and is refused (403, the error envelope) on the others'."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from reconciler.cli.main import main
from reconciler.emulator import Emulator, EmulatorError
from reconciler.emulator.store import ME, TEAMMATE
from tests.conftest import TEST_API_KEY

PROJECT = 1001
CONV = f"/api/v1/projects/{PROJECT}/conversations"
MEMBER_KEY = "member-key-0123456789"


@dataclass
class Team:
    emulator: Emulator
    owner: httpx.Client
    member: httpx.Client


@pytest.fixture
def team() -> Iterator[Team]:
    """An emulator with the owner's key and a team member's, and a client for each."""
    with Emulator(api_key=TEST_API_KEY, member_key=MEMBER_KEY) as emulator:
        emulator.start()
        emulator.ensure_project(PROJECT, "demo-bot")
        clients = [httpx.Client(base_url=emulator.base_url, timeout=10,
                                headers={"Authorization": f"Bearer {key}"})
                   for key in (TEST_API_KEY, MEMBER_KEY)]
        with clients[0] as owner, clients[1] as member:
            yield Team(emulator, owner, member)


def test_the_members_key_is_the_members_user(team: Team) -> None:
    assert team.member.get("/api/v1/user").json()["data"]["id"] == int(TEAMMATE)
    assert team.owner.get("/api/v1/user").json()["data"]["id"] == int(ME)
    created = team.member.post(CONV, json={"name": "Member's"}).json()["data"]
    assert created["created_by"] == TEAMMATE
    mine = team.member.get(CONV, params={"userFilter": "me"}).json()["data"]["data"]
    assert [c["name"] for c in mine] == ["Member's"]


@pytest.mark.parametrize("creator", ["me", "visitor"], ids=["owners", "anonymous"])
@pytest.mark.parametrize("change", ["rename", "delete", "send"])
def test_a_member_may_not_change_a_conversation_another_user_started(
    team: Team, creator: str, change: str
) -> None:
    session = team.emulator.add_conversation(PROJECT, "Owner's", creator=creator)["session_id"]
    response = {"rename": lambda: team.member.put(f"{CONV}/{session}", json={"name": "Mine"}),
                "delete": lambda: team.member.delete(f"{CONV}/{session}"),
                "send": lambda: team.member.post(f"{CONV}/{session}/messages",
                                                 json={"prompt": "Hi"})}[change]()
    assert response.status_code == 403
    assert response.json() == {"status": "error", "url": str(response.request.url),
                               "data": {"code": 403, "message": "This action is unauthorized."}}
    assert [c["name"] for c in team.emulator.conversations(PROJECT)] == ["Owner's"]
    assert team.emulator.messages(PROJECT, session) == []


def test_a_member_reads_everyones_conversations(team: Team) -> None:
    session = team.emulator.add_conversation(PROJECT, "Owner's", creator="me")["session_id"]
    team.owner.post(f"{CONV}/{session}/messages", json={"prompt": "Hi"})
    assert team.member.get(CONV).json()["data"]["total"] == 1
    messages = team.member.get(f"{CONV}/{session}/messages")
    assert messages.status_code == 200
    assert [m["user_query"] for m in messages.json()["data"]["messages"]["data"]] == ["Hi"]


def test_a_member_manages_its_own_conversations(team: Team) -> None:
    session = team.member.post(CONV, json={"name": "Draft"}).json()["data"]["session_id"]
    assert team.member.put(f"{CONV}/{session}", json={"name": "Final"}).status_code == 200
    sent = team.member.post(f"{CONV}/{session}/messages", json={"prompt": "Hi"})
    assert sent.status_code == 200 and sent.json()["data"]["user_id"] == int(TEAMMATE)
    assert team.member.delete(f"{CONV}/{session}").status_code == 200
    assert team.emulator.conversations(PROJECT) == []


def test_the_owner_may_change_a_members_conversation(team: Team) -> None:
    session = team.member.post(CONV, json={"name": "Member's"}).json()["data"]["session_id"]
    assert team.owner.put(f"{CONV}/{session}", json={"name": "Owner renamed"}).status_code == 200
    assert team.owner.post(f"{CONV}/{session}/messages", json={"prompt": "Hi"}).status_code == 200
    assert team.owner.delete(f"{CONV}/{session}").status_code == 200


def test_a_member_may_not_change_the_projects_settings(team: Team) -> None:
    settings = f"/api/v1/projects/{PROJECT}/settings"
    refused = team.member.post(settings, data={"conversation_retention_period": "never"})
    assert refused.status_code == 403
    assert team.member.get(settings).json()["data"]["conversation_retention_period"] == "year"


def test_without_a_member_key_no_other_key_is_let_in() -> None:
    with Emulator(api_key=TEST_API_KEY) as emulator:
        emulator.start()
        emulator.ensure_project(PROJECT)
        response = httpx.get(emulator.base_url + CONV,
                             headers={"Authorization": f"Bearer {MEMBER_KEY}"})
        assert response.status_code == 401


@pytest.mark.parametrize("member_key", ["", TEST_API_KEY], ids=["empty", "the-api-key"])
def test_a_member_key_must_be_a_key_of_its_own(member_key: str) -> None:
    with pytest.raises(EmulatorError, match="team member's key"):
        Emulator(api_key=TEST_API_KEY, member_key=member_key)


def test_the_emulator_command_serves_a_member_key_and_never_prints_it() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "emulator", "--enable-admin",
         "--member-key", MEMBER_KEY], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(2)]
        settings = dict(line.strip().split("=", 1) for line in lines)
        url, owner_key = settings["CUSTOMGPT_BASE_URL"], settings["CUSTOMGPT_API_KEY"]
        httpx.post(url + "/_emulator/projects", json={"id": 7, "name": "p"})
        conversations = url + "/api/v1/projects/7/conversations"
        session = httpx.post(conversations, json={"name": "Owner's"},
                             headers={"Authorization": f"Bearer {owner_key}"}
                             ).json()["data"]["session_id"]
        refused = httpx.delete(f"{conversations}/{session}",
                               headers={"Authorization": f"Bearer {MEMBER_KEY}"})
        assert refused.status_code == 403
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
    stderr = process.stderr.read() if process.stderr else ""
    assert MEMBER_KEY not in "".join(lines) + stderr
    assert "Traceback" not in stderr


def test_the_emulator_command_refuses_the_api_key_as_member_key() -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main(["emulator", "--api-key", "same-key-123", "--member-key", "same-key-123"],
                env={}, stdout=out, stderr=err)
    assert code == 1 and "team member's key" in err.getvalue()
    assert "same-key-123" not in out.getvalue() + err.getvalue()
