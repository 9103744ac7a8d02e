"""Building a project's plan from its matching."""

from __future__ import annotations

import itertools

import pytest

from reconciler.api.live import Conversation, Message
from reconciler.api.send_identity import external_id_carrying, send_external_id
from reconciler.desired.model import (
    ConversationSpec,
    DuplicatePolicy,
    MessageSpec,
    ProjectSpec,
    Reaction,
    Scope,
)
from reconciler.plan.build import build_project_plan, deletion_candidates
from reconciler.plan.match import match_project
from reconciler.plan.model import ProjectPlan, Unmanaged
from reconciler.plan.operations import Action, Operation

ME = "1"
ALL = ("*",)  # owns every conversation in scope
_ids = itertools.count(1)


def conv(name: str, *, by: str | None = ME, session: str | None = None) -> Conversation:
    n = next(_ids)
    return Conversation(id=n, session_id=session or f"s-{n}", name=name, project_id=7,
                        created_by=by, created_at="2024-01-01 00:00:00",
                        updated_at="2024-01-01 00:00:00")


def precondition_of(op: Operation) -> dict[str, object]:
    """What the operation's precondition records, as its plan holds it (without its words)."""
    return {k: v for k, v in op.to_dict()["precondition"].items() if k != "description"}


def held(*prompts: str | Message) -> tuple[Message, ...]:
    """A transcript's messages: each prompt a message of its own, with no reaction."""
    return tuple(p if isinstance(p, Message) else
                 Message(id=100 + n, user_query=p, openai_response="answer",
                         created_at="2024-01-01 00:00:00", reaction_shown=True)
                 for n, p in enumerate(prompts, start=1))


def plan_for(spec: ProjectSpec, live: list[Conversation],
             transcripts: dict[str, tuple[str | Message, ...]] | None = None) -> ProjectPlan:
    matching = match_project(spec, live, user_id=ME)
    return build_project_plan(spec, matching, {session: held(*prompts) for session, prompts
                                               in (transcripts or {}).items()})


def test_operations_come_renames_creates_sends_deletes() -> None:
    old, stray = conv("Old"), conv("Stray")
    spec = ProjectSpec(id=7, prune=True, owns=ALL, conversations=(
        ConversationSpec("Fresh", messages=("hi",)),
        ConversationSpec("New", renamed_from=("Old",)),
    ))
    plan = plan_for(spec, [old, stray])
    assert [(op.action, op.name) for op in plan.operations] == [
        (Action.RENAME, "New"), (Action.CREATE, "Fresh"), (Action.SEND, "Fresh"),
        (Action.DELETE, "Stray"),
    ]
    assert [op.key for op in plan.operations] == [  # every operation is the project's
        f"7/rename/{old.session_id}", "7/create/Fresh", "7/send/Fresh#1",
        f"7/delete/{stray.session_id}",
    ]
    rename = plan.operations[0]
    assert (rename.old_name, rename.session_id) == ("Old", old.session_id)
    assert precondition_of(rename)["name"] == "Old"


def test_without_prune_undeclared_is_left_alone() -> None:
    plan = plan_for(ProjectSpec(id=7), [conv("Stray")])
    assert plan.operations == ()
    assert [(u.name, u.why) for u in plan.unmanaged] == [("Stray", "not declared, prune is off")]


def test_protect_holds_under_prune() -> None:
    plan = plan_for(ProjectSpec(id=7, prune=True, owns=ALL, protect=("Legal *",)),
                    [conv("Legal hold")])
    assert plan.operations == ()
    assert [u.why for u in plan.unmanaged] == ["protected"]


def test_sends_only_prompts_missing_from_the_transcript_in_order() -> None:
    demo = conv("Demo")
    spec = ProjectSpec(id=7, conversations=(
        ConversationSpec("Demo", messages=("one", "two", "one", "three")),))
    plan = plan_for(spec, [demo], {demo.session_id: ("one", "typed by a person", "three")})
    sends = [(op.position, op.prompt) for op in plan.operations]
    assert sends == [(2, "two"), (3, "one")]
    assert all(op.session_id == demo.session_id for op in plan.operations)


