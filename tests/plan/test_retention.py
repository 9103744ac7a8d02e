"""A declared conversation the project's retention may have deleted: the plan says so.

The service deletes conversations older than the project's `conversation_retention_period`
(`year` by default, `custom` with `conversation_retention_days`, or `never`: the
`ProjectSettings` of the vendor's OpenAPI document of October 2025, Poll-The-People/
customgpt-integrations, docs/openapi.json at commit 230483cb). A plan that creates a
conversation declaring messages, or finds a pin gone, reads the project's settings (one
request per project, only then) and warns that the retention may explain it, and what
creating it again costs; settings that cannot be read add nothing.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from reconciler.api.client import Client, ClientSettings, Secret
from reconciler.desired.model import ConversationSpec, DesiredState, ProjectSpec
from reconciler.emulator import FaultRule
from reconciler.plan.guards import GuardLimits
from reconciler.plan.make import make_plan
from reconciler.plan.model import Plan
from tests.conftest import TEST_API_KEY
from tests.workspace import OTHER, PROJECT, Workspace

FAQ = f"""
    version: 1
    projects:
      - id: {PROJECT}
        conversations:
          - name: FAQ
            messages: [How do I start?, Where are the docs?, Thanks]
          - name: Kept
"""


def settings_read(ws: Workspace, *args: str) -> tuple[str, int]:
    """The plan's text, and how many times it read a project's settings (-vv lines)."""
    planned = ws.plan("-vv", *args)
    assert planned.code in (0, 1), planned.err
    return planned.out, sum("/settings -> " in line for line in planned.err.splitlines())


def test_a_conversation_gone_with_the_retention_is_created_again_with_a_note(
    ws: Workspace,
) -> None:
    ws.declare(FAQ)
    ws.seed("Kept")
    assert ws.apply().code == 0
    (faq,) = [c for c in ws.emulator.conversations(PROJECT) if c["name"] == "FAQ"]
    ws.emulator.age_conversation(PROJECT, faq["session_id"], 400)  # past the default year

    out, reads = settings_read(ws)
    assert "+ create 'FAQ'" in out and out.count("> send   'FAQ'") == 3
    assert ("Note: the project deletes conversations after 365 days: if the 1 conversation(s) "
            "created here ('FAQ') existed before, it deleted them, and their 3 prompt(s) are "
            "sent again (3 query credit(s))") in out
    assert "Warning" not in out  # a create may as well be new: a note, not a warning
    assert "Its sends use 3 query credit(s)" in out  # counted as any sends
    assert reads == 1


def test_a_custom_retention_is_named_in_days(ws: Workspace) -> None:
    ws.emulator.set_retention(PROJECT, "custom", 30)
    ws.declare(FAQ)
    out, _ = settings_read(ws)
    assert "the project deletes conversations after 30 days: if the 1 conversation(s)" in out


def test_a_project_that_keeps_its_conversations_gets_no_note(ws: Workspace) -> None:
    ws.emulator.set_retention(PROJECT, "never")
    ws.declare(FAQ)
    out, reads = settings_read(ws)
    assert "+ create 'FAQ'" in out and "deletes conversations" not in out
    assert reads == 1


@pytest.mark.parametrize("desired", [
    f"version: 1\nprojects:\n  - id: {PROJECT}\n    conversations:\n      - name: Bare\n",
    f"version: 1\nprojects:\n  - id: {PROJECT}\n    conversations:\n      - name: Kept\n"
    "        messages: [hello]\n",
], ids=["a-create-without-messages", "a-send-into-a-live-one"])
def test_settings_are_read_only_for_a_create_that_sends_or_a_missing_pin(
    ws: Workspace, desired: str
) -> None:
    ws.seed("Kept")
    ws.declare(desired)
    out, reads = settings_read(ws)
    assert reads == 0 and "deletes conversations" not in out


def test_one_settings_read_per_project_whatever_its_creates(ws: Workspace) -> None:
    ws.declare(f"""
        version: 1
        projects:
          - id: {PROJECT}
            conversations:
              - {{name: One, messages: [a]}}
              - {{name: Two, messages: [b, c]}}
          - id: {OTHER}
            conversations:
              - {{name: Three, messages: [d]}}
    """)
    planned = ws.plan("-vv", "--format", "json")
    reads = sorted(line.split()[1] for line in planned.err.splitlines()
                   if "/settings -> " in line)
    assert reads == [f"/api/v1/projects/{PROJECT}/settings", f"/api/v1/projects/{OTHER}/settings"]
    projects = {p["project_id"]: p for p in json.loads(planned.out)["projects"]}
    assert [p["warnings"] for p in projects.values()] == [[], []]
    assert projects[PROJECT]["notes"] == [
        "the project deletes conversations after 365 days: if the 2 conversation(s) created "
        "here ('One', 'Two') existed before, it deleted them, and their 3 prompt(s) are sent "
        "again (3 query credit(s))"]
    assert len(projects[OTHER]["notes"]) == 1


def test_a_pin_gone_with_the_retention_is_an_error_with_a_note(ws: Workspace) -> None:
    pinned = ws.seed("Escalations")
    ws.emulator.add_message(PROJECT, pinned, "Who is on call?")
    ws.declare(f"""
        version: 1
        projects:
          - id: {PROJECT}
            conversations:
              - name: Escalations
                session_id: {pinned}
                messages: [Who is on call?, And at night?]
    """)
    assert ws.plan("--detailed-exitcode").code == 2
    ws.emulator.set_retention(PROJECT, "custom", 90)
    ws.emulator.age_conversation(PROJECT, pinned, 91)
    planned = ws.plan()
    assert planned.code == 1
    assert f"is pinned to session {pinned}, which does not exist" in planned.out
    assert (f"Warning: project 1001 deletes conversations after 90 days; 'Escalations' (pinned "
            f"to session {pinned}) may have been deleted by it: remove its session_id to "
            "create it again (its 2 prompt(s) re-sent, 2 query credit(s))") in planned.out


def test_many_creates_make_one_note_naming_three(ws: Workspace) -> None:
    entries = "".join(f"          - {{name: New {n:02d}, messages: [hi]}}\n" for n in range(13))
    ws.declare(f"version: 1\nprojects:\n  - id: {PROJECT}\n    conversations:\n"
               + entries.replace("          ", "      "))
    out, _ = settings_read(ws)
    assert out.count("deletes conversations after") == 1
    assert ("if the 13 conversation(s) created here ('New 00', 'New 01', 'New 02', …) existed "
            "before") in out


def test_many_missing_pins_are_cut_to_ten_warnings_and_a_count(ws: Workspace) -> None:
    ws.emulator.set_retention(PROJECT, "custom", 90)
    entries = "".join(f"      - {{name: Pin {n:02d}, session_id: "
                      f"00000000-0000-4000-8000-0000000000{n:02d}}}\n" for n in range(13))
    ws.declare(f"version: 1\nprojects:\n  - id: {PROJECT}\n    conversations:\n" + entries)
    out, _ = settings_read(ws)
    assert out.count("may have been deleted by it") == 10
    assert "... and 3 more pinned conversation(s) the retention may have deleted" in out


# -- settings the client cannot read: no note --------------------------------------------------


@pytest.mark.parametrize("status", [404, 403, 500], ids=str)
def test_settings_that_cannot_be_read_add_no_note_and_the_plan_goes_on(
    ws: Workspace, status: int
) -> None:
    ws.emulator.faults.rules.append(FaultRule(method="GET", path="/settings$", status=status,
                                              times=None))
    ws.declare(FAQ)
    planned = ws.plan("--detailed-exitcode", "--timeout", "1")
    assert planned.code == 2, planned.out + planned.err
    assert "+ create 'FAQ'" in planned.out and "deletes conversations" not in planned.out


def plan_against(settings: object) -> Plan:
    """The plan of one create that sends, against a service whose project settings answer
    `settings` (anything else as an empty project would)."""
    page = {"current_page": 1, "last_page": 1, "per_page": 10, "total": 0, "data": []}
    answers = {"/api/v1/user": {"id": 1, "name": "u", "email": "u@example.com"},
               f"/api/v1/projects/{PROJECT}/conversations": page,
               f"/api/v1/projects/{PROJECT}/settings": settings,
               "/api/v1/limits/usage": {"max_queries": None, "current_queries": 0}}

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"status": "success", "data": answers[request.url.path]})

    spec = ProjectSpec(id=PROJECT, conversations=(ConversationSpec("FAQ", messages=("hi",)),))
    config = ClientSettings(api_key=Secret(TEST_API_KEY), base_url="http://127.0.0.1:9")

    async def main() -> Plan:
        async with Client(config, transport=httpx.MockTransport(handle)) as client:
            return await make_plan(client, DesiredState(projects=(spec,)), limits=GuardLimits())

    return asyncio.run(main())


@pytest.mark.parametrize("settings", [
    {"conversation_retention_period": "forever"},
    {"conversation_retention_period": None},
    {"conversation_retention_period": "custom", "conversation_retention_days": 0},
    {"conversation_retention_period": "custom", "conversation_retention_days": -5},
    {"conversation_retention_period": "custom", "conversation_retention_days": "soon"},
    {"conversation_retention_period": "custom"},
    {},
    ["year"],
    None,
], ids=["unknown-period", "null-period", "zero-days", "negative-days", "text-days",
        "no-days", "no-period", "a-list", "null"])
def test_settings_that_say_no_known_retention_add_no_note(settings: object) -> None:
    plan = plan_against(settings)
    assert [op.action.value for op in plan.operations] == ["create", "send"]
    assert plan.projects[0].warnings == () and plan.projects[0].notes == ()
    assert plan.all_errors == ()


@pytest.mark.parametrize(("settings", "days"), [
    ({"conversation_retention_period": "year", "conversation_retention_days": 0}, 365),
    ({"conversation_retention_period": "custom", "conversation_retention_days": "45"}, 45),
    ({"conversation_retention_period": "custom", "conversation_retention_days": 2**62}, 2**62),
], ids=["year", "days-as-digits", "huge"])
def test_settings_with_a_retention_are_read_as_days(settings: object, days: int) -> None:
    (note,) = plan_against(settings).projects[0].notes
    assert note.startswith(f"the project deletes conversations after {days} days:")
