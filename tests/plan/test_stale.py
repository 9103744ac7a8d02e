"""Each action's precondition, checked against live state: what must still hold when a plan
is applied, and how each way of breaking it is named."""

from __future__ import annotations

import asyncio

import pytest

from reconciler.api.client import Client
from reconciler.api.live import Conversation, Message, Transcript
from reconciler.api.settings import ClientSettings, Secret
from reconciler.emulator import Emulator
from reconciler.plan.model import Plan, ProjectPlan
from reconciler.plan.operations import (
    Create,
    Delete,
    LiveView,
    Operation,
    Rename,
    Send,
    send_external_id,
)
from reconciler.plan.stale import find_stale


def conv(session: str, name: str) -> Conversation:
    return Conversation(id=int(session.removeprefix("s")), session_id=session, name=name,
                        project_id=7, created_by="1", created_at="2024-01-01 00:00:00",
                        updated_at="2024-01-01 00:00:00")


def view(*conversations: Conversation, prompts: dict[str, list[str]] | None = None,
         vacating: tuple[str, ...] = ()) -> LiveView:
    prompts = prompts or {}
    transcripts: dict[str, Transcript | None] = {
        c.session_id: Transcript(c, tuple(
            Message(i, p, "answer", "2024-01-01 00:00:00")
            for i, p in enumerate(prompts.get(c.session_id, []), start=1)))
        for c in conversations
    }
    holders: dict[str, frozenset[str]] = {}
    for c in conversations:
        holders[c.name] = holders.get(c.name, frozenset()) | {c.session_id}
    return LiveView(by_session={c.session_id: c for c in conversations}, holders=holders,
                    transcripts=transcripts, vacating=frozenset(vacating))


CREATE = Create(project_id=7, name="New", reason="declared")
RENAME = Rename(project_id=7, name="New", reason="renamed_from", session_id="s1", old_name="Old")
SEND = Send(project_id=7, name="Demo", reason="missing", session_id="s1", prompt="hi",
            position=2, live_name="Demo", occurrences=1)
SEND_NEW = Send(project_id=7, name="New", reason="missing", session_id=None, prompt="hi",
                position=1)
DELETE = Delete(project_id=7, name="Stray", reason="prune", session_id="s1", message_count=1)


@pytest.mark.parametrize(
    ("op", "live", "why"),
    [
        (CREATE, view(conv("s9", "Other")), ""),
        (CREATE, view(conv("s9", "New")), "a conversation named 'New' now exists (s9)"),
        (CREATE, view(conv("s9", "New"), vacating=("s9",)), ""),
        (RENAME, view(conv("s1", "Old")), ""),
        (RENAME, view(), "session s1 no longer exists"),
        (RENAME, view(conv("s1", "Other")), "name: 'Old' -> 'Other'"),
        (RENAME, view(conv("s1", "Old"), conv("s9", "New")),
         "the new name 'New' has been taken since the plan was made (s9)"),
        (RENAME, view(conv("s1", "Old"), conv("s9", "New"), vacating=("s1", "s9")), ""),
        (SEND, view(conv("s1", "Demo"), prompts={"s1": ["hi"]}), ""),
        (SEND, view(conv("s1", "Demo"), prompts={"s1": ["hi", "hi"]}),
         "the prompt has been sent since the plan was made: it is in the transcript 2 time(s), "
         "1 when planned"),
        (SEND, view(conv("s1", "Demo"), prompts={"s1": ["hi", "other"]}), ""),
        (SEND, view(conv("s1", "Renamed"), prompts={"s1": ["hi"]}), "name: 'Demo' -> 'Renamed'"),
        (SEND, view(), "session s1 no longer exists"),
        (SEND_NEW, view(), ""),
        (DELETE, view(conv("s1", "Stray"), prompts={"s1": ["a"]}), ""),
        (DELETE, view(conv("s1", "Stray"), prompts={"s1": ["a", "b"]}), "messages: 1 -> 2"),
        (DELETE, view(conv("s1", "Kept")), "name: 'Stray' -> 'Kept'"),
        (DELETE, view(), "session s1 no longer exists"),
    ],
    ids=["create-free", "create-taken", "create-taken-by-renamed",
         "rename-holds", "rename-gone", "rename-source-renamed", "rename-target-taken",
         "rename-target-renamed-away",
         "send-holds", "send-sent-since", "send-other-prompt", "send-conversation-renamed",
         "send-gone", "send-into-created",
         "delete-holds", "delete-new-messages", "delete-renamed", "delete-gone"],
)
def test_each_precondition(op: Operation, live: LiveView, why: str) -> None:
    got = op.why_stale(live)
    assert (why in got) if why else got == ""
    assert bool(got) is bool(why)


@pytest.mark.parametrize("op", [CREATE, RENAME, SEND, SEND_NEW, DELETE],
                         ids=lambda op: op.action.value)