def test_delete_records_message_count_precondition() -> None:
    stray = conv("Stray")
    plan = plan_for(ProjectSpec(id=7, prune=True, owns=ALL), [stray],
                    {stray.session_id: ("a", "b")})
    (delete,) = plan.operations
    assert precondition_of(delete)["message_count"] == 2
    assert precondition_of(delete)["name"] == "Stray"


def test_create_and_delete_together_get_the_rename_hint() -> None:
    spec = ProjectSpec(id=7, prune=True, owns=ALL,
                       conversations=(ConversationSpec("Billing questions"),))
    plan = plan_for(spec, [conv("Billing")])
    assert any("renamed_from" in w for w in plan.warnings)


def test_matching_errors_leave_no_operations() -> None:
    spec = ProjectSpec(id=7, conversations=(ConversationSpec("FAQ"), ConversationSpec("New")))
    plan = plan_for(spec, [conv("FAQ"), conv("FAQ")])
    assert plan.operations == ()
    assert len(plan.errors) == 1


def test_the_guard_counts_only_managed_conversations() -> None:
    """Ignored conversations are in scope but never managed: they do not dilute the share."""
    live = [conv(f"tmp-{i}") for i in range(100)] + [conv(f"managed {i}") for i in range(10)]
    plan = plan_for(ProjectSpec(id=7, prune=True, owns=ALL, ignore=("tmp-*",)), live)
    assert (plan.live_in_scope, plan.managed_in_scope) == (110, 10)
    assert sum(op.action is Action.DELETE for op in plan.operations) == 10


@pytest.mark.parametrize(("declared", "recorded"), [(None, 0.3), (0.29, 0.29), (1.0, 1.0)],
                         ids=["default", "declared", "all"])
def test_the_plan_records_the_projects_delete_threshold(
    declared: float | None, recorded: float
) -> None:
    plan = plan_for(ProjectSpec(id=7, prune=True, owns=ALL, max_delete_fraction=declared),
                    [conv("x")])
    assert plan.max_delete_fraction == recorded


def test_the_plan_names_the_project_its_scope_and_what_is_live_in_scope() -> None:
    spec = ProjectSpec(id=7, label="support-bot", scope=Scope.TEAM)
    plan = plan_for(spec, [conv("A"), conv("B", by="2"), conv("Visitor's", by=None)])
    assert (plan.project_id, plan.label, plan.scope, plan.live_in_scope) == (
        7, "support-bot", "team", 2)
    assert plan.display_name == "support-bot (7)"


def test_an_unchanged_conversation_does_not_hide_the_renames_after_it() -> None:
    faq, old = conv("FAQ"), conv("Billing")
    spec = ProjectSpec(id=7, conversations=(
        ConversationSpec("FAQ"), ConversationSpec("Billing questions", renamed_from=("Billing",)),
    ))
    plan = plan_for(spec, [faq, old])
    (rename,) = plan.operations
    assert (rename.action, rename.name, rename.old_name) == (
        Action.RENAME, "Billing questions", "Billing")
    assert rename.reason == "declared with renamed_from 'Billing'"
    assert precondition_of(rename) == {"name": "Billing", "session_id": old.session_id}


def test_a_pinned_conversation_is_renamed_to_its_declared_name() -> None:
    pinned = conv("Whatever it is called now", session="pin-1")
    spec = ProjectSpec(id=7, conversations=(
        ConversationSpec("Escalations", session_id="pin-1"),))
    (rename,) = plan_for(spec, [pinned]).operations
    assert (rename.action, rename.session_id, rename.old_name) == (
        Action.RENAME, "pin-1", "Whatever it is called now")
    assert rename.reason == ("pinned session is named 'Whatever it is called now', "
                             "declared 'Escalations'")
    assert precondition_of(rename) == {"name": "Whatever it is called now",
                                       "session_id": "pin-1"}


def test_a_create_says_why_and_requires_the_name_to_be_free() -> None:
    spec = ProjectSpec(id=7, scope=Scope.TEAM, conversations=(ConversationSpec("Onboarding"),))
    (create,) = plan_for(spec, []).operations
    assert create.reason == "declared; no conversation named 'Onboarding' in scope team"
    assert precondition_of(create) == {"name": "Onboarding"}
    assert create.session_id is None


