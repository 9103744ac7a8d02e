"""What a plan costs in API requests and query credits, as the plan reports it. Pure: no I/O.

The key's requests per minute are shared with its other clients, so a plan says how many
requests it made and about how many applying it needs; sends cost query credits, so it says how
many its sends use and how many the account has left.
"""

from __future__ import annotations

from dataclasses import replace

from reconciler.api.pacer import per_minute
from reconciler.plan.model import Budget, Plan


def apply_requests(plan: Plan) -> int:
    """About how many requests applying `plan`'s operations takes, without failures: each
    operation's own (`requests` of its kind), and the reads its kind makes once per
    conversation."""
    operations = plan.operations
    once = {read for op in operations if (read := op.reads_once()) is not None}
    return sum(op.requests for op in operations) + len(once)


def sends(plan: Plan) -> int:
    """The prompts `plan` sends: the query credits applying it uses (`credits` of each
    operation's kind)."""
    return sum(op.credits for op in plan.operations)


def with_budget(plan: Plan, *, requests_made: int, credits_left: int | None) -> Plan:
    """`plan` with its budget recorded; `credits_left` None: the API reported no limit (or the
    credits were not read)."""
    budget = Budget(requests_made=requests_made, apply_requests=apply_requests(plan),
                    credits_needed=sends(plan), credits_left=credits_left)
    return replace(plan, budget=budget, _checksum=None)


def budget_line(budget: Budget, *, rate: float | None = None) -> str:
    """The plan's budget in one line; `rate` (requests per minute) adds how long apply takes
    at that pace."""
    line = f"Budget: {budget.requests_made} API request(s) made"
    if budget.apply_requests:
        line += f"; applying needs about {budget.apply_requests}"
        if rate:
            seconds = budget.apply_requests / rate * 60
            line += f" ({duration(seconds)} at {per_minute(rate)} requests/min)"
    line += "."
    if budget.credits_needed:
        left = ("the API reported no limit" if budget.credits_left is None
                else f"{budget.credits_left} left")
        line += f" Its sends use {budget.credits_needed} query credit(s); {left}."
    return line


def duration(seconds: float) -> str:
    """`seconds` in words: "under a second", "40 s", "3.5 min", "2.1 h"."""
    if seconds < 1:
        return "under a second"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
