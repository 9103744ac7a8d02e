"""Matching declared conversations to live ones."""

from __future__ import annotations

import itertools

import pytest

from reconciler.api.live import Conversation
from reconciler.api.protocol import listing_filter
from reconciler.desired.model import ConversationSpec, DuplicatePolicy, ProjectSpec, Scope
from reconciler.plan.match import MatchedBy, in_scope, match_project

ME, TEAMMATE = "1", "2"
_ids = itertools.count(1)


def conv(name: str, *, by: str | None = ME, created_at: str = "2024-01-01 00:00:00",
         session: str | None = None) -> Conversation:
    n = next(_ids)
    return Conversation(id=n, session_id=session or f"s-{n}", name=name, project_id=1,
                        created_by=by, created_at=created_at, updated_at=created_at)


def project(*specs: ConversationSpec, **options: object) -> ProjectSpec:
    """A project declaring `specs`; it owns every conversation in scope unless `owns` is given
    (the tests of ownership give it)."""
    settings = {"owns": ("*",), **options}
    return ProjectSpec(id=1, conversations=specs, **settings)  # type: ignore[arg-type]


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


def test_adopt_oldest_takes_the_smallest_id_whatever_the_times_say() -> None:
    # Times come in several formats ("25 Jun 2023 05:01:11" has no AM/PM): never compared.
    oldest = conv("FAQ", created_at="25 Jun 2023 05:01:11")
    newer = conv("FAQ", created_at="2023-06-25T03:00:00.000000Z")
    newest = conv("FAQ", created_at="2023-01-01 00:00:00")
    result = match_project(
        project(ConversationSpec("FAQ"), duplicates=DuplicatePolicy.ADOPT_OLDEST),
        [newest, newer, oldest], user_id=ME,
    )
    assert [m.live for m in result.matches] == [oldest]
    assert sorted(c.id for c in result.undeclared) == sorted([newer.id, newest.id])
    assert result.errors == [] and len(result.notes) == 1


@pytest.mark.parametrize("live_name", ["Caf\u0065\u0301", " Café", "Café\n"],
                         ids=["nfd", "leading-space", "trailing-newline"])
def test_names_match_in_normal_form(live_name: str) -> None:
    live = conv(live_name)
    result = match_project(project(ConversationSpec("Café")), [live], user_id=ME)
    assert [(m.live, m.matched_by) for m in result.matches] == [(live, MatchedBy.NAME)]
    assert result.undeclared == [] and result.unmatched == []


def test_names_equal_in_normal_form_are_one_name_for_ambiguity() -> None:
    first, second = conv("Caf\u00e9"), conv("Cafe\u0301 ")
    result = match_project(project(ConversationSpec("Café")), [first, second], user_id=ME)
    assert result.matches == [] and "2 live conversations" in result.errors[0]


def test_ignored_names_are_neither_matched_nor_undeclared() -> None:
    tmp = conv("tmp-debug")
    result = match_project(project(ignore=("tmp-*",)), [tmp], user_id=ME)
    assert result.ignored == [tmp]
    assert result.undeclared == []


def test_ignore_patterns_match_a_live_name_as_written_or_in_normal_form() -> None:
    decomposed, padded, kept = conv("Cafe\u0301 draft"), conv(" tmp x"), conv("Caf\u00e9 menu")
    result = match_project(project(ignore=("Cafe\u0301*", "tmp*")), [decomposed, padded, kept],
                           user_id=ME)
    assert result.ignored == [decomposed, padded]
    assert result.undeclared == [kept]


def test_an_ignored_conversation_hides_none_listed_after_it() -> None:
    tmp, faq, other = conv("tmp-debug"), conv("FAQ"), conv("Other")
    result = match_project(project(ConversationSpec("FAQ"), ignore=("tmp-*",)),
                           [tmp, faq, other], user_id=ME)
    assert result.ignored == [tmp]
    assert [m.live for m in result.matches] == [faq]
    assert result.undeclared == [other]


def test_each_live_conversation_is_claimed_once() -> None:
    only = conv("Billing")
    specs = (ConversationSpec("Billing"), ConversationSpec("Billing 2", renamed_from=("Billing",)))
    result = match_project(project(*specs), [only], user_id=ME)
    assert [m.spec.name for m in result.matches] == ["Billing"]
    assert [s.name for s in result.unmatched] == ["Billing 2"]