def test_sends_carry_the_persona_response_source_and_language() -> None:
    demo = conv("Demo")
    spec = ProjectSpec(id=7, lang="de", conversations=(
        ConversationSpec("Demo", messages=("hallo",), persona="You are calm.",
                         response_source="own_content"),
        ConversationSpec("New", messages=("neu",), persona="You are new.",
                         response_source="openai_content"),
    ))
    existing, new = (op for op in plan_for(spec, [demo]).operations if op.action is Action.SEND)
    assert (existing.persona, existing.response_source, existing.lang) == (
        "You are calm.", "own_content", "de")
    assert (new.persona, new.response_source, new.lang) == (
        "You are new.", "openai_content", "de")


def test_sends_carry_the_send_options_declared() -> None:
    spec = ProjectSpec(id=7, conversations=(ConversationSpec(
        "New", messages=("hi",), custom_context="A premium customer.",
        agent_capability="advanced-reasoning", chatbot_model="claude-3.5-sonnet"),))
    (_create, send) = plan_for(spec, []).operations
    assert send.values() == {"custom_context": "A premium customer.",
                             "agent_capability": "advanced-reasoning",
                             "chatbot_model": "claude-3.5-sonnet"}


def reacted(prompt: str, reaction: Reaction | None, *, shown: bool = True, id: int = 1,
            external_id: str | None = None) -> Message:
    return Message(id=id, user_query=prompt, openai_response="answer", created_at="",
                   external_id=external_id, reaction=reaction, reaction_shown=shown)


def test_a_reaction_is_planned_where_the_live_one_differs() -> None:
    demo = conv("Demo")
    spec = ProjectSpec(id=7, conversations=(ConversationSpec("Demo", messages=(
        MessageSpec("one", Reaction.LIKED), MessageSpec("two", Reaction.LIKED),
        MessageSpec("three", Reaction.NEUTRAL), MessageSpec("four"))),))
    plan = plan_for(spec, [demo], {demo.session_id: (
        reacted("one", Reaction.LIKED, id=11), reacted("two", Reaction.DISLIKED, id=12),
        reacted("three", None, id=13), reacted("four", Reaction.DISLIKED, id=14))})
    assert [(op.position, op.message_id, op.before, op.reaction) for op in plan.operations] == [
        (2, 12, Reaction.DISLIKED, Reaction.LIKED), (3, 13, None, Reaction.NEUTRAL)]
    react = plan.operations[0]
    assert (react.action, react.session_id) == (Action.REACT, demo.session_id)
    assert react.reason == "declared message 2 is to be liked; its answer has disliked"
    assert precondition_of(react) == {"session_id": demo.session_id, "message_id": 12,
                                      "reaction": "disliked"}
    assert plan.notes == ()


def test_a_reaction_follows_the_send_of_its_message() -> None:
    demo = conv("Demo")
    spec = ProjectSpec(id=7, conversations=(
        ConversationSpec("Demo", messages=("hi", MessageSpec("hi", Reaction.LIKED),
                                           MessageSpec("hi", Reaction.DISLIKED))),
        ConversationSpec("New", messages=(MessageSpec("yo", Reaction.NEUTRAL),))))
    plan = plan_for(spec, [demo], {demo.session_id: ("hi",)})
    assert [(op.action, op.name) for op in plan.operations] == [
        (Action.CREATE, "New"), (Action.SEND, "Demo"), (Action.SEND, "Demo"),
        (Action.SEND, "New"), (Action.REACT, "Demo"), (Action.REACT, "Demo"),
        (Action.REACT, "New")]
    reacts = [op for op in plan.operations if op.action is Action.REACT]
    assert [(op.session_id, op.position, op.message_id, op.occurrence) for op in reacts] == [
        (demo.session_id, 2, None, 2), (demo.session_id, 3, None, 3), (None, 1, None, 1)]
    assert reacts[0].reason == "declared message 2 is to be liked; this plan sends it"


