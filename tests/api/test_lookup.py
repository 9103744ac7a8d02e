"""Prune-off projects read by name: few requests, and exactly the plan a full listing gives,
whatever the API's name filter matches (exact, prefix, substring, case-insensitive) and
whether it stores names trimmed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.api.client import Client, ClientSettings, Secret
from reconciler.api.lookup import by_name_is_cheaper, lookup_names, lookup_query, substring_probe
from reconciler.desired.model import (
    ConversationSpec,
    DesiredState,
    DuplicatePolicy,
    ProjectSpec,
    Scope,
)
from reconciler.emulator import Emulator
from reconciler.emulator.variants import NAME_FILTERS, Variants
from reconciler.plan.guards import GuardLimits
from reconciler.plan.make import make_plan
from reconciler.plan.model import Plan
from tests.conftest import TEST_API_KEY

PROJECT = 1001

# Names chosen to trip a filter: case variants, prefixes, substrings, LIKE wildcards and
# escapes, surrounding whitespace, a decomposed accent, and duplicates.
POOL = ["FAQ", "faq", "FAQ 2", "My FAQ", "FA", "Billing", " Billing", "Billing ", "Bill",
        "a_b", "a%b", "axb", "a\\b", "Café", "Cafe\u0301", "Ünï", "x", "Key", "\u212aey",
        "a;b", "a\u037eb"]


@pytest.mark.parametrize(
    ("name", "query"),
    [("FAQ", "FAQ"), ("My FAQ 2", "My FAQ 2"), ("a_b%", "a_b%"), ("Café au lait", "au lait"),
     ("Knowledge base", "nowledge base"), ("a;b;cd", "cd"), ("back\\slash", "slash"),
     ("Ünï", "n"), ("Üïé", None), ("K", None)],
    ids=["plain", "spaces-inside", "wildcards", "accent", "kelvin-k", "greek-semicolon",
         "backslash", "one-ascii", "no-ascii", "only-k"],
)
def test_a_lookup_asks_for_the_longest_run_every_stored_form_keeps(
    name: str, query: str | None
) -> None:
    assert lookup_query(name) == query


def test_the_substring_probe_is_neither_a_prefix_nor_a_suffix() -> None:
    assert substring_probe(["ab", "aaaa", "abcb", "Billing"]) == ("abcb", "bc")
    assert substring_probe(["x", "aa", "aaa"]) is None


def test_every_declared_and_old_name_is_looked_up_once() -> None:
    spec = ProjectSpec(id=1, conversations=(
        ConversationSpec("A", renamed_from=("Old A", "B")), ConversationSpec("B"),
        ConversationSpec("C", renamed_from=("Old A ",))))
    assert lookup_names(spec) == ["A", "Old A", "B", "C"]  # in normal form


@pytest.mark.parametrize(("lookups", "pages", "cheaper"),
                         [(20, 10_000, True), (3, 5, False), (3, 6, True), (5, 1, False)],
                         ids=["huge", "equal", "one-fewer", "single-page"])
def test_names_are_looked_up_only_when_that_costs_fewer_requests(
    lookups: int, pages: int, cheaper: bool
) -> None:
    assert by_name_is_cheaper(lookups, pages) is cheaper


# -- against the emulator ----------------------------------------------------------------------


def plan_with(emulator: Emulator, spec: ProjectSpec, *, by_name: bool) -> tuple[Plan, int]:
    """The plan of `spec`, and the requests the emulator served for it."""
    settings_ = ClientSettings(api_key=Secret(TEST_API_KEY), base_url=emulator.base_url)
    before = sum(emulator.stats()["requests"].values())

    async def run() -> Plan:
        async with Client(settings_) as client:
            return await make_plan(client, DesiredState(projects=(spec,)),
                                   limits=GuardLimits(), by_name=by_name)

    plan = asyncio.run(run())
    return plan, sum(emulator.stats()["requests"].values()) - before


def decisions(plan: Plan) -> list[Any]:
    """Everything a plan decides: operations, warnings and errors of each project."""
    return [(p.project_id, [op.to_dict() for op in p.operations], p.warnings, p.errors)
            for p in plan.projects]


def test_a_prune_off_project_of_many_pages_is_planned_from_a_few_lookups() -> None:
    with Emulator(api_key=TEST_API_KEY, page_size=10) as emulator:
        emulator.start()
        emulator.ensure_project(PROJECT)
        emulator.add_conversations(PROJECT, (f"c{i:05d}" for i in range(2_000)))
        emulator.add_conversation(PROJECT, "c00007", creator="teammate")
        spec = ProjectSpec(id=PROJECT, conversations=(
            ConversationSpec("c00001"), ConversationSpec("New", renamed_from=("c00002",)),
            ConversationSpec("Fresh", messages=("hi",)), ConversationSpec("c00003",
                                                                          messages=("hello",))))
        fast, requests = plan_with(emulator, spec, by_name=True)
        full, full_requests = plan_with(emulator, spec, by_name=False)
    assert decisions(fast) == decisions(full)
    assert fast.projects[0].live_read == "names" and full.projects[0].live_read == "listing"
    # user, page 1 of userFilter=me, the probe of the filter, 5 names, the newest page (for
    # the create), 1 transcript, the project's settings (a create that sends), the credits
    assert requests == 12 and fast.budget is not None and fast.budget.requests_made == 12
    # user, the 200 pages of userFilter=me (the teammate's conversation is not among them),
    # 1 transcript, the settings, the credits
    assert full_requests == 1 + 200 + 1 + 1 + 1
    assert [op.action.value for op in fast.operations] == ["rename", "create", "send", "send"]


@pytest.mark.parametrize("name_filter", ["exact", "prefix"])
def test_a_filter_that_does_not_match_substrings_makes_the_project_list_whole(
    name_filter: str
) -> None:
    with Emulator(api_key=TEST_API_KEY, page_size=2,
                  variants=Variants(name_filter=name_filter)) as emulator:
        emulator.start()
        emulator.ensure_project(PROJECT)
        emulator.add_conversations(PROJECT, [" Billing", *(f"c{i}" for i in range(20))])
        spec = ProjectSpec(id=PROJECT, conversations=(ConversationSpec("Billing"),))
        plan, requests = plan_with(emulator, spec, by_name=True)
    assert plan.projects[0].live_read == "listing"
    assert plan.operations == ()  # " Billing" is "Billing": found by the full listing
    # user, page 1 (userFilter=me), the probe, pages 2..11
    assert requests == 1 + 1 + 1 + 10


def test_a_name_without_a_run_every_stored_form_keeps_makes_the_project_list_whole() -> None:
    with Emulator(api_key=TEST_API_KEY, page_size=2) as emulator:
        emulator.start()
        emulator.ensure_project(PROJECT)
        emulator.add_conversations(PROJECT, ["\u212a", *(f"c{i}" for i in range(20))])
        spec = ProjectSpec(id=PROJECT, conversations=(ConversationSpec("K"),))
        plan, _ = plan_with(emulator, spec, by_name=True)
    assert plan.projects[0].live_read == "listing"
    assert plan.operations == ()  # the Kelvin sign is "K" in normal form


@pytest.fixture(scope="module")
def emulators() -> Iterator[dict[tuple[str, bool], Emulator]]:
    """One small-page emulator per name-filter variant, with and without trimmed names."""
    started = {}
    try:
        for name_filter in NAME_FILTERS:
            for trim in (False, True):
                emulator = Emulator(api_key=TEST_API_KEY, enable_admin=True, page_size=2,
                                    variants=Variants(name_filter=name_filter, trim_text=trim))
                emulator.start()
                started[name_filter, trim] = emulator
        yield started
    finally:
        for emulator in started.values():
            emulator.stop()


live_conversations = st.lists(
    st.tuples(st.sampled_from(POOL), st.sampled_from(["me", "teammate", "visitor"]),
              st.booleans()),
    min_size=24, max_size=48,
)


@st.composite
def declared(draw: st.DrawFn) -> ProjectSpec:
    names = draw(st.lists(st.sampled_from(POOL), unique=True, min_size=1, max_size=3))
    old_pool = [n for n in POOL if n not in names]
    used: set[str] = set()
    conversations = []
    for name in names:
        olds = [n for n in draw(st.lists(st.sampled_from(old_pool), unique=True, max_size=1))
                if n not in used]
        used.update(olds)
        messages = draw(st.sampled_from([(), ("hello",), ("hello", "again")]))
        conversations.append(ConversationSpec(name, renamed_from=tuple(olds), messages=messages))
    return ProjectSpec(id=PROJECT, scope=draw(st.sampled_from(list(Scope))),
                       duplicates=draw(st.sampled_from(list(DuplicatePolicy))),
                       conversations=tuple(conversations))


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(live=live_conversations, spec=declared(),
       variant=st.sampled_from([(f, t) for f in NAME_FILTERS for t in (False, True)]))
def test_looking_names_up_plans_exactly_what_a_full_listing_plans(
    emulators: dict[tuple[str, bool], Emulator], live: list[tuple[str, str, bool]],
    spec: ProjectSpec, variant: tuple[str, bool],
) -> None:
    emulator = emulators[variant]
    assert httpx.post(emulator.base_url + "/_emulator/reset").status_code == 200
    emulator.ensure_project(PROJECT)
    for name, creator, with_message in live:
        conversation = emulator.add_conversation(PROJECT, name, creator=creator)
        if with_message:
            emulator.add_message(PROJECT, conversation["session_id"], "hello")
    fast, _ = plan_with(emulator, spec, by_name=True)
    full, _ = plan_with(emulator, spec, by_name=False)
    assert decisions(fast) == decisions(full)
    LOOKED_UP.append(fast.projects[0].live_read == "names")


LOOKED_UP: list[bool] = []


def test_the_random_states_above_did_exercise_the_lookups() -> None:
    if not LOOKED_UP:
        pytest.skip("runs after the random-state test only")
    print(f"{sum(LOOKED_UP)} of {len(LOOKED_UP)} random states were planned by name")
    assert sum(LOOKED_UP) >= len(LOOKED_UP) // 4


def test_applying_to_a_project_planned_by_name_reads_no_whole_listing(tmp_path: Any) -> None:
    import io

    from reconciler.cli.main import main

    with Emulator(api_key=TEST_API_KEY, page_size=10) as emulator:
        emulator.start()
        emulator.ensure_project(PROJECT)
        emulator.add_conversations(PROJECT, (f"c{i:05d}" for i in range(2_000)))
        desired = tmp_path / "c.yaml"
        desired.write_text(f"version: 1\nprojects:\n  - id: {PROJECT}\n    conversations:\n"
                           "      - name: c00001\n      - name: Fresh\n"
                           "        messages: [hi]\n")
        env = {"CUSTOMGPT_API_KEY": TEST_API_KEY, "CUSTOMGPT_BASE_URL": emulator.base_url}
        out = io.StringIO()
        code = main(["apply", "-f", str(desired), "--auto-approve", "--no-backup"], env=env,
                    stdout=out, stderr=io.StringIO())
        assert code == 0, out.getvalue()
        requests = sum(emulator.stats()["requests"].values())
    # plan: user, page 1, the probe, 2 lookups, the newest page, the project's settings (a
    # create that sends), the credits; apply: the create, a lookup for another run's
    # duplicate, the send
    assert requests == 11


def test_a_saved_plan_made_by_name_is_checked_by_name(tmp_path: Any) -> None:
    import io

    from reconciler.cli.main import main

    with Emulator(api_key=TEST_API_KEY, page_size=10) as emulator:
        emulator.start()
        emulator.ensure_project(PROJECT)
        emulator.add_conversations(PROJECT, (f"c{i:05d}" for i in range(2_000)))
        desired = tmp_path / "c.yaml"
        desired.write_text(f"version: 1\nprojects:\n  - id: {PROJECT}\n    conversations:\n"
                           "      - name: Fresh\n      - name: Other\n"
                           "      - name: Renamed\n        renamed_from: [c00002]\n")
        env = {"CUSTOMGPT_API_KEY": TEST_API_KEY, "CUSTOMGPT_BASE_URL": emulator.base_url}
        saved = tmp_path / "plan.json"

        def run(*args: str) -> tuple[int, str]:
            out, err = io.StringIO(), io.StringIO()
            code = main(list(args), env=env, stdout=out, stderr=err)
            return code, out.getvalue() + err.getvalue()

        assert run("plan", "-f", str(desired), "--out", str(saved))[0] == 0
        emulator.add_conversation(PROJECT, " Other ")  # the same name, since the plan
        code, out = run("apply", "--plan", str(saved), "--auto-approve", "--no-backup")
        assert code == 1 and "a conversation named 'Other' now exists" in out
        assert run("plan", "-f", str(desired), "--out", str(saved))[0] == 0
        before = sum(emulator.stats()["requests"].values())
        code, out = run("apply", "--plan", str(saved), "--auto-approve", "--no-backup")
        assert code == 0, out
        requests = sum(emulator.stats()["requests"].values()) - before
        names = {c["name"] for c in emulator.conversations(PROJECT)}
    assert {"Fresh", "Renamed", " Other "} <= names and "c00002" not in names
    # the user, 2 lookups (Fresh; Renamed), the renamed one's transcript, the create, its
    # duplicate check, the rename: no page of the 2,000-conversation listing
    assert requests <= 10
