"""A rename: gives a live conversation the declared name (pinned, or `renamed_from`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

from reconciler.api.live import Conversation
from reconciler.plan.field_changes import describe_changes
from reconciler.plan.operations.base import (
    Action,
    Applied,
    ApplyContext,
    LiveView,
    Operation,
    changed_since,
)
from reconciler.text import shown


@dataclass(frozen=True)
class Rename(Operation):
    """Rename `session_id`, named `old_name` when planned, to `name`.

    Must still hold: the conversation exists and is still named `old_name`, and no other
    conversation in scope is named `name` (one this plan renames or deletes does not count).
    """

    action = Action.RENAME
    symbol = "~"
    color = "33"
    summary_rank = 1
    requests = 1
    gives_name = True
    vacates = True

    session_id: str
    old_name: str

    @property
    def requirement(self) -> str:
        return (f"session {self.session_id} is still named {self.old_name!r}, and no other "
                f"conversation in scope is named {self.name!r}")

    def describe(self) -> str:
        return f"rename {shown(self.old_name)} -> {shown(self.name)}  ({self.session_id})"

    def why_stale(self, live: LiveView) -> str:
        current = live.conversation(self.session_id)
        if current is None:
            return f"session {self.session_id} no longer exists"
        changes = describe_changes({"name": self.old_name}, {"name": current.name})
        if changes:
            return changed_since(changes)
        taken = live.taken_by(self.name, besides=self.session_id)
        if taken:
            return (f"the new name {shown(self.name)} has been taken since the plan was made "
                    f"({', '.join(taken)})")
        return ""

    def transcript_needed(self, listed: Mapping[str, Conversation]) -> str | None:
        """A pinned conversation the listing does not hold is read by its transcript."""
        return None if self.session_id in listed else self.session_id

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key, "action": self.action.value, "project_id": self.project_id,
            "name": self.name, "session_id": self.session_id, "old_name": self.old_name,
            "reason": self.reason,
            "precondition": {"description": self.requirement, "name": self.old_name,
                             "session_id": self.session_id},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(project_id=int(data["project_id"]), name=data["name"], reason=data["reason"],
                   session_id=data["session_id"], old_name=data["old_name"])

    async def apply(self, context: ApplyContext) -> Applied:
        await context.api.rename_conversation(self.project_id, self.session_id, self.name)
        return Applied(f"renamed from {self.old_name!r}", session_id=self.session_id)