def test_a_message_without_a_declared_reaction_keeps_its_own() -> None:
    demo = conv("Demo")
    spec = ProjectSpec(id=7, conversations=(ConversationSpec("Demo", messages=("one",)),))
    plan = plan_for(spec, [demo], {demo.session_id: (reacted("one", Reaction.DISLIKED),)})
    assert (plan.operations, plan.notes) == ((), ())


def test_where_the_api_does_not_show_reactions_a_note_says_so_and_nothing_is_planned() -> None:
    demo = conv("Demo")
    spec = ProjectSpec(id=7, conversations=(ConversationSpec("Demo", messages=(
        MessageSpec("one", Reaction.LIKED), MessageSpec("two", Reaction.LIKED),
        MessageSpec("three", Reaction.LIKED))),))
    plan = plan_for(spec, [demo], {demo.session_id: (
        reacted("one", None, shown=False), reacted("two", None, shown=False))})
    assert [(op.action, op.position) for op in plan.operations] == [
        (Action.SEND, 3), (Action.REACT, 3)]
    assert plan.notes == ("'Demo': the API does not show the reaction of message 1 and 2, so "
                          "its declared reaction is set only with a message this plan sends",)


def ours(position: int, prompt: str, values: dict[str, str], *, session: str) -> Message:
    """A message a send of reconciler made, carrying `values`."""
    external = external_id_carrying(send_external_id(7, session, position, prompt), values)
    return reacted(prompt, None, id=position, external_id=external)


@pytest.mark.parametrize(
    ("declared", "carried", "note"),
    [
        ({"persona": "calm"}, [{"persona": "calm"}, {"persona": "calm"}], None),
        ({"persona": "terse"}, [{"persona": "calm"}, {"persona": "calm"}],
         "'Demo': persona applies only to prompts sent from now on; the 2 sent already keep "
         "theirs"),
        ({}, [{"persona": "calm"}, {"persona": "calm"}],
         "'Demo': persona applies only to prompts sent from now on; the 2 sent already keep "
         "theirs"),
        ({"persona": "calm", "chatbot_model": "gpt-4-1"}, [{"persona": "calm"}, {}],
         "'Demo': persona and chatbot_model apply only to prompts sent from now on; the 2 sent "
         "already keep theirs"),
        ({"response_source": "own_content", "custom_context": "x", "agent_capability": "a"},
         [{"response_source": "own_content", "custom_context": "x", "agent_capability": "a"}] * 2,
         None),
        ({}, [{}, {}], None),
    ],
    ids=["same", "changed", "removed", "one-new-one-older", "all-same", "none"],
)
def test_a_declared_send_value_that_differs_from_what_was_sent_is_noted(
        declared: dict[str, str], carried: list[dict[str, str]], note: str | None) -> None:
    """Where the API echoes external ids, a send says which values it carried: the note
    comes only when a declared value differs from them."""
    demo = conv("Demo")
    spec = ProjectSpec(id=7, conversations=(
        ConversationSpec("Demo", messages=("one", "two"), **declared),))  # type: ignore[arg-type]
    prompts = zip(("one", "two"), carried, strict=True)
    held = tuple(ours(n, p, values, session=demo.session_id)
                 for n, (p, values) in enumerate(prompts, start=1))
    plan = plan_for(spec, [demo], {demo.session_id: held})
    assert plan.operations == ()
    assert plan.notes == (() if note is None else (note,))


def test_where_the_api_does_not_say_what_was_sent_any_declared_value_is_noted() -> None:
    demo, fresh = conv("Demo"), conv("Fresh")
    spec = ProjectSpec(id=7, conversations=(
        ConversationSpec("Demo", messages=("one", "two"), persona="calm"),
        ConversationSpec("Fresh", messages=("a",), response_source="own_content"),
        ConversationSpec("Plain", messages=("b",))))
    plan = plan_for(spec, [demo, fresh], {demo.session_id: ("one",), fresh.session_id: ()})
    assert plan.notes == ("'Demo': persona applies only to prompts sent from now on; the one "
                          "sent already keeps its own",)