@pytest.mark.parametrize(
    ("scope", "expected"),
    [(Scope.MINE, "me"), (Scope.TEAM, "team_member"), (Scope.ALL, "all")],
    ids=["mine", "team", "all"],
)
def test_listing_asks_for_what_the_scope_may_manage_and_no_more(scope: Scope,
                                                                  expected: str) -> None:
    # "me" lists the key's user's conversations; "team_member" every conversation with a
    # creator; "all" adds the visitors'.
    assert listing_filter(scope) == expected
    for creator in (ME, TEAMMATE, None):
        listed = {"me": creator == ME, "team_member": creator is not None, "all": True}[expected]
        assert listed or not in_scope(conv("x", by=creator), scope, ME)


@pytest.mark.parametrize(
    ("scope", "creator"),
    [(Scope.TEAM, TEAMMATE), (Scope.ALL, None), (Scope.ALL, TEAMMATE)],
    ids=["team-teammate", "all-visitor", "all-teammate"],
)
def test_a_wider_scope_manages_others_conversations(scope: Scope, creator: str) -> None:
    theirs, stray = conv("FAQ", by=creator), conv("Stray", by=creator)
    result = match_project(project(ConversationSpec("FAQ"), scope=scope), [theirs, stray],
                           user_id=ME)
    assert [(m.spec.name, m.live) for m in result.matches] == [("FAQ", theirs)]
    assert result.undeclared == [stray]
    assert result.in_scope == 2


def test_a_pinned_conversation_in_scope_is_claimed_and_never_undeclared() -> None:
    pinned = conv("Escalations (old)", session="pin-3")
    spec = ConversationSpec("Escalations", session_id="pin-3")
    result = match_project(project(spec, ConversationSpec("Escalations (old)")), [pinned],
                           user_id=ME)
    assert [(m.spec, m.live, m.matched_by, m.matched_name) for m in result.matches] == [
        (spec, pinned, MatchedBy.PIN, "Escalations (old)")]
    assert result.undeclared == []
    assert [s.name for s in result.unmatched] == ["Escalations (old)"]


def test_every_missing_pin_is_reported_and_the_others_still_match() -> None:
    faq = conv("FAQ")
    specs = (ConversationSpec("A", session_id="gone-1"), ConversationSpec("B", session_id="gone-2"),
             ConversationSpec("FAQ"))
    result = match_project(project(*specs), [faq], user_id=ME)
    assert len(result.errors) == 2
    assert "'A' is pinned to session gone-1" in result.errors[0]
    assert "'B' is pinned to session gone-2" in result.errors[1]
    assert [m.live for m in result.matches] == [faq]


def test_a_declared_conversation_with_no_match_does_not_stop_the_others() -> None:
    faq, old = conv("FAQ"), conv("Old billing")
    specs = (ConversationSpec("New one"), ConversationSpec("FAQ"),
             ConversationSpec("Brand new", renamed_from=("Nowhere",)),
             ConversationSpec("Billing", renamed_from=("Old billing",)))
    result = match_project(project(*specs), [faq, old], user_id=ME)
    assert [(m.spec.name, m.live, m.matched_by, m.matched_name) for m in result.matches] == [
        ("FAQ", faq, MatchedBy.NAME, "FAQ"),
        ("Billing", old, MatchedBy.RENAMED_FROM, "Old billing"),
    ]
    assert [s.name for s in result.unmatched] == ["New one", "Brand new"]


def test_duplicate_error_names_the_duplicated_name_and_every_session_oldest_first() -> None:
    older = conv("Billing v1", created_at="2024-02-01 00:00:00", session="s-older")
    newer = conv("Billing v1", created_at="2024-03-01 00:00:00", session="s-newer")
    spec = ConversationSpec("Billing", renamed_from=("Billing v1",))
    result = match_project(project(spec), [newer, older], user_id=ME)
    assert result.errors == [
        "'Billing': 2 live conversations are named 'Billing v1' (s-older, s-newer); pin one "
        "with session_id, or set duplicates: adopt-oldest"
    ]
    assert result.matches == [] and result.notes == []


def test_adopt_oldest_applies_to_renamed_from_and_says_what_it_adopted() -> None:
    created = {month: conv("Billing v1", created_at=f"2024-0{month}-01 00:00:00",
                           session=f"s-{month}") for month in (1, 2, 3)}  # ids in this order
    dupes = [created[month] for month in (3, 1, 2)]
    spec = ConversationSpec("Billing", renamed_from=("Billing v1",))
    result = match_project(project(spec, duplicates=DuplicatePolicy.ADOPT_OLDEST), dupes,
                           user_id=ME)
    assert [(m.live.session_id, m.matched_by) for m in result.matches] == [
        ("s-1", MatchedBy.RENAMED_FROM)]
    assert result.notes == [
        "'Billing': 3 live conversations are named 'Billing v1'; adopted the oldest (s-1), "
        "the others are undeclared: s-2, s-3"
    ]
    assert {c.session_id for c in result.undeclared} == {"s-2", "s-3"}


