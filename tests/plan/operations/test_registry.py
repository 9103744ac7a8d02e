"""The registry of operation kinds: one kind per action, in apply order, each read back from
the JSON form it writes."""

from __future__ import annotations

import pytest

from reconciler.desired.model import Reaction
from reconciler.desired.schema import validate
from reconciler.plan.model import Plan, ProjectPlan
from reconciler.plan.operations import (
    BY_ACTION,
    KINDS,
    SUMMARY_ORDER,
    Action,
    Create,
    Delete,
    Operation,
    React,
    Rename,
    Send,
    kind_of,
    operation_from_dict,
)

# One operation of every kind, with every field it can hold set (and a send without its own
# conversation, whose fields are absent).
SAMPLES: list[Operation] = [
    Rename(project_id=7, name="New", reason="renamed_from", session_id="s-1", old_name="Old"),
    Create(project_id=7, name="Fresh", reason="declared"),
    Send(project_id=7, name="Demo", reason="missing", session_id="s-2", prompt="next",
         position=2, persona="pirate", response_source="own_content", lang="de",
         live_name="Demo (old)", occurrences=1, custom_context="premium",
         agent_capability="fastest-responses", chatbot_model="gpt-4-1-mini"),
    Send(project_id=7, name="Fresh", reason="missing", session_id=None, prompt="hi", position=1),
    React(project_id=7, name="Demo", reason="declared", session_id="s-2", prompt="first",
          position=1, reaction=Reaction.LIKED, message_id=41, before=Reaction.DISLIKED),
    React(project_id=7, name="Demo", reason="declared", session_id="s-2", prompt="next",
          position=2, reaction=Reaction.NEUTRAL, occurrence=2),
    Delete(project_id=7, name="Stray", reason="prune", session_id="s-3", message_count=4),
]


def test_every_action_has_exactly_one_kind() -> None:
    assert sorted(kind.action for kind in KINDS) == sorted(Action)
    assert len(BY_ACTION) == len(KINDS)
    for action in Action:
        assert kind_of(action.value).action is action


def test_the_kinds_are_in_apply_order() -> None:
    assert [kind.action for kind in KINDS] == [Action.RENAME, Action.CREATE, Action.SEND,
                                               Action.REACT, Action.DELETE]


def test_the_kinds_that_wait_for_the_duplicates_check_come_after_those_that_create() -> None:
    """Apply runs the kinds in order, with the check that no other run created the same names
    between the ones that do not wait for it and the ones that do."""
    waits = [kind.after_duplicate_check for kind in KINDS]
    assert waits == sorted(waits)
    assert all(not kind.after_duplicate_check for kind in KINDS if kind.creates)
    assert any(kind.creates for kind in KINDS)


def test_the_summary_names_the_kinds_as_terraform_does() -> None:
    assert [kind.action.value for kind in SUMMARY_ORDER] == ["create", "rename", "send",
                                                             "react", "delete"]


def test_each_kind_is_shown_with_its_own_symbol_and_colour() -> None:
    assert len({kind.symbol for kind in KINDS}) == len(KINDS)
    assert len({kind.color for kind in KINDS}) == len(KINDS)


def test_the_samples_cover_every_kind() -> None:
    assert {type(op) for op in SAMPLES} == set(KINDS)


@pytest.mark.parametrize("op", SAMPLES, ids=lambda op: op.key)
def test_every_kind_round_trips_through_its_json_form(op: Operation) -> None:
    document = op.to_dict()
    assert document["action"] == op.action.value
    assert document["key"] == op.key
    again = operation_from_dict(document)
    assert type(again) is type(op)
    assert again == op
    assert again.to_dict() == document


@pytest.mark.parametrize("op", SAMPLES, ids=lambda op: op.key)
def test_every_kind_writes_what_the_plan_schema_accepts(op: Operation) -> None:
    plan = Plan(projects=(ProjectPlan(project_id=7, label=None, scope="mine", live_in_scope=1,
                                      managed_in_scope=1, operations=(op,)),))
    document = plan.to_dict()
    assert validate(document, "plan") == []
    assert Plan.from_dict(document).operations == (op,)


@pytest.mark.parametrize("op", SAMPLES, ids=lambda op: op.key)
def test_every_kind_describes_itself_in_one_line_naming_its_conversation(op: Operation) -> None:
    line = op.describe()
    assert "\n" not in line
    assert line.startswith(op.action.value)
    assert repr(op.name) in line
    if op.session_id is not None:
        assert op.session_id in line


@pytest.mark.parametrize("op", SAMPLES, ids=lambda op: op.key)
def test_every_precondition_is_described_in_the_plan(op: Operation) -> None:
    words = op.requirement
    precondition = op.to_dict()["precondition"]
    assert precondition["description"] == words
    for value in (precondition.get("name"), precondition.get("session_id")):
        if value:
            assert value in words
