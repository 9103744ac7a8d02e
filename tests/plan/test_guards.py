"""The guards: one decision, in integers, for every path that applies a plan."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from reconciler.api.client import Client
from reconciler.api.settings import ClientSettings
from reconciler.apply.run import ApplyOptions, ApplyReport, apply_plan
from reconciler.desired.loader import load_desired
from reconciler.errors import PlanRefusedError
from reconciler.plan.guards import (
    GuardLimits,
    LiveCount,
    deletes_allowed,
    guard_errors,
    mass_delete_refusal,
    with_guards,
)
from reconciler.plan.make import make_plan
from reconciler.plan.model import Plan, ProjectPlan
from reconciler.plan.operations import Delete, Send
from tests.saved_plans import (
    PLAN_KEY,
    declare_conversations,
    prune_all,
    rewrite_plan,
    saved_plan,
    seed_prune,
)
from tests.workspace import PROJECT, Workspace


def _delete(n: int, project: int = 7) -> Delete:
    return Delete(project_id=project, name=f"stray {n}", reason="not declared and prune is on",
                  session_id=f"s-{n}", message_count=0)


def _send(n: int, project: int = 7) -> Send:
    return Send(project_id=project, name="Demo", reason="missing", session_id=None,
                prompt=f"p{n}", position=n + 1)


def project(owned: int, deletes: int, fraction: float = 0.3, *, ignored: int = 0,
            not_owned: int = 0, sends: int = 0, project_id: int = 7) -> ProjectPlan:
    operations = tuple(_send(n, project_id) for n in range(sends)) + tuple(
        _delete(n, project_id) for n in range(deletes))
    return ProjectPlan(project_id=project_id, label=None, scope="mine",
                       live_in_scope=owned + not_owned + ignored,
                       managed_in_scope=owned + not_owned, not_owned=not_owned,
                       max_delete_fraction=fraction, operations=operations)


def refused(plan_project: ProjectPlan, limits: GuardLimits | None = None) -> list[str]:
    plan_wide, by_project = guard_errors(Plan(projects=(plan_project,)), limits or GuardLimits())
    return plan_wide + by_project.get(plan_project.project_id, [])


@pytest.mark.parametrize(
    ("owned", "deletes", "fraction", "is_refused"),
    [
        (100, 29, 0.29, False),   # 0.29 * 100 is 28.999999999999996 in floating point
        (100, 30, 0.29, True),
        (100, 57, 0.57, False),   # 56.99999999999999
        (100, 58, 0.57, True),
        (10, 3, 0.3, False),
        (10, 4, 0.3, True),
        (11, 3, 0.3, False),      # 3.3 allows 3
        (11, 4, 0.3, True),
        (1000, 1, 0.001, False),
        (1000, 2, 0.001, True),
        (10, 9, 1.0, False),
        (10, 1, 0.01, True),      # 0.1 of a conversation allows none
        (9, 3, 0.3, True),        # a small project is guarded too: 2.7 allows 2
        (9, 2, 0.3, False),
        (4, 1, 0.3, False),       # 1.2 allows 1
        (3, 1, 0.3, True),        # 0.9 allows none
        (2, 1, 0.5, False),
        (10, 0, 0.01, False),
    ],
    ids=["29-of-100-at-0.29", "30-of-100-at-0.29", "57-of-100-at-0.57", "58-of-100-at-0.57",
         "3-of-10", "4-of-10", "3-of-11", "4-of-11", "1-of-1000-at-0.001", "2-of-1000-at-0.001",
         "all-but-one-at-1", "1-of-10-at-0.01", "3-of-9", "2-of-9", "1-of-4", "1-of-3",
         "1-of-2-at-0.5", "no-deletes"],
)
def test_the_share_of_deletes_is_compared_exactly_whatever_the_number_owned(
    owned: int, deletes: int, fraction: float, is_refused: bool
) -> None:
    errors = refused(project(owned, deletes, fraction))
    assert bool(errors) is is_refused
    if is_refused:
        assert f"deletes {deletes} of the {owned} conversations this repository owns" in errors[0]
        assert "--allow-mass-delete" in errors[0]
    assert refused(project(owned, deletes, fraction), GuardLimits(allow_mass_delete=True)) == []


@pytest.mark.parametrize(("owned", "fraction"), [(1, 1.0), (5, 1.0), (5, 0.3), (100, 1.0)],
                         ids=["1-at-1", "5-at-1", "5-at-0.3", "100-at-1"])
def test_deleting_every_conversation_owned_is_refused_whatever_the_threshold(
    owned: int, fraction: float
) -> None:
    """`conversations: []` with prune on: the plan deletes every conversation it owns."""
    assert refused(project(owned, owned, fraction)) == [
        f"mass-delete guard: the plan deletes every conversation this repository owns in scope "
        f"({owned} of {owned}); check the plan, then pass --allow-mass-delete"]
    assert refused(project(owned, owned, fraction), GuardLimits(allow_mass_delete=True)) == []


@pytest.mark.parametrize(
    ("deletes", "owned", "fraction", "expected"),
    [(0, 0, 0.3, None), (0, 5, 0.3, None), (1, 4, 0.3, None), (2, 4, 0.3, "2 of the 4"),
     (4, 4, 1.0, "every"), (5, 4, 1.0, "every"), (1, 0, 1.0, "every")],
    ids=["nothing-owned", "no-deletes", "within", "over", "all", "more-than-owned",
         "none-owned"],
)
def test_the_rule_alone_takes_its_numbers_as_given(
    deletes: int, owned: int, fraction: float, expected: str | None
) -> None:
    """The rule every path judges by, whatever counted its numbers."""
    refusal = mass_delete_refusal(deletes, owned, fraction)
    assert (refusal is None) is (expected is None)
    if expected is not None:
        assert refusal is not None and expected in refusal


@pytest.mark.parametrize(("fraction", "managed", "allowed"),
                         [(0.29, 100, 29), (0.3, 10, 3), (0.1, 30, 3), (1.0, 7, 7), (0.7, 10, 7),
                          (0.3, 11, 3), (1, 7, 7)],
                         ids=["0.29-of-100", "0.3-of-10", "0.1-of-30", "all-of-7", "0.7-of-10",
                              "0.3-of-11", "integer-1-of-7"])
def test_deletes_allowed_rounds_the_exact_share_down(
    fraction: float, managed: int, allowed: int
) -> None:
    assert deletes_allowed(fraction, managed) == allowed


def test_ignored_conversations_do_not_lower_the_share() -> None:
    """100 ignored `tmp-*` conversations next to 10 owned ones: deleting all 10 is 100 %."""
    errors = refused(project(10, 10, ignored=100))
    assert errors and "(10 of 10)" in errors[0]
    assert refused(project(10, 4, ignored=100))  # 4 of 10, not of 110
    assert refused(project(10, 3, ignored=100)) == []


def test_conversations_the_repository_does_not_own_do_not_lower_the_share() -> None:
    """Production made 90 conversations with the key: a prune of 4 of the 10 the repository
    owns is 40 %, not 4 of 100."""
    (error,) = refused(project(10, 4, not_owned=90))
    assert "deletes 4 of the 10 conversations this repository owns" in error
    assert refused(project(10, 3, not_owned=90)) == []
    (every,) = refused(project(3, 3, 1.0, not_owned=90))
    assert "every conversation this repository owns in scope (3 of 3)" in every


def test_a_plan_made_before_ownership_was_recorded_counts_every_managed_one_as_owned() -> None:
    saved = project(10, 4).to_dict()
    del saved["not_owned"]
    (error,) = refused(ProjectPlan.from_dict(saved))
    assert "deletes 4 of the 10 conversations this repository owns" in error


@pytest.mark.parametrize(
    ("deletes", "limit", "is_refused"),
    [(3, 3, False), (4, 3, True), (0, 0, False), (1, 0, True)],
    ids=["at", "over", "zero-at", "zero-over"],
)
def test_max_deletes_counts_every_project(deletes: int, limit: int, is_refused: bool) -> None:
    """Deletes of two projects add up; each project alone is small enough for its share."""
    first = project(5, deletes - deletes // 2, project_id=7)
    second = project(5, deletes // 2, project_id=8)
    plan_wide, _ = guard_errors(Plan(projects=(first, second)), GuardLimits(max_deletes=limit))
    assert bool(plan_wide) is is_refused
    if is_refused:
        assert f"deletes {deletes} conversations, more than --max-deletes {limit}" in plan_wide[0]
    lifted, _ = guard_errors(Plan(projects=(first, second)),
                             GuardLimits(max_deletes=limit, allow_mass_delete=True))
    assert lifted == []


@pytest.mark.parametrize(("sends", "limit", "is_refused"),
                         [(2, 2, False), (3, 2, True), (1, 0, True)], ids=["at", "over", "zero"])
def test_max_sends_is_not_lifted_by_allow_mass_delete(
    sends: int, limit: int, is_refused: bool
) -> None:
    for allow in (False, True):
        errors = refused(project(1, 0, sends=sends),
                         GuardLimits(max_sends=limit, allow_mass_delete=allow))
        assert bool(errors) is is_refused
        if is_refused:
            assert f"sends {sends} prompts, more than --max-sends {limit}" in errors[0]


def test_with_guards_adds_errors_once_and_keeps_a_clean_plan_as_is() -> None:
    clean = Plan(projects=(project(10, 3),))
    assert with_guards(clean, GuardLimits()) is clean
    guarded = with_guards(Plan(projects=(project(10, 4),)), GuardLimits(max_deletes=1))
    assert len(guarded.all_errors) == 2
    again = with_guards(guarded, GuardLimits(max_deletes=1))
    assert again.all_errors == guarded.all_errors
    assert guarded.checksum != Plan(projects=(project(10, 4),)).checksum


def test_the_guards_messages_say_what_was_refused_and_how_to_proceed() -> None:
    (share,) = refused(project(11, 4))
    assert share == (
        "mass-delete guard: the plan deletes 4 of the 11 conversations this repository owns in "
        "scope, more than max_delete_fraction 0.3 allows (3); check the plan, then pass "
        "--allow-mass-delete (or raise max_delete_fraction for this project)"
    )
    (sends,) = refused(project(1, 0, sends=3), GuardLimits(max_sends=2))
    assert sends == ("the plan sends 3 prompts, more than --max-sends 2 (each costs a query "
                     "credit); raise --max-sends to proceed")


def test_with_guards_adds_a_plan_wide_error_when_no_project_is_refused() -> None:
    guarded = with_guards(Plan(projects=(project(1, 0, sends=3),)), GuardLimits(max_sends=2))
    assert guarded.errors == ("the plan sends 3 prompts, more than --max-sends 2 (each costs a "
                              "query credit); raise --max-sends to proceed",)


def test_a_saved_plan_refused_by_the_guards_no_longer_carries_its_reviewed_checksum() -> None:
    saved = Plan.from_dict(Plan(projects=(project(10, 4),)).to_dict())
    guarded = with_guards(saved, GuardLimits())
    assert guarded.all_errors
    assert guarded.checksum != saved.checksum
    assert guarded.to_dict()["checksum"] == guarded.checksum


@pytest.mark.parametrize(
    ("plan_project", "why"),
    [
        (project(12, 12, float("nan")), "max_delete_fraction nan is not greater than 0"),
        (project(12, 12, 0.0), "max_delete_fraction 0.0 is not greater than 0"),
        (project(12, 12, 1.5), "max_delete_fraction 1.5 is not greater than 0"),
        (project(5, 12), "it deletes 12 conversations of the 5 it owns"),
        (project(5, 6, not_owned=7), "it deletes 6 conversations of the 5 it owns among the 12"),
        (replace(project(12, 1), live_in_scope=3), "among the 12 it manages and 3 in scope"),
        (replace(project(12, 1), not_owned=13), "of the -1 it owns among the 12 it manages"),
        (replace(project(12, 0), not_owned=-1), "of the 13 it owns among the 12 it manages"),
    ],
    ids=["nan", "zero", "above-one", "more-deletes-than-owned", "not-owned-are-not-owned",
         "more-managed-than-live", "more-not-owned-than-managed", "negative-not-owned"],
)
def test_numbers_a_plan_cannot_have_are_refused_even_with_allow_mass_delete(
    plan_project: ProjectPlan, why: str
) -> None:
    """A hand-edited plan must not slip past the guard by claiming a small project."""
    for limits in (GuardLimits(), GuardLimits(allow_mass_delete=True)):
        (error,) = refused(plan_project, limits)
        assert why in error
        assert error.startswith("the guard cannot judge this plan: ")
        assert error.endswith("; reconciler never makes such a plan: make a new one")


@pytest.mark.parametrize(("sends", "credits", "is_refused"), [(3, 3, False), (4, 3, True)],
                         ids=["as-many-as-left", "more-than-left"])
def test_sends_must_fit_in_the_query_credits_left(sends: int, credits: int,
                                                  is_refused: bool) -> None:
    errors = refused(project(1, 0, sends=sends), GuardLimits(credits_left=credits))
    expected = [f"the plan sends {sends} prompts but the account has {credits} query credit(s) "
                "left: nothing is applied, so that sends do not stop half-way; wait for the "
                "credits to renew, or declare fewer messages"]
    assert errors == (expected if is_refused else [])


def _live(managed: int, *, outside: int = 0) -> dict[int, LiveCount]:
    """Project 7 counted live: `managed` sessions s-0.. in scope and managed, and `outside`
    more in scope that it does not manage (ignored)."""
    sessions = frozenset(f"s-{n}" for n in range(managed))
    return {7: LiveCount(in_scope=managed + outside, managed=sessions)}


@pytest.mark.parametrize(
    ("claimed", "live", "judged"),
    [(100, 10, 10), (10, 100, 10), (9, 10, 9), (10, 9, 9), (100, 100, 100)],
    ids=["claims-more", "claims-fewer", "claims-fewer-than-live", "live-has-fewer", "both-many"],
)
def test_a_saved_plan_may_claim_to_own_no_more_than_live_state_manages(
    claimed: int, live: int, judged: int
) -> None:
    """4 deletes, judged among the fewer of what the plan claims to own and what live state
    says it manages: refused among 10 or 9, allowed among 100."""
    errors = refused(project(claimed, 4), GuardLimits(live=_live(live)))
    if judged == 100:
        assert errors == []
    else:
        (error,) = errors
        assert f"deletes 4 of the {judged} conversations this repository owns in scope" in error


def test_deletes_outside_what_live_state_says_is_managed_are_refused_whatever_the_flags(
) -> None:
    """s-3 is no longer (or never was) among the managed: in scope but ignored, out of scope."""
    for limits in (GuardLimits(live=_live(3, outside=5)),
                   GuardLimits(live=_live(3), allow_mass_delete=True)):
        (error,) = refused(project(50, 4), limits)
        assert error == ("the guard cannot judge this plan: it deletes 1 conversation(s) that "
                         "are not among the 3 it manages in scope now (s-3); reconciler never "
                         "makes such a plan: make a new one")
    (many,) = refused(project(50, 6), GuardLimits(live=_live(1)))
    assert "5 conversation(s) that are not among the 1 it manages in scope now (s-1, s-2, " \
           "s-3 and 2 more)" in many
    (three,) = refused(project(50, 3), GuardLimits(live={}))
    assert "(s-0, s-1, s-2);" in three
    (absent,) = refused(project(50, 1), GuardLimits(live={}))
    assert "not among the 0 it manages" in absent


@pytest.mark.parametrize(
    ("fraction", "cap", "deletes", "threshold"),
    [(0.5, 0.3, 4, "max_delete_fraction 0.3 (the default: the saved plan's own 0.5 counts "
                   "only in a signed plan) allows (3)"),
     (0.29, 0.3, 3, "max_delete_fraction 0.29 allows (2)"),
     (0.3, 0.3, 4, "max_delete_fraction 0.3 allows (3)"),
     (0.5, None, 6, "max_delete_fraction 0.5 allows (5)")],
    ids=["capped", "stricter-than-the-cap", "at-the-cap", "no-cap"],
)
def test_a_threshold_above_the_cap_is_lowered_to_it(
    fraction: float, cap: float | None, deletes: int, threshold: str
) -> None:
    limits = GuardLimits(live=_live(10), max_delete_fraction=cap)
    (error,) = refused(project(10, deletes, fraction), limits)
    assert f"more than {threshold}; check the plan" in error
    assert error.endswith("pass --allow-mass-delete" if "the default" in threshold else
                          "pass --allow-mass-delete (or raise max_delete_fraction for this "
                          "project)")
    assert refused(project(10, deletes - 1, fraction), limits) == []


@pytest.mark.parametrize(
    ("live", "deletes", "flags", "refused"),
    [
        (10, 3, (), False),
        (10, 4, (), True),
        (10, 4, ("--allow-mass-delete",), False),
        (5, 1, (), False),
        (5, 2, (), True),
        (5, 5, (), True),
        (1, 1, (), True),
        (1, 1, ("--allow-mass-delete",), False),
        (10, 3, ("--max-deletes", "3"), False),
        (10, 3, ("--max-deletes", "2"), True),
    ],
    ids=["at-30pc", "over-30pc", "allowed", "small-project-at-30pc", "small-project-over-30pc",
         "small-project-all", "the-only-one", "the-only-one-allowed", "at-max-deletes",
         "over-max-deletes"],
)
def test_mass_delete_guard_trips_above_the_threshold_only(
    ws: Workspace, live: int, deletes: int, flags: tuple[str, ...], refused: bool
) -> None:
    keep = [f"keep {i}" for i in range(live - deletes)]
    seed_prune(ws, keep=len(keep), strays=deletes)
    result = ws.apply(*flags)
    assert result.code == (1 if refused else 0), result.out + result.err
    if refused:
        assert "mass-delete guard" in result.out
        assert "--allow-mass-delete" in result.out
        assert len(ws.names()) == live
    else:
        assert ws.names() == sorted(keep)


def test_max_delete_fraction_in_yaml_sets_the_threshold(ws: Workspace) -> None:
    seed_prune(ws, keep=1, strays=9)
    assert ws.apply().code == 1  # 9 of the 10 it owns
    ws.file.write_text(ws.file.read_text().replace("owns:", "max_delete_fraction: 0.9\n    owns:"))
    assert ws.apply().code == 0
    assert ws.names() == ["keep 0"]


def test_protect_holds_after_the_entry_is_removed(ws: Workspace) -> None:
    ws.declare(f"""
        version: 1
        projects:
          - id: {PROJECT}
            prune: true
            protect: ["Legal *"]
            conversations: [{{name: Legal hold}}]
    """)
    assert ws.apply().code == 0
    prune_all(ws, extra='protect: ["Legal *"]')
    assert ws.apply().code == 0
    assert ws.names() == ["Legal hold"]


@pytest.mark.parametrize(
    ("plan_flags", "apply_flags"),
    [
        ((), ("--max-deletes", "1")),
        (("--allow-mass-delete",), ()),
        (("--allow-mass-delete",), ("--max-deletes", "1")),
    ],
    ids=["max-deletes", "mass-delete-allowed-only-when-planned", "max-deletes-after-allowed"],
)
def test_a_saved_plan_is_held_to_the_guards_of_the_apply(
    ws: Workspace, plan_flags: tuple[str, ...], apply_flags: tuple[str, ...]
) -> None:
    strays = 4 if plan_flags else 2
    seed_prune(ws, keep=6, strays=strays)
    saved = ws.path / "plan.json"
    assert ws.plan("--out", str(saved), *plan_flags).code == 0
    result = ws.run("apply", "--plan", str(saved), "--auto-approve", *apply_flags)
    assert result.code == 1, result.out + result.err
    assert "mass-delete guard" in result.out
    assert len(ws.names()) == 6 + strays


def test_a_saved_plan_is_held_to_max_sends(ws: Workspace) -> None:
    declare_conversations(ws, "[{name: Demo, messages: [one, two]}]")
    saved = saved_plan(ws)
    result = ws.run("apply", "--plan", str(saved), "--auto-approve", "--max-sends", "1")
    assert result.code == 1
    assert "the plan sends 2 prompts, more than --max-sends 1" in result.out
    assert ws.names() == []
    at_limit = ws.run("apply", "--plan", str(saved), "--auto-approve", "--max-sends", "2")
    assert at_limit.code == 0, at_limit.err
    assert ws.names() == ["Demo"]


def test_a_mass_delete_reviewed_and_applied_with_the_flag_goes_through(ws: Workspace) -> None:
    seed_prune(ws, keep=6, strays=4)
    saved = ws.path / "plan.json"
    assert ws.plan("--out", str(saved), "--allow-mass-delete").code == 0
    result = ws.run("apply", "--plan", str(saved), "--auto-approve", "--allow-mass-delete",
                    "--backup-dir", str(ws.path / "backups"))
    assert result.code == 0, result.out + result.err
    assert ws.names() == [f"keep {i}" for i in range(6)]


def test_a_plan_refused_by_a_guard_when_made_stays_refused(ws: Workspace) -> None:
    seed_prune(ws, keep=6, strays=4)
    saved = ws.path / "plan.json"
    assert ws.plan("--out", str(saved)).code == 1
    result = ws.run("apply", "--plan", str(saved), "--auto-approve", "--allow-mass-delete")
    assert result.code == 1
    assert "mass-delete guard" in result.out
    assert len(ws.names()) == 10


@pytest.mark.parametrize(("strays", "refused"), [(29, False), (30, True)], ids=["29", "30"])
def test_max_delete_fraction_is_exact(ws: Workspace, strays: int, refused: bool) -> None:
    ws.emulator.add_conversations(PROJECT, (f"stray {i}" for i in range(strays)))
    seed_prune(ws, keep=100 - strays, strays=0, extra="max_delete_fraction: 0.29")
    for path in ("-f", "--plan"):
        if path == "-f":
            result = ws.apply("--dry-run")
        else:
            saved = ws.path / "plan.json"
            ws.plan("--out", str(saved))
            result = ws.run("apply", "--plan", str(saved), "--auto-approve", "--dry-run")
        assert result.code == (1 if refused else 0), (path, result.out + result.err)
        assert ("mass-delete guard" in result.out) is refused


def _claim(**numbers: object) -> Callable[[dict[str, Any]], object]:
    return lambda document: document["projects"][0].update(numbers)


@pytest.mark.parametrize(
    "edit",
    [_claim(live_in_scope=100, managed_in_scope=100),
     _claim(max_delete_fraction=1.0),
     _claim(live_in_scope=100, managed_in_scope=100, max_delete_fraction=1.0),
     _claim(live_in_scope=9, managed_in_scope=9)],
    ids=["counts", "threshold", "counts-and-threshold", "too-few-to-guard"],
)
def test_an_edited_plan_cannot_talk_the_guard_into_a_mass_delete(
    ws: Workspace, edit: Callable[[dict[str, Any]], object]
) -> None:
    """A plan that deletes 8 of 10, reviewed with --allow-mass-delete, edited to claim numbers
    the guard would let through: `apply --plan` counts live state and keeps the default."""
    seed_prune(ws, keep=2, strays=8)
    saved = ws.path / "plan.json"
    assert ws.plan("--out", str(saved), "--allow-mass-delete").code == 0
    rewrite_plan(saved, edit)
    result = ws.run("apply", "--plan", str(saved), "--auto-approve",
                    "--backup-dir", str(ws.path / "backups"))
    assert result.code == 1, result.out + result.err
    assert "mass-delete guard: the plan deletes 8 of the " in result.out
    assert " conversations this repository owns in scope, more than max_delete_fraction 0.3" \
        in result.out
    assert len(ws.names()) == 10
    assert "DELETE" not in ws.emulator.stats()["requests"]
    allowed = ws.run("apply", "--plan", str(saved), "--auto-approve", "--allow-mass-delete",
                     "--backup-dir", str(ws.path / "backups"))
    assert allowed.code == 0, allowed.out + allowed.err
    assert ws.names() == ["keep 0", "keep 1"]


def test_an_edited_plan_cannot_delete_what_it_does_not_manage(ws: Workspace) -> None:
    """A delete of a visitor's conversation (out of scope) added to a saved plan whose own
    deletes are few: refused whole, whatever the flags."""
    seed_prune(ws, keep=9, strays=1)
    theirs = ws.seed("Visitor's thread", creator="visitor")
    saved = ws.path / "plan.json"
    assert ws.plan("--out", str(saved)).code == 0

    def add_theirs(document: dict[str, Any]) -> None:
        operations = document["projects"][0]["operations"]
        stolen = json.loads(json.dumps(operations[-1]))
        stolen.update(session_id=theirs, name="Visitor's thread",
                      key=f"{PROJECT}/delete/{theirs}")
        stolen["precondition"].update(session_id=theirs, name="Visitor's thread")
        operations.append(stolen)

    rewrite_plan(saved, add_theirs)
    result = ws.run("apply", "--plan", str(saved), "--auto-approve", "--allow-mass-delete",
                    "--backup-dir", str(ws.path / "backups"))
    assert result.code == 1, result.out + result.err
    assert f"the guard cannot judge this plan: it deletes 1 conversation(s) that are not among " \
           f"the 10 it manages in scope now ({theirs})" in result.out
    assert len(ws.names()) == 11


def test_a_saved_plan_keeps_its_own_threshold_only_when_signed(ws: Workspace) -> None:
    """max_delete_fraction 0.5 in the declared state: a signed plan deleting 4 of 10 applies;
    the same plan unsigned is held to the default 0.3, and says so."""
    seed_prune(ws, keep=6, strays=4, extra="max_delete_fraction: 0.5")
    saved = ws.path / "plan.json"
    assert ws.plan("--out", str(saved)).code == 0
    unsigned = ws.run("apply", "--plan", str(saved), "--auto-approve",
                      "--backup-dir", str(ws.path / "backups"))
    assert unsigned.code == 1
    assert ("more than max_delete_fraction 0.3 (the default: the saved plan's own 0.5 counts "
            "only in a signed plan) allows (3)") in unsigned.out
    assert len(ws.names()) == 10
    ws.env["RECONCILER_PLAN_KEY"] = PLAN_KEY
    assert ws.plan("--out", str(saved)).code == 0
    signed = ws.run("apply", "--plan", str(saved), "--auto-approve",
                    "--backup-dir", str(ws.path / "backups"))
    assert signed.code == 0, signed.out + signed.err
    assert len(ws.names()) == 6


def test_ignored_conversations_do_not_let_prune_delete_everything_managed(ws: Workspace) -> None:
    ws.emulator.add_conversations(PROJECT, (f"tmp-{i}" for i in range(100)))
    for i in range(10):
        ws.seed(f"managed {i}")
    prune_all(ws, extra='ignore: ["tmp-*"]')
    result = ws.apply()
    assert result.code == 1
    assert "deletes every conversation this repository owns in scope (10 of 10)" in result.out
    assert len(ws.names()) == 110


def test_the_library_apply_refuses_what_the_guards_refuse(ws: Workspace) -> None:
    """A program that plans with --allow-mass-delete and applies without it gets nothing done."""
    seed_prune(ws, keep=6, strays=4)

    async def plan_then_apply() -> None:
        settings = ClientSettings.from_environment(ws.env)
        async with Client(settings) as client:
            desired = load_desired([str(ws.file)], env=ws.env)
            plan = await make_plan(client, desired, limits=GuardLimits(allow_mass_delete=True))
            assert plan.all_errors == () and plan.summary()["delete"] == 4
            with pytest.raises(PlanRefusedError, match="mass-delete guard: the plan deletes 4"):
                await apply_plan(client, plan, options=ApplyOptions(backup_dir=ws.path),
                                 report=ApplyReport(plan_checksum=plan.checksum))

    asyncio.run(plan_then_apply())
    assert len(ws.names()) == 10