def test_a_send_says_where_the_prompt_is_missing_and_what_must_still_hold() -> None:
    demo = conv("Demo")
    spec = ProjectSpec(id=7, conversations=(
        ConversationSpec("Demo", messages=("one",)), ConversationSpec("New", messages=("two",))))
    _create, existing, new = plan_for(spec, [demo]).operations
    assert (existing.session_id, existing.reason) == (
        demo.session_id, "declared message 1 is not yet in the transcript")
    assert precondition_of(existing) == {"name": "Demo", "session_id": demo.session_id,
                                                 "prompt": "one", "occurrences": 0}
    assert (new.session_id, new.reason) == (None, "declared message 1 is not yet in a new "
                                                  "conversation")
    assert precondition_of(new) == {"prompt": "two"}


def test_a_prompt_declared_more_often_than_it_was_sent_is_sent_again() -> None:
    demo = conv("Demo")
    spec = ProjectSpec(id=7, conversations=(ConversationSpec("Demo", messages=("hi",) * 3),))
    plan = plan_for(spec, [demo], {demo.session_id: ("hi", "hi")})
    assert [(op.position, op.prompt) for op in plan.operations] == [(3, "hi")]
    assert precondition_of(plan.operations[0])["occurrences"] == 2  # what apply expects to find


def test_sends_follow_the_declared_order_of_conversations() -> None:
    second, first = conv("Second"), conv("First")
    spec = ProjectSpec(id=7, conversations=(
        ConversationSpec("Created", messages=("c",)),
        ConversationSpec("First", messages=("a",)),
        ConversationSpec("Second", messages=("b",)),
    ))
    plan = plan_for(spec, [second, first])
    assert [op.name for op in plan.operations if op.action is Action.SEND] == [
        "Created", "First", "Second"]


def test_a_delete_says_why_and_what_must_still_hold() -> None:
    stray = conv("Stray")
    plan = plan_for(ProjectSpec(id=7, prune=True, owns=ALL), [stray], {stray.session_id: ("a",)})
    (delete,) = plan.operations
    assert (delete.session_id, delete.reason) == (stray.session_id, "not declared and prune is on")
    assert precondition_of(delete) == {"name": "Stray", "session_id": stray.session_id,
                                               "message_count": 1}


def test_unmanaged_conversations_are_listed_by_name_with_the_reason() -> None:
    live = [conv("tmp-b"), conv("Legal b"), conv("Legal a"), conv("tmp-a"), conv("Stray")]
    spec = ProjectSpec(id=7, prune=True, owns=ALL, ignore=("tmp-*",), protect=("Legal *",))
    plan = plan_for(spec, live, {c.session_id: () for c in live})
    by_name = {c.name: c.session_id for c in live}
    assert plan.unmanaged == (
        Unmanaged(by_name["Legal a"], "Legal a", "protected"),
        Unmanaged(by_name["Legal b"], "Legal b", "protected"),
        Unmanaged(by_name["tmp-a"], "tmp-a", "ignored"),
        Unmanaged(by_name["tmp-b"], "tmp-b", "ignored"),
    )
    assert [op.name for op in plan.operations] == ["Stray"]


@pytest.mark.parametrize("owns", [(), ALL], ids=["not-owned", "owned"])
def test_unmanaged_conversations_of_one_name_are_listed_by_session(
        owns: tuple[str, ...]) -> None:
    live = [conv("Same", session="s-b"), conv("Same", session="s-a")]
    plan = plan_for(ProjectSpec(id=7, owns=owns), live)
    assert plan.unmanaged == (Unmanaged("s-a", "Same", "not declared, prune is off"),
                              Unmanaged("s-b", "Same", "not declared, prune is off"))


@pytest.mark.parametrize(
    ("prune", "protect", "expected"),
    [(True, (), ["Legal hold", "Stray"]), (True, ("Legal *",), ["Stray"]), (False, (), [])],
    ids=["prune", "prune-protected", "no-prune"],
)
def test_only_conversations_the_plan_may_delete_have_their_transcript_read(
        prune: bool, protect: tuple[str, ...], expected: list[str]) -> None:
    live = [conv("Legal hold"), conv("Stray"), conv("FAQ")]
    spec = ProjectSpec(id=7, prune=prune, protect=protect, owns=ALL,
                       conversations=(ConversationSpec("FAQ"),))
    candidates = deletion_candidates(spec, match_project(spec, live, user_id=ME))
    assert candidates == [c.session_id for c in live if c.name in expected]