def test_every_precondition_is_described_in_the_plan(op: Operation) -> None:
    words = op.requirement
    assert words
    precondition = op.to_dict()["precondition"]
    assert precondition["description"] == words
    for value in (precondition.get("name"), precondition.get("session_id")):
        if value:
            assert value in words


@pytest.mark.parametrize(
    ("op", "live", "why"),
    [
        (CREATE, view(conv("s9", "New"), conv("s8", "New")),
         "a conversation named 'New' now exists (s8, s9)"),
        (RENAME, view(conv("s1", "Other")),
         "changed since the plan was made: name: 'Old' -> 'Other'"),
        (RENAME, view(conv("s1", "Old"), conv("s9", "New"), conv("s8", "New")),
         "the new name 'New' has been taken since the plan was made (s8, s9)"),
        (SEND, view(conv("s1", "Renamed"), prompts={"s1": ["hi"]}),
         "changed since the plan was made: name: 'Demo' -> 'Renamed'"),
        (DELETE, view(conv("s1", "Kept"), prompts={"s1": ["a", "b"]}),
         "changed since the plan was made: messages: 1 -> 2; name: 'Stray' -> 'Kept'"),
    ],
    ids=["create-two-holders", "rename-source-renamed", "rename-target-two-holders",
         "send-conversation-renamed", "delete-renamed-and-new-messages"],
)
def test_a_stale_operation_says_exactly_what_changed(op: Operation, live: LiveView,
                                                     why: str) -> None:
    assert op.why_stale(live) == why


def test_a_rename_to_the_name_the_conversation_already_has_is_not_blocked_by_itself() -> None:
    again = Rename(project_id=7, name="New", reason="renamed_from", session_id="s1",
                   old_name="New")
    assert again.why_stale(view(conv("s1", "New"))) == ""


PROJECT = 7


def project_plan(*operations: Operation, scope: str = "mine",
                 project_id: int = PROJECT) -> ProjectPlan:
    return ProjectPlan(project_id=project_id, label=None, scope=scope, operations=operations)


def stale(emulator: Emulator, *projects: ProjectPlan) -> list[str]:
    """What `apply --plan` would find stale in a plan of `projects`, against the emulator."""
    settings = ClientSettings(api_key=Secret(emulator.api_key), base_url=emulator.base_url)

    async def check() -> list[str]:
        async with Client(settings) as client:
            return await find_stale(client, Plan(projects=projects))

    return asyncio.run(check())


@pytest.fixture
def live(emulator: Emulator) -> Emulator:
    emulator.ensure_project(PROJECT, "demo")
    return emulator


def seed(emulator: Emulator, name: str, *, creator: str = "me", prompts: tuple[str, ...] = (),
         project_id: int = PROJECT) -> str:
    session = str(emulator.add_conversation(project_id, name, creator=creator)["session_id"])
    for prompt in prompts:
        emulator.add_message(project_id, session, prompt)
    return session


def create(name: str, project_id: int = PROJECT) -> Operation:
    return Create(project_id=project_id, name=name, reason="declared")


def rename(session: str, old: str, new: str) -> Operation:
    return Rename(project_id=PROJECT, name=new, reason="renamed_from", session_id=session,
                  old_name=old)


def send(session: str, name: str, prompt: str, occurrences: int = 0) -> Operation:
    return Send(project_id=PROJECT, name=name, reason="missing", session_id=session,
                prompt=prompt, position=1, live_name=name, occurrences=occurrences)


def delete(session: str, name: str, messages: int) -> Operation:
    return Delete(project_id=PROJECT, name=name, reason="prune", session_id=session,
                  message_count=messages)


def test_a_plan_whose_preconditions_hold_is_not_stale(live: Emulator) -> None:
    old = seed(live, "Old")
    demo = seed(live, "Demo", prompts=("hello",))
    stray = seed(live, "Stray", prompts=("a", "b"))
    plan = project_plan(create("Fresh"), rename(old, "Old", "New"), send(demo, "Demo", "next"),
                        delete(stray, "Stray", 2))
    assert stale(live, plan) == []


def test_each_stale_operation_is_named_by_its_key(live: Emulator) -> None:
    taken = seed(live, "Fresh")
    old = seed(live, "Old")
    stray = seed(live, "Stray", prompts=("a",))
    live.add_message(PROJECT, stray, "typed since")
    plan = project_plan(create("Fresh"), rename(old, "Old", "New"), delete(stray, "Stray", 1),
                        send("gone-session", "Demo", "hi"))
    assert stale(live, plan) == [
        f"7/create/Fresh: a conversation named 'Fresh' now exists ({taken})",
        f"7/delete/{stray}: changed since the plan was made: messages: 1 -> 2",
        "7/send/gone-session#1: session gone-session no longer exists",
    ]


