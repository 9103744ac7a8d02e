"""Scope `mine` lists with `userFilter=me` where the service serves it (the October 2025 OpenAPI
document, Poll-The-People/customgpt-integrations docs/openapi.json at commit 230483cb, lists
`me` among the listing's `userFilter` values), and where it answers 400 (a deployment from
before), with the team listing narrowed to the key's user, as before `me` existed. Either way
the same conversations, and the 400 costs one request for the client's lifetime."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from reconciler.api.client import Client, ClientSettings, Secret
from reconciler.desired.model import ConversationSpec, DesiredState, ProjectSpec
from reconciler.emulator import Emulator, Variants
from reconciler.plan.guards import GuardLimits
from reconciler.plan.make import make_plan
from reconciler.plan.model import Plan
from tests.workspace import PROJECT, Workspace

KEY = "test-key-0123456789"
OTHER = PROJECT + 1
T = TypeVar("T")
SERVED = {"served": Variants(), "refused": Variants(user_filter_me="unsupported")}


@pytest.fixture(params=list(SERVED), ids=list(SERVED))
def emulator(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    """An emulator with 3 conversations per page that serves `userFilter=me`, or answers 400
    to it, with the key's user's, a teammate's and visitors' conversations in PROJECT."""
    with Emulator(api_key=KEY, page_size=3, enable_admin=True,
                  variants=SERVED[request.param]) as emu:
        emu.start()
        for project in (PROJECT, OTHER):
            emu.ensure_project(project, f"project-{project}")
        emu.add_conversations(PROJECT, [f"mine {i}" for i in range(4)])
        emu.add_conversations(PROJECT, [f"team {i}" for i in range(5)], creator="teammate")
        emu.add_conversations(PROJECT, [f"visitor {i}" for i in range(3)], creator="visitor")
        yield emu


def served(emulator: Emulator) -> bool:
    return emulator.variants.user_filter_me == "supported"


def with_client(emulator: Emulator, action: Callable[[Client], Awaitable[T]]) -> tuple[T, int]:
    """`action`'s result with a fresh client that knows the key's user already, and the
    requests it made for it (the client's own count)."""
    config = ClientSettings(api_key=Secret(KEY), base_url=emulator.base_url)

    async def main() -> tuple[T, int]:
        async with Client(config) as client:
            await client.current_user()
            before = client.stats.requests
            result = await action(client)
            return result, client.stats.requests - before

    return asyncio.run(main())


def test_mine_lists_the_keys_own_conversations_either_way(emulator: Emulator) -> None:
    async def twice(client: Client) -> list[list[str]]:
        return [[c.name for c in await client.list_conversations(PROJECT, user_filter="me")]
                for _ in range(2)]

    listed, requests = with_client(emulator, twice)
    assert listed == [[f"mine {i}" for i in range(4)]] * 2
    if served(emulator):
        assert requests == 2 + 2  # the 4 of the key's user: 2 pages, twice
    else:
        # 400 to `me` (once), page 1 of userFilter=all (12: does team_member hold the
        # key's own?), the team listing's 3 pages; then the team listing's 3 pages only
        assert requests == (1 + 1 + 3) + 3


def test_me_is_asked_once_however_many_listings_run_at_once(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.add_conversations(OTHER, [f"other {i}" for i in range(4)])

    async def together(client: Client) -> list[list[str]]:
        listings = await asyncio.gather(*(
            client.list_conversations(project, user_filter="me")
            for project in (PROJECT, OTHER, PROJECT, OTHER)))
        return [[c.name for c in listing] for listing in listings]

    with caplog.at_level(logging.DEBUG, logger="reconciler.http"):
        listed, _ = with_client(emulator, together)
    mine, other = [f"mine {i}" for i in range(4)], [f"other {i}" for i in range(4)]
    assert listed == [mine, other, mine, other]
    asked = [r.getMessage() for r in caplog.records if "userFilter=me" in r.getMessage()
             and r.getMessage().startswith("GET ")]
    if served(emulator):
        assert len(asked) == 4 * 2 and all("-> 200 " in line for line in asked)
    else:
        assert len(asked) == 1 and "-> 400 " in asked[0]


def test_a_service_that_ignores_me_shows_no_one_elses_conversations() -> None:
    """A service that takes `me` but answers everyone's: the client keeps the key's user's."""
    rows = [{"id": n, "session_id": f"s{n}", "name": f"c{n}", "project_id": PROJECT,
             "created_by": creator, "created_at": "", "updated_at": ""}
            for n, creator in enumerate([1, 2, None, 1], start=1)]
    asked: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/user":
            return httpx.Response(200, json={"status": "success", "data": {
                "id": 1, "name": "Owner", "email": "o@example.com"}})
        asked.append(request.url.params["userFilter"])
        page = {"current_page": 1, "last_page": 1, "per_page": 10, "total": 4, "data": rows}
        return httpx.Response(200, json={"status": "success", "data": page})

    config = ClientSettings(api_key=Secret(KEY), base_url="http://127.0.0.1:9")

    async def main() -> list[str]:
        async with Client(config, transport=httpx.MockTransport(handle)) as client:
            return [c.name for c in await client.list_conversations(PROJECT, user_filter="me")]

    assert asyncio.run(main()) == ["c1", "c4"]
    assert asked == ["me"]


def test_unknown_filters_are_refused_before_any_request() -> None:
    config = ClientSettings(api_key=Secret(KEY), base_url="http://127.0.0.1:9")

    async def main() -> None:
        async with Client(config) as client:
            await client.list_conversations(PROJECT, user_filter="mine")

    with pytest.raises(ValueError, match="unknown user filter 'mine'"):
        asyncio.run(main())


# -- planning: the listing, and the lookups by name ------------------------------------------


def plan_of(emulator: Emulator, spec: ProjectSpec) -> tuple[Plan, int]:
    """The plan of `spec` (names looked up where cheaper), and the requests it made."""
    config = ClientSettings(api_key=Secret(KEY), base_url=emulator.base_url)

    async def main() -> tuple[Plan, int]:
        async with Client(config) as client:
            plan = await make_plan(client, DesiredState(projects=(spec,)),
                                   limits=GuardLimits())
            return plan, client.stats.requests

    return asyncio.run(main())


def test_a_prune_off_project_is_looked_up_by_name_either_way(emulator: Emulator) -> None:
    emulator.add_conversations(PROJECT, [f"earlier {i:02d}" for i in range(20)])
    spec = ProjectSpec(id=PROJECT, conversations=(
        ConversationSpec("mine 1"), ConversationSpec("team 1"),  # a teammate's: created
        ConversationSpec("Renamed", renamed_from=("mine 2",))))
    plan, requests = plan_of(emulator, spec)
    assert plan.projects[0].live_read == "names"
    assert [(op.action.value, op.name) for op in plan.operations] == [
        ("rename", "Renamed"), ("create", "team 1")]
    assert plan.budget is not None and plan.budget.requests_made == requests
    # the user, page 1, the probe of the name filter, 4 lookups (mine 1, team 1, Renamed,
    # mine 2), the last page (the newest of the key's conversations, for the create)
    if served(emulator):
        assert requests == 1 + 1 + 1 + 4 + 1
    else:
        # ... and the 400 to `me`, once: the lookups list the team's (userFilter=all, whose
        # pages hold the key's own: the team filter is never asked about)
        assert requests == 1 + 1 + 1 + 1 + 4 + 1


def test_a_pinned_conversation_of_someone_else_is_still_found(emulator: Emulator) -> None:
    """A pin is found wherever it is, even outside the `me` listing."""
    teammates = [c for c in emulator.conversations(PROJECT) if c["name"] == "team 3"]
    spec = ProjectSpec(id=PROJECT, prune=True, conversations=(
        ConversationSpec("team 3", session_id=teammates[0]["session_id"]),
        *(ConversationSpec(f"mine {i}") for i in range(4))))
    plan, _ = plan_of(emulator, spec)
    assert plan.all_errors == () and plan.operations == ()


# -- end to end: the command line ------------------------------------------------------------


def test_plan_and_apply_scope_mine_either_way_and_v_says_which(
    emulator: Emulator, tmp_path: Path
) -> None:
    env = {"CUSTOMGPT_API_KEY": KEY, "CUSTOMGPT_BASE_URL": emulator.base_url}
    ws = Workspace(tmp_path, env, emulator)
    for creator in ("teammate", "visitor"):  # the same name, out of scope
        ws.seed("FAQ", creator=creator)
    ws.declare(f"""
        version: 1
        projects:
          - id: {PROJECT}
            prune: true
            owns: ["mine *"]
            conversations:
              - name: FAQ
                messages: [hello]
              - name: mine 0
              - name: mine 1
              - name: Renamed
                renamed_from: [mine 2]
    """)
    planned = ws.plan("-v")
    assert planned.code == 0, planned.err
    expected = ("the API serves userFilter=me" if served(emulator)
                else "the API refuses userFilter=me (HTTP 400)")
    assert expected in planned.err
    assert "+ create 'FAQ'" in planned.out and "- delete 'mine 3'" in planned.out
    assert "team " not in planned.out and "visitor " not in planned.out
    assert ws.apply().code == 0
    again = ws.plan("--detailed-exitcode")
    assert again.code == 0, again.out
    names = [(c["name"], c["created_by"]) for c in emulator.conversations(PROJECT)]
    assert names.count(("FAQ", "1")) == 1 and ("mine 3", "1") not in names
    assert len([n for n, by in names if by != "1"]) == 5 + 3 + 2  # nobody else's touched


def requests_of(ws: Workspace, *args: str) -> int:
    """The requests a plan says it made."""
    line: list[Any] = [ln for ln in ws.plan(*args).out.splitlines() if ln.startswith("Budget:")]
    return int(line[0].split()[1])


def test_mine_costs_fewer_requests_where_me_is_served(tmp_path: Path) -> None:
    costs = {}
    for name, variants in SERVED.items():
        with Emulator(api_key=KEY, page_size=3, variants=variants) as emu:
            emu.start()
            emu.ensure_project(PROJECT)
            emu.add_conversations(PROJECT, [f"mine {i}" for i in range(3)])
            emu.add_conversations(PROJECT, [f"team {i}" for i in range(30)],
                                  creator="teammate")
            env = {"CUSTOMGPT_API_KEY": KEY, "CUSTOMGPT_BASE_URL": emu.base_url}
            ws = Workspace(tmp_path / name, env, emu)
            ws.path.mkdir()
            ws.file = ws.path / "conversations.yaml"
            ws.declare_pruned('[{name: "mine 0"}, {name: "mine 1"}, {name: "mine 2"}]')
            costs[name] = requests_of(ws)
    # served: the user and the one page of the key's own; refused: the user, the 400, page 1
    # of userFilter=all, and the 11 pages of the team listing
    assert costs == {"served": 1 + 1, "refused": 1 + 1 + 1 + 11}