def test_a_project_whose_matching_failed_has_no_deletion_candidates() -> None:
    spec = ProjectSpec(id=7, prune=True, owns=ALL, conversations=(ConversationSpec("FAQ"),))
    matching = match_project(spec, [conv("FAQ"), conv("FAQ"), conv("Stray")], user_id=ME)
    assert deletion_candidates(spec, matching) == []


@pytest.mark.parametrize(
    ("declared", "live", "hint"),
    [
        (["New"], ["Old"], "this plan creates 'New' and deletes 'Old': if a deleted conversation "
                           "was only renamed, declare its old name with renamed_from on the new "
                           "entry so that it is renamed and keeps its messages"),
        (["New"], [], None),
        ([], ["Old"], None),
        (["N1", "N2", "N3"], ["O1", "O2", "O3", "O4", "O5"],
         "this plan creates 'N1', 'N2', 'N3' and deletes 'O1', 'O2', 'O3' and 2 more: "),
        (["N1", "N2", "N3", "N4"], ["O1"], "this plan creates 'N1', 'N2', 'N3' and 1 more and "
                                           "deletes 'O1': "),
    ],
    ids=["create-and-delete", "only-creates", "only-deletes", "many-deletes", "many-creates"],
)
def test_the_rename_hint_appears_only_when_a_plan_creates_and_deletes(
        declared: list[str], live: list[str], hint: str | None) -> None:
    spec = ProjectSpec(id=7, prune=True, owns=ALL,
                       conversations=tuple(ConversationSpec(n) for n in declared))
    plan = plan_for(spec, [conv(n) for n in live])
    if hint is None:
        assert plan.warnings == ()
    else:
        (warning,) = plan.warnings
        assert warning.startswith(hint)


def test_adopting_the_oldest_duplicate_is_a_warning_of_the_plan() -> None:
    spec = ProjectSpec(id=7, duplicates=DuplicatePolicy.ADOPT_OLDEST,
                       conversations=(ConversationSpec("FAQ"),))
    plan = plan_for(spec, [conv("FAQ"), conv("FAQ")])
    assert [w.split(":")[0] for w in plan.warnings] == ["'FAQ'"]
    assert "adopted the oldest" in plan.warnings[0]



def test_a_created_name_that_looks_like_a_deleted_one_is_pointed_out() -> None:
    spec = ProjectSpec(id=7, prune=True, owns=ALL,
                       conversations=(ConversationSpec("Bil\u200bling"),))
    plan = plan_for(spec, [conv("Billing"), conv("Other")])
    assert plan.warnings[0] == ("'Bil\\u200bling' and 'Billing' look alike but differ in "
                                "invisible characters: the plan creates the one and deletes "
                                "the other")
    assert len(plan.warnings) == 2  # and the rename hint


def test_at_most_ten_look_alike_pairs_are_pointed_out() -> None:
    created = ("A\u200b", "A\u200c", "A\u200d", "A\u2060")
    deleted = ("A", "A\ufeff", "\u200bA")
    spec = ProjectSpec(id=7, prune=True, owns=ALL,
                       conversations=tuple(ConversationSpec(name) for name in created))
    plan = plan_for(spec, [conv(name) for name in deleted])
    look_alikes = [w for w in plan.warnings if "look alike" in w]
    assert len(look_alikes) == 10  # of the 12 pairs


