"""Building a project's plan from its matching (DESIGN §3, §4, §5)."""

from __future__ import annotations

import itertools

import pytest

from reconciler.desired import ConversationSpec, ProjectSpec
from reconciler.live import Conversation
from reconciler.match import match_project
from reconciler.plan import Action
from reconciler.planning import build_project_plan

ME = "1"
_ids = itertools.count(1)


def conv(name: str, *, by: str | None = ME) -> Conversation:
    n = next(_ids)
    return Conversation(id=n, session_id=f"s-{n}", name=name, project_id=7, created_by=by,
                        created_at="2024-01-01 00:00:00", updated_at="2024-01-01 00:00:00")


def plan_for(spec: ProjectSpec, live: list[Conversation],
             transcripts: dict[str, tuple[str, ...]] | None = None):  # type: ignore[no-untyped-def]
    matching = match_project(spec, live, user_id=ME)
    return build_project_plan(spec, matching, transcripts or {})


def test_operations_come_renames_creates_sends_deletes() -> None:
    old, stray = conv("Old"), conv("Stray")
    spec = ProjectSpec(id=7, prune=True, conversations=(
        ConversationSpec("Fresh", messages=("hi",)),
        ConversationSpec("New", renamed_from=("Old",)),
    ))
    plan = plan_for(spec, [old, stray])
    assert [(op.action, op.name) for op in plan.operations] == [
        (Action.RENAME, "New"), (Action.CREATE, "Fresh"), (Action.SEND, "Fresh"),
        (Action.DELETE, "Stray"),
    ]
    rename = plan.operations[0]
    assert (rename.old_name, rename.session_id) == ("Old", old.session_id)
    assert rename.precondition.name == "Old"


def test_without_prune_undeclared_is_left_alone() -> None:
    plan = plan_for(ProjectSpec(id=7), [conv("Stray")])
    assert plan.operations == ()
    assert [(u.name, u.why) for u in plan.unmanaged] == [("Stray", "not declared, prune is off")]


def test_protect_holds_under_prune() -> None:
    plan = plan_for(ProjectSpec(id=7, prune=True, protect=("Legal *",)), [conv("Legal hold")])
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
    plan = plan_for(ProjectSpec(id=7, prune=True), [stray], {stray.session_id: ("a", "b")})
    (delete,) = plan.operations
    assert delete.precondition.message_count == 2
    assert delete.precondition.name == "Stray"


def test_create_and_delete_together_get_the_rename_hint() -> None:
    spec = ProjectSpec(id=7, prune=True, conversations=(ConversationSpec("Billing questions"),))
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
    plan = plan_for(ProjectSpec(id=7, prune=True, ignore=("tmp-*",)), live)
    assert (plan.live_in_scope, plan.managed_in_scope) == (110, 10)
    assert sum(op.action is Action.DELETE for op in plan.operations) == 10


@pytest.mark.parametrize(("declared", "recorded"), [(None, 0.3), (0.29, 0.29), (1.0, 1.0)],
                         ids=["default", "declared", "all"])
def test_the_plan_records_the_projects_delete_threshold(
    declared: float | None, recorded: float
) -> None:
    plan = plan_for(ProjectSpec(id=7, prune=True, max_delete_fraction=declared), [conv("x")])
    assert plan.max_delete_fraction == recorded
