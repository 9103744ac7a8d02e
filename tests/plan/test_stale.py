"""A saved plan checked against live state: what the preconditions need is read (listings in
the project's scope, or the names it gives; transcripts), and each stale operation is named by
its key with what changed. Each kind's own check is pinned in tests/plan/operations/."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable
from dataclasses import replace

import httpx
import pytest

from reconciler.api.client import Client
from reconciler.api.settings import ClientSettings, Secret
from reconciler.desired.model import Reaction
from reconciler.emulator import Emulator, FaultRule
from reconciler.plan.guards import LiveCount
from reconciler.plan.model import IGNORED, LiveRead, Plan, ProjectPlan, Unmanaged
from reconciler.plan.operations import Create, Delete, Operation, React, Rename, Send
from reconciler.plan.stale import check_live, find_stale
from tests.saved_plans import (
    applies,
    apply_refused_as_stale,
    declare_conversations,
    prune_all,
    saved_plan,
)
from tests.workspace import PROJECT as WS_PROJECT
from tests.workspace import Workspace

PROJECT = 7


def project_plan(*operations: Operation, scope: str = "mine", project_id: int = PROJECT,
                 live_read: LiveRead = LiveRead.LISTING) -> ProjectPlan:
    return ProjectPlan(project_id=project_id, label=None, scope=scope, operations=operations,
                       live_read=live_read)


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


def test_a_plan_made_by_name_is_checked_by_looking_its_names_up() -> None:
    """Prune off, a plan read the names it gives by the API's name filter: its check looks up
    the same names (any stored form of them), and reads no page of the whole listing."""
    with Emulator(api_key="k-by-name", page_size=3) as emulator:
        emulator.start()
        emulator.ensure_project(PROJECT)
        emulator.add_conversations(PROJECT, [f"c{n:03d}" for n in range(30)])
        taken = seed(emulator, " Fresh ")
        old = seed(emulator, "Old")
        seed(emulator, "Newer")  # found by the lookup of New, but not named New
        emulator.add_conversations(PROJECT, ["Fresh"] * 12, creator="visitor")  # not in scope
        plan = project_plan(create("Fresh"), rename(old, "Old", "New"), create("Free"),
                            live_read=LiveRead.BY_NAME)
        before = emulator.stats()["requests"].get("GET", 0)
        found = stale(emulator, plan)
        reads = emulator.stats()["requests"]["GET"] - before
    assert found == [f"7/create/Fresh: a conversation named 'Fresh' now exists ({taken})"]
    # the user, a lookup per name (Free, Fresh, New) among the key's user's conversations
    # (userFilter=me), one page each, and the transcript of the renamed one; the visitors'
    # conversations named Fresh are never read (with userFilter=all: three pages more)
    assert reads == 5


def test_a_name_the_filter_cannot_look_up_is_checked_on_the_whole_listing() -> None:
    with Emulator(api_key="k-by-name", page_size=3) as emulator:
        emulator.start()
        emulator.ensure_project(PROJECT)
        emulator.add_conversations(PROJECT, [f"c{n:03d}" for n in range(30)])
        before = emulator.stats()["requests"].get("GET", 0)
        assert stale(emulator, project_plan(create("c001"), create("é"),
                                            live_read=LiveRead.BY_NAME))[0].startswith("7/create/c001")
        reads = emulator.stats()["requests"]["GET"] - before
    assert reads > 10  # every page of the listing


def counted(emulator: Emulator, *projects: ProjectPlan) -> dict[int, LiveCount]:
    """What `apply --plan` counts live for the guard, from the same read as its check."""
    settings = ClientSettings(api_key=Secret(emulator.api_key), base_url=emulator.base_url)

    async def check() -> dict[int, LiveCount]:
        async with Client(settings) as client:
            return (await check_live(client, Plan(projects=projects))).counts

    return asyncio.run(check())


def test_the_guard_counts_the_scope_live_now_less_what_the_plan_ignores(
        live: Emulator) -> None:
    """Not the plan's numbers: those of the listing read for its check (a visitor's
    conversation is out of scope mine; one the plan lists as ignored is not managed)."""
    mine = [seed(live, f"mine {n}") for n in range(3)]
    seed(live, "Visitor", creator="visitor")
    ignored = seed(live, "tmp-1")
    plan = replace(project_plan(delete(mine[0], "mine 0", 0)), live_in_scope=500,
                   managed_in_scope=500,
                   unmanaged=(Unmanaged(ignored, "tmp-1", IGNORED),
                              Unmanaged(mine[1], "mine 1", "protected")))
    assert counted(live, plan, project_plan(project_id=404)) == {
        PROJECT: LiveCount(in_scope=4, managed=frozenset(mine))}


def test_a_plan_that_deletes_is_counted_on_the_whole_listing_whatever_it_says() -> None:
    """An edited plan claiming it was made by name (prune off) still gets its scope counted
    whole: a lookup of the names it gives would count only those."""
    with Emulator(api_key="k-by-name", page_size=3) as emulator:
        emulator.start()
        emulator.ensure_project(PROJECT)
        emulator.add_conversations(PROJECT, [f"c{n:03d}" for n in range(30)])
        doomed = seed(emulator, "Fresh")
        plan = project_plan(create("Fresh"), delete(doomed, "Fresh", 0), live_read=LiveRead.BY_NAME)
        count = counted(emulator, plan)[PROJECT]
    assert count.in_scope == 31 and doomed in count.managed


def test_a_reaction_is_stale_when_its_message_was_given_another_since(live: Emulator) -> None:
    """The reaction is read with the transcript the check reads anyway; one given by a person
    since the plan (even the declared one) makes the plan stale, as a send would."""
    session = seed(live, "Demo", prompts=("hi", "bye"))
    first, second = (m["id"] for m in live.messages(PROJECT, session))
    planned = [React(project_id=PROJECT, name="Demo", reason="declared", session_id=session,
                     prompt=p, position=n, reaction=Reaction.LIKED, message_id=i)
               for n, (p, i) in enumerate((("hi", first), ("bye", second)), start=1)]
    assert stale(live, project_plan(*planned)) == []
    settings = ClientSettings(api_key=Secret(live.api_key), base_url=live.base_url)

    async def like() -> None:
        async with Client(settings) as client:
            await client.set_reaction(PROJECT, session, second, Reaction.LIKED)

    asyncio.run(like())
    assert stale(live, project_plan(*planned)) == [
        f"{PROJECT}/react/{session}#2: changed since the plan was made: reaction: 'none' -> "
        "'liked'"]


def test_stale_when_a_delete_target_was_renamed(ws: Workspace) -> None:
    doomed = ws.seed("Doomed")
    ws.seed("Other")
    ws.declare(f"""
        version: 1
        projects: [{{id: {WS_PROJECT}, prune: true, owns: ["*"], conversations: [{{name: Kept}}]}}]
    """)
    saved = saved_plan(ws, "--allow-mass-delete")  # deletes both it owns
    _rename_behind_the_back(ws, doomed, "Renamed by a colleague")
    err = apply_refused_as_stale(ws, saved, "--allow-mass-delete")
    assert "name: 'Doomed' -> 'Renamed by a colleague'" in err
    assert ws.names() == ["Other", "Renamed by a colleague"]


def _behind_the_back(ws: Workspace, method: str, session: str, **body: str) -> None:
    """What a colleague does in the dashboard: a direct API call, outside reconciler."""
    httpx.request(
        method, f"{ws.emulator.base_url}/api/v1/projects/{WS_PROJECT}/conversations/{session}",
        json=body or None, headers={"Authorization": f"Bearer {ws.emulator.api_key}"},
    ).raise_for_status()


def _rename_behind_the_back(ws: Workspace, session: str, name: str) -> None:
    _behind_the_back(ws, "PUT", session, name=name)


@pytest.mark.parametrize(
    "declared",
    ["conversations: []", "conversations: [{name: New, renamed_from: [Doomed]}]"],
    ids=["delete", "rename"],
)
def test_stale_when_the_target_is_gone(ws: Workspace, declared: str) -> None:
    doomed = ws.seed("Doomed")
    ws.declare(f'version: 1\nprojects: [{{id: {WS_PROJECT}, prune: true, owns: ["*"], '
               f"{declared}}}]\n")
    saved = saved_plan(ws, "--allow-mass-delete")  # the delete is of the only one owned
    _behind_the_back(ws, "DELETE", doomed)
    err = apply_refused_as_stale(ws, saved, "--allow-mass-delete")
    assert f"session {doomed} no longer exists" in err


@pytest.mark.parametrize(
    ("declared", "old"),
    [("[{name: New, renamed_from: [Old]}]", "Old"), ("[{name: Demo, messages: [hello]}]", "Demo")],
    ids=["rename-source", "send-target"],
)
def test_stale_when_the_conversation_was_renamed(ws: Workspace, declared: str, old: str) -> None:
    session = ws.seed(old)
    declare_conversations(ws, declared)
    saved = saved_plan(ws)
    _rename_behind_the_back(ws, session, "Something else")
    assert f"name: '{old}' -> 'Something else'" in apply_refused_as_stale(ws, saved)
    assert ws.names() == ["Something else"]
    assert ws.emulator.messages(WS_PROJECT, session) == []


@pytest.mark.parametrize(("sent_before", "declared"), [([], "[hi]"), (["hi"], "[hi, hi]")],
                         ids=["once", "repeated"])
def test_stale_when_a_planned_prompt_was_sent(
    ws: Workspace, sent_before: list[str], declared: str
) -> None:
    session = ws.seed("Demo")
    for prompt in sent_before:
        ws.emulator.add_message(WS_PROJECT, session, prompt)
    declare_conversations(ws, f"[{{name: Demo, messages: {declared}}}]")
    saved = saved_plan(ws)
    ws.emulator.add_message(WS_PROJECT, session, "hi")
    times = len(sent_before)
    assert (f"the prompt has been sent since the plan was made: it is in the transcript "
            f"{times + 1} time(s), {times} when planned") in apply_refused_as_stale(ws, saved)
    assert len(ws.emulator.messages(WS_PROJECT, session)) == times + 1


def test_a_delete_target_that_gained_messages_during_apply_is_kept(ws: Workspace) -> None:
    doomed = ws.seed("Doomed")
    prune_all(ws)
    saved = saved_plan(ws, "--allow-mass-delete")
    ws.emulator.add_message(WS_PROJECT, doomed, "typed after review")
    apply_refused_as_stale(ws, saved, "--allow-mass-delete")
    assert ws.names() == ["Doomed"]


def test_a_plan_is_applied_only_where_it_was_made(ws: Workspace) -> None:
    ws.declare(f"version: 1\nprojects: [{{id: {WS_PROJECT}, conversations: [{{name: A}}]}}]\n")
    saved = saved_plan(ws)
    assert json.loads(saved.read_text())["api"] == ws.emulator.base_url
    with Emulator(api_key=ws.emulator.api_key) as production:
        production.start()
        production.ensure_project(WS_PROJECT)
        elsewhere = {**ws.env, "CUSTOMGPT_BASE_URL": production.base_url}
        result = Workspace(ws.path, elsewhere, production).run(
            "apply", "--plan", str(saved), "--auto-approve")
        assert result.code == 1
        assert f"this plan was made against {ws.emulator.base_url}, not " \
               f"{production.base_url}: nothing was applied" in result.err
        assert production.conversations(WS_PROJECT) == []
    assert ws.names() == []


def test_a_saved_plan_partly_applied_says_to_plan_afresh_to_retry(ws: Workspace) -> None:
    declare_conversations(ws, "[{name: A}, {name: B}]")
    saved = saved_plan(ws)
    ws.emulator.faults.rules = [FaultRule(method="POST", path="/conversations$", status=400,
                                          times=1)]
    failed = ws.run("apply", "--plan", str(saved), "--auto-approve")
    assert failed.code == 1
    assert "Apply: 1 done, 1 failed, 0 skipped. To retry what failed, run `reconciler apply " \
           "-f` with the plan's desired-state files: the saved plan is stale once part of it " \
           "is applied." in failed.out
    assert "stale" in ws.run("apply", "--plan", str(saved), "--auto-approve").err
    assert ws.apply().code == 0
    assert ws.names() == ["A", "B"]


def test_stale_when_a_rename_target_was_taken(ws: Workspace) -> None:
    ws.seed("Old")
    declare_conversations(ws, "[{name: New, renamed_from: [Old]}]")
    saved = saved_plan(ws)
    taken = ws.seed("New")
    err = apply_refused_as_stale(ws, saved)
    assert f"the new name 'New' has been taken since the plan was made ({taken})" in err
    assert ws.names() == ["New", "Old"]


def test_a_repeated_prompt_is_applied_from_a_saved_plan(ws: Workspace) -> None:
    session = ws.seed("Demo")
    ws.emulator.add_message(WS_PROJECT, session, "hi")
    declare_conversations(ws, "[{name: Demo, messages: [hi, hi]}]")
    saved = saved_plan(ws)
    applies(ws, saved)
    assert [m["user_query"] for m in ws.emulator.messages(WS_PROJECT, session)] == ["hi", "hi"]
    assert "No changes." in ws.plan().out


def test_a_name_freed_by_a_rename_in_the_same_plan_is_not_taken(ws: Workspace) -> None:
    pinned = ws.seed("FAQ")
    declare_conversations(ws, f"[{{name: FAQ archive, session_id: {pinned}}}, {{name: FAQ}}]")
    saved = saved_plan(ws)
    applies(ws, saved)
    assert ws.names() == ["FAQ", "FAQ archive"]


class _Terminal(io.StringIO):
    """A person at a terminal who answers the confirmation prompt after `meanwhile` ran."""

    def __init__(self, meanwhile: Callable[[], object]) -> None:
        super().__init__()
        self.meanwhile = meanwhile

    def isatty(self) -> bool:
        return True

    def readline(self, size: int | None = -1) -> str:
        self.meanwhile()
        return "yes\n"


def test_apply_checks_again_after_a_person_took_time_to_confirm(ws: Workspace) -> None:
    ws.declare(f"version: 1\nprojects: [{{id: {WS_PROJECT}, conversations: [{{name: New}}]}}]\n")
    result = ws.run("apply", "-f", str(ws.file), stdin=_Terminal(lambda: ws.seed("New")))
    assert result.code == 1
    assert "the plan is stale; nothing was applied" in result.err
    assert "a conversation named 'New' now exists" in result.err
    assert ws.names() == ["New"]
