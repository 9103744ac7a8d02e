"""Matching declared conversations to live ones (DESIGN §3)."""

from __future__ import annotations

import itertools

import pytest

from reconciler.desired import ConversationSpec, DuplicatePolicy, ProjectSpec, Scope
from reconciler.live import Conversation
from reconciler.match import MatchedBy, in_scope, match_project

ME, TEAMMATE = "1", "2"
_ids = itertools.count(1)


def conv(name: str, *, by: str | None = ME, created_at: str = "2024-01-01 00:00:00",
         session: str | None = None) -> Conversation:
    n = next(_ids)
    return Conversation(id=n, session_id=session or f"s-{n}", name=name, project_id=1,
                        created_by=by, created_at=created_at, updated_at=created_at)


def project(*specs: ConversationSpec, **options: object) -> ProjectSpec:
    return ProjectSpec(id=1, conversations=specs, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("scope", "creator", "expected"),
    [
        (Scope.MINE, ME, True), (Scope.MINE, TEAMMATE, False), (Scope.MINE, None, False),
        (Scope.TEAM, ME, True), (Scope.TEAM, TEAMMATE, True), (Scope.TEAM, None, False),
        (Scope.ALL, None, True),
    ],
    ids=["mine-me", "mine-teammate", "mine-visitor", "team-me", "team-teammate",
         "team-visitor", "all-visitor"],
)
def test_scope_decides_ownership(scope: Scope, creator: str | None, expected: bool) -> None:
    assert in_scope(conv("x", by=creator), scope, ME) is expected


def test_exact_name_matches_and_the_rest_is_undeclared() -> None:
    faq, other = conv("FAQ"), conv("Other")
    result = match_project(project(ConversationSpec("FAQ")), [faq, other], user_id=ME)
    assert [(m.spec.name, m.live, m.matched_by) for m in result.matches] == [
        ("FAQ", faq, MatchedBy.NAME)]
    assert result.undeclared == [other]
    assert result.unmatched == []
    assert result.in_scope == 2


def test_out_of_scope_conversations_never_match() -> None:
    visitor, teammate = conv("FAQ", by=None), conv("FAQ", by=TEAMMATE)
    result = match_project(project(ConversationSpec("FAQ")), [visitor, teammate], user_id=ME)
    assert result.matches == []
    assert [c.name for c in result.unmatched] == ["FAQ"]
    assert result.undeclared == []
    assert result.in_scope == 0


def test_renamed_from_claims_the_old_name_in_order() -> None:
    old = conv("Billing v1")
    spec = ConversationSpec("Billing", renamed_from=("Billing v2", "Billing v1"))
    result = match_project(project(spec), [old], user_id=ME)
    assert [(m.live, m.matched_by) for m in result.matches] == [(old, MatchedBy.RENAMED_FROM)]


def test_exact_name_wins_over_renamed_from() -> None:
    new, old = conv("Billing"), conv("Billing v1")
    spec = ConversationSpec("Billing", renamed_from=("Billing v1",))
    result = match_project(project(spec), [old, new], user_id=ME)
    assert [m.live for m in result.matches] == [new]
    assert result.undeclared == [old]


def test_pin_is_found_outside_scope_and_claimed_first() -> None:
    pinned = conv("Visitor thread", by=None, session="pin-1")
    same_name = conv("Escalations")
    spec = ConversationSpec("Escalations", session_id="pin-1")
    result = match_project(project(spec), [pinned, same_name], user_id=ME)
    assert [(m.live, m.matched_by) for m in result.matches] == [(pinned, MatchedBy.PIN)]
    assert result.undeclared == [same_name]


def test_pin_found_by_lookup_outside_the_listing() -> None:
    pinned = conv("Elsewhere", by=None, session="pin-2")
    spec = ConversationSpec("Escalations", session_id="pin-2")
    result = match_project(project(spec), [], user_id=ME, pinned={"pin-2": pinned})
    assert [m.live for m in result.matches] == [pinned]


def test_missing_pin_is_an_error_not_a_create() -> None:
    spec = ConversationSpec("Escalations", session_id="gone")
    result = match_project(project(spec), [conv("Escalations")], user_id=ME)
    assert result.unmatched == []
    assert len(result.errors) == 1
    assert "pinned to session gone, which does not exist" in result.errors[0]


def test_duplicate_names_are_an_error_listing_the_sessions() -> None:
    a, b = conv("FAQ"), conv("FAQ")
    result = match_project(project(ConversationSpec("FAQ")), [a, b], user_id=ME)
    assert result.matches == [] and result.unmatched == []
    assert a.session_id in result.errors[0] and b.session_id in result.errors[0]
    assert "adopt-oldest" in result.errors[0]


def test_adopt_oldest_takes_the_oldest_by_created_at_then_id() -> None:
    newer = conv("FAQ", created_at="2024-05-01 00:00:00")
    oldest_b = conv("FAQ", created_at="2024-01-01 00:00:00")
    oldest_a_later_id = conv("FAQ", created_at="2024-01-01 00:00:00")
    result = match_project(
        project(ConversationSpec("FAQ"), duplicates=DuplicatePolicy.ADOPT_OLDEST),
        [newer, oldest_a_later_id, oldest_b], user_id=ME,
    )
    assert [m.live for m in result.matches] == [oldest_b]
    assert sorted(c.id for c in result.undeclared) == sorted([newer.id, oldest_a_later_id.id])
    assert result.errors == [] and len(result.notes) == 1


def test_ignored_names_are_neither_matched_nor_undeclared() -> None:
    tmp = conv("tmp-debug")
    result = match_project(project(ignore=("tmp-*",)), [tmp], user_id=ME)
    assert result.ignored == [tmp]
    assert result.undeclared == []


def test_each_live_conversation_is_claimed_once() -> None:
    only = conv("Billing")
    specs = (ConversationSpec("Billing"), ConversationSpec("Billing 2", renamed_from=("Billing",)))
    result = match_project(project(*specs), [only], user_id=ME)
    assert [m.spec.name for m in result.matches] == ["Billing"]
    assert [s.name for s in result.unmatched] == ["Billing 2"]
