"""What a plan costs: requests to apply it, and query credits."""

from __future__ import annotations

import pytest

from reconciler.desired.model import Reaction
from reconciler.plan.budget import apply_requests, budget_line, duration, sends
from reconciler.plan.model import Budget, Plan, ProjectPlan
from reconciler.plan.operations import Create, Delete, Operation, React, Rename, Send


def plan_of(*operations: Operation) -> Plan:
    return Plan(projects=(ProjectPlan(project_id=7, label=None, scope="mine",
                                      operations=operations),))


def send(session: str | None, position: int) -> Send:
    return Send(project_id=7, name="Demo", reason="missing", session_id=session, prompt="hi",
                position=position, live_name=None if session is None else "Demo",
                occurrences=None if session is None else 0)


def react(session: str | None, position: int, *, message_id: int | None = None) -> React:
    return React(project_id=7, name="Demo", reason="declared", session_id=session, prompt="hi",
                 position=position, reaction=Reaction.LIKED, message_id=message_id,
                 occurrence=None if message_id else position)


@pytest.mark.parametrize(
    ("operations", "requests"),
    [
        ((Rename(project_id=7, name="N", reason="r", session_id="s-1", old_name="O"),), 1),
        ((Create(project_id=7, name="N", reason="r"),), 1),
        ((send(None, 1), send(None, 2)), 2),
        ((send("s-4", 1), send("s-4", 2), send("s-5", 1)), 5),
        ((Delete(project_id=7, name="S", reason="r", session_id="s-1", message_count=0),), 2),
        ((react("s-4", 3, message_id=9), react("s-4", 4, message_id=10)), 2),
        ((send("s-4", 1), react("s-4", 1), react("s-4", 2), react(None, 1)), 7),
    ],
    ids=["rename", "create", "sends-into-a-new-conversation",
         "sends-read-each-live-conversation-once", "delete-reads-its-transcript-first",
         "reactions-to-messages-there", "reactions-after-sends-read-each-conversation-once"],
)
def test_each_operation_costs_its_requests(operations: tuple[Operation, ...],
                                           requests: int) -> None:
    assert apply_requests(plan_of(*operations)) == requests


def test_only_sends_use_query_credits() -> None:
    plan = plan_of(Create(project_id=7, name="N", reason="r"), send(None, 1), send("s-4", 1),
                   react("s-4", 1), react("s-4", 2, message_id=3),
                   Delete(project_id=7, name="S", reason="r", session_id="s-1", message_count=0))
    assert sends(plan) == 2


def test_the_budget_line_says_what_applying_needs_and_how_long_it_takes() -> None:
    budget = Budget(requests_made=3, apply_requests=120, credits_needed=2, credits_left=None)
    assert budget_line(budget, rate=60) == (
        "Budget: 3 API request(s) made; applying needs about 120 (2.0 min at 60 requests/min). "
        "Its sends use 2 query credit(s); the API reported no limit.")
    assert duration(0.5) == "under a second"