@pytest.mark.parametrize(
    ("scope", "creator", "blocks"),
    [("mine", "teammate", False), ("mine", "me", True), ("team", "teammate", True),
     ("team", "visitor", False), ("all", "visitor", True)],
    ids=["mine-teammate", "mine-me", "team-teammate", "team-visitor", "all-visitor"],
)
def test_only_a_conversation_in_the_projects_scope_takes_a_name(
        live: Emulator, scope: str, creator: str, blocks: bool) -> None:
    seed(live, "Fresh", creator=creator)
    found = stale(live, project_plan(create("Fresh"), scope=scope))
    assert bool(found) is blocks


def test_a_name_freed_by_a_rename_of_the_same_plan_may_be_created(live: Emulator) -> None:
    current = seed(live, "Billing")
    plan = project_plan(rename(current, "Billing", "Billing (old)"), create("Billing"))
    assert stale(live, plan) == []


def test_a_pinned_conversation_outside_the_listing_is_read_for_its_rename(
        live: Emulator) -> None:
    visitor = seed(live, "Visitor thread", creator="visitor")  # not in scope mine's listing
    assert stale(live, project_plan(rename(visitor, "Visitor thread", "Escalations"))) == []
    assert stale(live, project_plan(rename(visitor, "Other name", "Escalations"))) == [
        f"7/rename/{visitor}: changed since the plan was made: name: 'Other name' -> "
        "'Visitor thread'"]
    assert stale(live, project_plan(rename("gone-session", "Old", "New"))) == [
        "7/rename/gone-session: session gone-session no longer exists"]


def test_every_project_with_operations_is_checked_and_the_others_are_not_read(
        live: Emulator) -> None:
    live.ensure_project(8, "other")
    seed(live, "Taken", project_id=8)
    seed(live, "Fresh")
    never_read = project_plan(project_id=404)  # no such project: reading it would fail
    plan = (project_plan(create("Fresh")), never_read,
            project_plan(create("Taken", 8), create("Free", 8), project_id=8))
    assert [line.split(":")[0] for line in stale(live, *plan)] == ["7/create/Fresh",
                                                                   "8/create/Taken"]


def test_a_name_held_by_a_conversation_the_plan_deletes_may_be_taken(live: Emulator) -> None:
    """Declared `FAQ` pinned to another conversation: the plan renames that one to `FAQ` and
    deletes the undeclared `FAQ`, as apply -f does; nothing changed, so the plan holds."""
    pinned, undeclared = seed(live, "Other"), seed(live, "FAQ")
    plan = project_plan(rename(pinned, "Other", "FAQ"), delete(undeclared, "FAQ", 0))
    assert stale(live, plan) == []
    live.add_message(PROJECT, undeclared, "typed since")
    assert stale(live, plan) == [
        f"7/delete/{undeclared}: changed since the plan was made: messages: 0 -> 1"]


def test_a_conversation_the_plan_only_sends_to_keeps_its_name_taken(live: Emulator) -> None:
    demo = seed(live, "Demo")
    found = stale(live, project_plan(send(demo, "Demo", "hi"), create("Demo")))
    assert found == [f"7/create/Demo: a conversation named 'Demo' now exists ({demo})"]


def test_the_check_reads_only_the_listing_its_scope_needs() -> None:
    with Emulator(api_key="k-listing", page_size=3) as emulator:
        emulator.start()
        emulator.ensure_project(PROJECT)
        emulator.add_conversations(PROJECT, [f"visitor {n}" for n in range(12)],
                                   creator="visitor")
        requests = []
        for scope in ("mine", "all"):
            before = emulator.stats()["requests"].get("GET", 0)
            assert stale(emulator, project_plan(create("Fresh"), scope=scope)) == []
            requests.append(emulator.stats()["requests"]["GET"] - before)
    mine, everyone = requests
    assert mine < everyone  # the visitors' four pages are read only for scope all


@pytest.mark.parametrize(
    ("external_id", "holds"),
    [(send_external_id(7, "s1", 2, "hi"), True), (send_external_id(7, "s1", 3, "hi"), False),
     (send_external_id(7, "s2", 2, "hi"), False), (send_external_id(8, "s1", 2, "hi"), False),
     (send_external_id(7, "s1", 2, "other"), False), (None, False)],
    ids=["this-send", "another-position", "another-conversation", "another-project",
         "another-prompt", "no-id"],
)
def test_a_message_the_service_changed_counts_as_this_send_only_by_its_external_id(
        external_id: str | None, holds: bool) -> None:
    """The planned send finds its prompt once in the transcript, though the service stored it
    differently: only the external_id of this very send says it is the same message."""
    demo = conv("s1", "Demo")
    stored = Message(1, "hi, as the service stored it", "answer", "2024-01-01 00:00:00",
                     external_id=external_id)
    live = LiveView(by_session={"s1": demo}, holders={"Demo": frozenset({"s1"})},
                    transcripts={"s1": Transcript(demo, (stored,))}, vacating=frozenset())
    assert (SEND.why_stale(live) == "") is holds
