"""The plan as data: JSON form, schema, checksum."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest

from reconciler.desired.model import Reaction, Scope
from reconciler.desired.schema import validate
from reconciler.errors import InputError
from reconciler.jsonio import canonical
from reconciler.plan.model import LiveRead, Plan, ProjectPlan, Unmanaged
from reconciler.plan.operations import Create, Delete, React, Rename, Send


def sample_plan() -> Plan:
    ops = (
        Rename(project_id=7, name="New", reason="declared with renamed_from 'Old'",
               session_id="s-1", old_name="Old"),
        Create(project_id=7, name="Fresh", reason="declared"),
        Send(project_id=7, name="Fresh", reason="message 1 missing", session_id=None,
             prompt="hello", position=1, lang="de"),
        React(project_id=7, name="Fresh", reason="message 1 to be liked", session_id=None,
              prompt="hello", position=1, reaction=Reaction.LIKED, occurrence=1),
        Delete(project_id=7, name="Stray", reason="not declared and prune is on",
               session_id="s-2", message_count=3),
    )
    project = ProjectPlan(project_id=7, label="demo", scope="mine", live_in_scope=4,
                          operations=ops, unmanaged=(Unmanaged("s-3", "Kept", "protected"),),
                          warnings=("look",),
                          notes=("'Demo': persona applies only to prompts sent from now on",))
    return Plan(projects=(project,))


def test_json_form_is_schema_valid_and_round_trips() -> None:
    plan = sample_plan()
    document = plan.to_dict()
    assert validate(document, "plan") == []
    again = Plan.from_dict(document)
    assert again.projects == plan.projects
    assert again.checksum == plan.checksum
    assert document["summary"] == {"create": 1, "rename": 1, "send": 1, "react": 1,
                                   "delete": 1, "unmanaged": 1}


# The JSON form of each kind of operation, as plans of format 2 and reports hold it: the same
# keys in the same order, absent when they have no value. Saved plans and their checksums
# depend on it.
WRITTEN = [
    '{"key":"7/rename/s-1","action":"rename","project_id":7,"name":"New","session_id":"s-1",'
    '"old_name":"Old","reason":"declared with renamed_from \'Old\'","precondition":{'
    '"description":"session s-1 is still named \'Old\', and no other conversation in scope is '
    'named \'New\'","name":"Old","session_id":"s-1"}}',
    '{"key":"7/create/Fresh","action":"create","project_id":7,"name":"Fresh",'
    '"reason":"declared","precondition":{"description":"no conversation named \'Fresh\' in '
    'scope","name":"Fresh"}}',
    '{"key":"7/send/Fresh#1","action":"send","project_id":7,"name":"Fresh","prompt":"hello",'
    '"position":1,"lang":"de","reason":"message 1 missing","precondition":{"description":'
    '"the conversation is created by this plan","prompt":"hello"}}',
    '{"key":"7/react/Fresh#1","action":"react","project_id":7,"name":"Fresh","prompt":"hello",'
    '"position":1,"reaction":"liked","occurrence":1,"reason":"message 1 to be liked",'
    '"precondition":{"description":"the message is sent by this plan"}}',
    '{"key":"7/delete/s-2","action":"delete","project_id":7,"name":"Stray","session_id":"s-2",'
    '"reason":"not declared and prune is on","precondition":{"description":"session s-2 still '
    'exists, named \'Stray\', with 3 messages","name":"Stray","session_id":"s-2",'
    '"message_count":3}}',
]
SAMPLE_CHECKSUM = "sha256:59444e22959840d4c4d2381deb0637014e1cec5e16bb790c47e357886caad01b"


def test_each_kind_is_written_in_the_plan_format_byte_for_byte() -> None:
    plan = sample_plan()
    assert [json.dumps(op.to_dict(), separators=(",", ":")) for op in plan.operations] == WRITTEN
    assert plan.checksum == SAMPLE_CHECKSUM


def test_a_send_into_a_live_conversation_is_written_with_all_it_records() -> None:
    send = Send(project_id=7, name="Demo", reason="declared message 2 is not yet in the transcript",
                session_id="s-4", prompt="next", position=2, persona="pirate",
                response_source="own_content", lang="de", live_name="Demo (old)", occurrences=1)
    assert json.dumps(send.to_dict(), separators=(",", ":")) == (
        '{"key":"7/send/s-4#2","action":"send","project_id":7,"name":"Demo","session_id":"s-4",'
        '"prompt":"next","position":2,"persona":"pirate","response_source":"own_content",'
        '"lang":"de","reason":"declared message 2 is not yet in the transcript","precondition":'
        '{"description":"session s-4 is still named \'Demo (old)\', and the prompt is in its '
        'transcript 1 time(s), as when planned","name":"Demo (old)","session_id":"s-4",'
        '"prompt":"next","occurrences":1}}')


def test_the_count_of_conversations_not_owned_is_saved_and_read_back() -> None:
    project = ProjectPlan(project_id=7, label=None, scope="team", live_in_scope=12,
                          managed_in_scope=10, not_owned=6)
    document = Plan(projects=(project,)).to_dict()
    assert document["projects"][0]["not_owned"] == 6
    assert validate(document, "plan") == []
    (again,) = Plan.from_dict(document).projects
    assert (again.not_owned, again.owned_in_scope) == (6, 4)


def test_a_plan_saved_before_ownership_was_recorded_still_loads() -> None:
    """Its checksum is of what it holds; without the count, every managed conversation was
    owned (prune deleted any)."""
    document = copy.deepcopy(sample_plan().to_dict())
    del document["projects"][0]["not_owned"]
    body = {k: v for k, v in document.items() if k != "checksum"}
    document["checksum"] = "sha256:" + hashlib.sha256(canonical(body)).hexdigest()
    assert validate(document, "plan") == []
    (project,) = Plan.from_dict(document).projects
    assert (project.not_owned, project.owned_in_scope) == (0, project.managed_in_scope)


def test_checksum_is_stable_and_content_sensitive() -> None:
    assert sample_plan().checksum == sample_plan().checksum
    other = Plan(projects=(ProjectPlan(project_id=8, label=None, scope="mine"),))
    assert other.checksum != sample_plan().checksum


def test_a_tampered_plan_is_refused() -> None:
    document = copy.deepcopy(sample_plan().to_dict())
    document["projects"][0]["operations"][-1]["session_id"] = "someone-elses"
    with pytest.raises(InputError, match="checksum mismatch"):
        Plan.from_dict(document, source="plan.json")


def test_operation_keys_are_unique_within_a_plan() -> None:
    keys = [op.key for op in sample_plan().operations]
    assert len(keys) == len(set(keys))


def test_errors_make_a_plan_unappliable_in_its_json() -> None:
    plan = Plan(projects=(ProjectPlan(project_id=9, label=None, scope="team",
                                      errors=("project 9 not found",)),))
    document = plan.to_dict()
    assert document["errors"] == ["project 9: project 9 not found"]
    assert validate(document, "plan") == []
    assert Plan.from_dict(document).all_errors == plan.all_errors


def _edited(edit: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    """The sample plan's JSON edited on purpose, with its checksum computed again."""
    document = copy.deepcopy(sample_plan().to_dict())
    edit(document)
    body = {k: v for k, v in document.items() if k != "checksum"}
    return {**body, "checksum": "sha256:" + hashlib.sha256(canonical(body)).hexdigest()}


