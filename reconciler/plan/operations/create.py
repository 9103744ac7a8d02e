"""A create: a new conversation with a declared name."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

from reconciler.plan.operations.base import Action, Applied, ApplyContext, LiveView, Operation
from reconciler.text import shown


@dataclass(frozen=True)
class Create(Operation):
    """Create a conversation named `name`.

    Must still hold: no conversation in scope is named `name` (one this plan renames or deletes
    does not count).
    """

    action = Action.CREATE
    symbol = "+"
    color = "32"
    summary_rank = 0
    requests = 1
    gives_name = True
    creates = True

    session_id: None = None

    @property
    def requirement(self) -> str:
        return f"no conversation named {self.name!r} in scope"

    def describe(self) -> str:
        return f"create {shown(self.name)}"

    def why_stale(self, live: LiveView) -> str:
        taken = live.taken_by(self.name)
        return (f"a conversation named {shown(self.name)} now exists ({', '.join(taken)})"
                if taken else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key, "action": self.action.value, "project_id": self.project_id,
            "name": self.name, "reason": self.reason,
            "precondition": {"description": self.requirement, "name": self.name},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(project_id=int(data["project_id"]), name=data["name"], reason=data["reason"])

    async def apply(self, context: ApplyContext) -> Applied:
        conversation = await context.api.create_conversation(self.project_id, self.name)
        return Applied("created", session_id=conversation.session_id)