def test_undeclared_conversations_come_by_name_then_oldest_first_whatever_the_listing_order(
) -> None:
    b_old, a_only, b_new, b_newest = conv("B"), conv("A"), conv("B"), conv("B")
    result = match_project(project(), [b_newest, b_old, a_only, b_new], user_id=ME)
    assert result.undeclared == [a_only, b_old, b_new, b_newest]


def test_undeclared_conversations_the_project_does_not_own_are_kept_apart() -> None:
    """A shared API key: production creates conversations as the key's user, in scope `mine`.
    Only the names `owns` covers are the project's."""
    qa, demo, production, other = conv("QA smoke"), conv("Demo 2"), conv("Hi there"), conv("QA")
    result = match_project(project(owns=("QA *", "Demo [0-9]")), [production, qa, other, demo],
                           user_id=ME)
    assert result.undeclared == [demo, qa]
    assert result.not_owned == [production, other]
    assert result.in_scope == 4


def test_without_owns_a_project_owns_no_undeclared_conversation() -> None:
    faq, stray, padded = conv("FAQ"), conv("Stray"), conv(" Stray ")
    result = match_project(project(ConversationSpec("FAQ"), owns=()), [faq, stray, padded],
                           user_id=ME)
    assert [m.live for m in result.matches] == [faq]  # declaring it is owning it
    assert result.undeclared == []
    assert result.not_owned == [padded, stray]


def test_declared_and_renamed_conversations_need_no_owns() -> None:
    faq, old, pinned = conv("FAQ"), conv("Billing"), conv("Anything", session="pin-9")
    specs = (ConversationSpec("FAQ"), ConversationSpec("Billing questions",
                                                       renamed_from=("Billing",)),
             ConversationSpec("Escalations", session_id="pin-9"))
    result = match_project(project(*specs, owns=()), [faq, old, pinned], user_id=ME)
    assert [(m.live, m.matched_by) for m in result.matches] == [
        (pinned, MatchedBy.PIN), (faq, MatchedBy.NAME), (old, MatchedBy.RENAMED_FROM)]
    assert result.undeclared == [] and result.not_owned == []


def test_extra_copies_of_a_declared_name_are_the_projects_even_without_owns() -> None:
    """adopt-oldest manages the oldest; the others carry a declared name (in normal form)."""
    oldest, copy, padded_copy, stray = conv("FAQ"), conv("FAQ"), conv("FAQ "), conv("Stray")
    result = match_project(
        project(ConversationSpec("FAQ"), owns=(), duplicates=DuplicatePolicy.ADOPT_OLDEST),
        [stray, padded_copy, copy, oldest], user_id=ME)
    assert [m.live for m in result.matches] == [oldest]
    assert sorted(c.id for c in result.undeclared) == [copy.id, padded_copy.id]
    assert result.not_owned == [stray]


def test_extra_copies_of_a_renamed_from_name_are_not_owned_without_owns() -> None:
    """An old name may be one production uses too ("New chat"): naming it in renamed_from
    claims one conversation, not every conversation called so."""
    oldest, copy = conv("New chat"), conv("New chat")
    spec = ConversationSpec("Onboarding", renamed_from=("New chat",))
    result = match_project(project(spec, owns=(), duplicates=DuplicatePolicy.ADOPT_OLDEST),
                           [copy, oldest], user_id=ME)
    assert [(m.live, m.matched_by) for m in result.matches] == [(oldest, MatchedBy.RENAMED_FROM)]
    assert result.undeclared == [] and result.not_owned == [copy]


def test_owns_patterns_match_a_live_name_as_written_or_in_normal_form() -> None:
    decomposed, padded, other = conv("Cafe\u0301 QA"), conv(" QA run "), conv("Caf\u00e9 menu")
    result = match_project(project(owns=("Cafe\u0301 *", "QA *")), [decomposed, padded, other],
                           user_id=ME)
    assert result.undeclared == [padded, decomposed]
    assert result.not_owned == [other]


def test_ignore_wins_over_owns_and_out_of_scope_is_never_owned() -> None:
    tmp, visitor, teammate = conv("tmp-1"), conv("QA visitor", by=None), conv("QA t", by=TEAMMATE)
    result = match_project(project(owns=("*",), ignore=("tmp-*",)), [tmp, visitor, teammate],
                           user_id=ME)
    assert result.ignored == [tmp]
    assert result.undeclared == [] and result.not_owned == []