@pytest.mark.parametrize("prune", [True, False], ids=["prune-on", "prune-off"])
def test_a_duplicate_left_by_adopt_oldest_is_explained_as_one(prune: bool) -> None:
    """Its name is in the file: it is not 'not declared' but a duplicate of the adopted one."""
    oldest, *others = [conv("FAQ"), conv("FAQ"), conv("FAQ")]
    stray = conv("Stray")
    spec = ProjectSpec(id=7, prune=prune, owns=("*",), duplicates=DuplicatePolicy.ADOPT_OLDEST,
                       conversations=(ConversationSpec("FAQ"),))
    plan = plan_for(spec, [oldest, *others, stray])
    duplicate = f"a duplicate of 'FAQ' (the oldest, {oldest.session_id}, is kept)"
    if prune:
        assert [(op.session_id, op.reason) for op in plan.operations] == [
            *((c.session_id, duplicate) for c in others),
            (stray.session_id, "not declared and prune is on")]
    else:
        assert [(u.session_id, u.why) for u in plan.unmanaged] == [
            *((c.session_id, f"{duplicate}; prune is off") for c in others),
            (stray.session_id, "not declared, prune is off")]


def test_a_conversation_sharing_a_pinned_ones_name_is_not_called_its_duplicate() -> None:
    pinned, namesake = conv("Old FAQ"), conv("FAQ")
    spec = ProjectSpec(id=7, prune=True, duplicates=DuplicatePolicy.ADOPT_OLDEST,
                       conversations=(ConversationSpec("FAQ", session_id=pinned.session_id),))
    plan = plan_for(spec, [pinned, namesake])
    (delete,) = [op for op in plan.operations if op.action is Action.DELETE]
    assert (delete.session_id, delete.reason) == (namesake.session_id,
                                                  "not declared and prune is on")


def test_prune_deletes_only_what_the_project_owns() -> None:
    """Production made "Hi there" and "Refund?" with the same API key: left alone, counted."""
    live = [conv("QA 1"), conv("Hi there"), conv("Demo"), conv("Refund?"), conv("QA 2")]
    spec = ProjectSpec(id=7, prune=True, owns=("QA *",), conversations=(ConversationSpec("Demo"),))
    plan = plan_for(spec, live)
    assert [(op.action, op.name) for op in plan.operations] == [
        (Action.DELETE, "QA 1"), (Action.DELETE, "QA 2")]
    assert plan.not_owned == 2
    why = "not owned by this repository: not declared, and no owns pattern matches it"
    assert plan.unmanaged == (Unmanaged(live[1].session_id, "Hi there", why),
                              Unmanaged(live[3].session_id, "Refund?", why))
    assert (plan.managed_in_scope, plan.owned_in_scope) == (5, 3)


def test_prune_without_owns_deletes_nothing_undeclared() -> None:
    live = [conv("Stray"), conv("FAQ")]
    spec = ProjectSpec(id=7, prune=True, conversations=(ConversationSpec("FAQ"),))
    plan = plan_for(spec, live)
    assert plan.operations == ()
    assert (plan.not_owned, plan.owned_in_scope) == (1, 1)
    assert deletion_candidates(spec, match_project(spec, live, user_id=ME)) == []


def test_extra_copies_of_a_declared_name_are_pruned_without_owns() -> None:
    oldest, copy = conv("FAQ"), conv("FAQ")
    spec = ProjectSpec(id=7, prune=True, duplicates=DuplicatePolicy.ADOPT_OLDEST,
                       conversations=(ConversationSpec("FAQ"),))
    plan = plan_for(spec, [copy, oldest, conv("Stray")])
    assert [(op.action, op.session_id) for op in plan.operations] == [
        (Action.DELETE, copy.session_id)]
    assert (plan.not_owned, plan.owned_in_scope) == (1, 2)


def test_protect_still_holds_for_what_the_project_owns() -> None:
    live = [conv("QA legal"), conv("QA 1")]
    plan = plan_for(ProjectSpec(id=7, prune=True, owns=("QA *",), protect=("QA legal",)), live)
    assert [op.name for op in plan.operations] == ["QA 1"]
    assert [(u.name, u.why) for u in plan.unmanaged] == [("QA legal", "protected")]
    assert plan.not_owned == 0


def test_without_prune_ownership_decides_nothing_and_is_not_counted() -> None:
    plan = plan_for(ProjectSpec(id=7, owns=("QA *",)), [conv("QA 1"), conv("Hi there")])
    assert plan.operations == ()
    assert [u.why for u in plan.unmanaged] == ["not declared, prune is off"] * 2
    assert plan.not_owned == 0