def _operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    return document["projects"][0]["operations"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        (lambda d: d["projects"].append(copy.deepcopy(d["projects"][0])),
         "project 7 appears twice"),
        (lambda d: _operations(d)[1].update(project_id=8),
         "operation 8/create/Fresh is filed under project 7"),
        (lambda d: _operations(d).insert(1, copy.deepcopy(_operations(d)[1])),
         "operation 7/create/Fresh appears twice"),
        (lambda d: _operations(d)[0].update(name="Fresh"),
         "two operations of project 7 give the name 'Fresh'"),
    ],
    ids=["project-twice", "operation-elsewhere", "create-twice", "one-name-twice"],
)
def test_a_plan_the_planner_cannot_make_is_refused_even_with_a_good_checksum(
    edit: Callable[[dict[str, Any]], object], why: str
) -> None:
    with pytest.raises(InputError, match="reconciler never makes such a plan") as error:
        Plan.from_dict(_edited(edit), source="plan.json")
    assert why in str(error.value)


def test_an_operation_is_read_from_its_own_fields() -> None:
    """The key, the precondition's words and its copies of the operation's fields are derived
    from the operation: an edited plan is read (and checked, and applied) as the operation
    says, so that what a plan shows is what it does."""
    def edit(document: dict[str, Any]) -> None:
        rename, _create, send, _react, delete = _operations(document)
        rename.update(key="anything")
        rename["precondition"].update(name="Other", session_id="s-9")
        send["precondition"].update(prompt="other", description="x")
        delete["precondition"].update(name="Kept")
        delete.update(name="Shown")

    read = Plan.from_dict(_edited(edit)).operations
    assert read[:4] == sample_plan().operations[:4]
    assert read[-1].name == "Shown"
    assert read[-1].to_dict()["precondition"]["name"] == "Shown"
    assert "named 'Shown'" in read[-1].requirement


def test_a_delete_without_its_message_count_is_not_a_valid_plan() -> None:
    document = copy.deepcopy(sample_plan().to_dict())
    del _operations(document)[-1]["precondition"]["message_count"]
    assert [p.message for p in validate(document, "plan")] != []


def test_scope_and_live_read_are_written_as_the_words_they_always_were() -> None:
    project = ProjectPlan(project_id=7, label=None, scope=Scope.TEAM,
                          live_read=LiveRead.BY_NAME)
    data = project.to_dict()
    assert (data["scope"], data["live_read"]) == ("team", "names")
    assert type(data["scope"]) is str and type(data["live_read"]) is str
    back = ProjectPlan.from_dict(data)
    assert (back.scope, back.live_read) == (Scope.TEAM, LiveRead.BY_NAME)
    assert ProjectPlan(project_id=7, label=None, scope="mine").scope is Scope.MINE


def test_a_plan_holds_a_scope_it_names() -> None:
    """A saved plan names one of the three scopes; the schema refuses another word before the
    plan is read."""
    document = Plan(projects=(ProjectPlan(project_id=7, label=None, scope="all"),)).to_dict()
    assert validate(document, "plan") == []
    document["projects"][0]["scope"] = "ours"
    assert validate(document, "plan") != []
