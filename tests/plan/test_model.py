"""The plan as data: JSON form, schema, checksum."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from typing import Any

import pytest

from reconciler.desired.schema import validate
from reconciler.errors import InputError
from reconciler.jsonio import canonical
from reconciler.plan.model import Action, Operation, Plan, Precondition, ProjectPlan, Unmanaged


def sample_plan() -> Plan:
    ops = (
        Operation(Action.RENAME, 7, "New", "declared with renamed_from 'Old'",
                  Precondition(name="Old", session_id="s-1"), session_id="s-1", old_name="Old"),
        Operation(Action.CREATE, 7, "Fresh", "declared", Precondition(name="Fresh")),
        Operation(Action.SEND, 7, "Fresh", "message 1 missing",
                  Precondition(prompt="hello"), prompt="hello", position=1, lang="de"),
        Operation(Action.DELETE, 7, "Stray", "not declared and prune is on",
                  Precondition(name="Stray", session_id="s-2", message_count=3),
                  session_id="s-2"),
    )
    project = ProjectPlan(project_id=7, label="demo", scope="mine", live_in_scope=4,
                          operations=ops, unmanaged=(Unmanaged("s-3", "Kept", "protected"),),
                          warnings=("look",))
    return Plan(projects=(project,))


def test_json_form_is_schema_valid_and_round_trips() -> None:
    plan = sample_plan()
    document = plan.to_dict()
    assert validate(document, "plan") == []
    again = Plan.from_dict(document)
    assert again.projects == plan.projects
    assert again.checksum == plan.checksum
    assert document["summary"] == {"create": 1, "rename": 1, "send": 1, "delete": 1,
                                   "unmanaged": 1}


def test_checksum_is_stable_and_content_sensitive() -> None:
    assert sample_plan().checksum == sample_plan().checksum
    other = Plan(projects=(ProjectPlan(project_id=8, label=None, scope="mine"),))
    assert other.checksum != sample_plan().checksum


def test_a_tampered_plan_is_refused() -> None:
    document = copy.deepcopy(sample_plan().to_dict())
    document["projects"][0]["operations"][3]["session_id"] = "someone-elses"
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
