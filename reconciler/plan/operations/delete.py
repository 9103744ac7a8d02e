"""A delete: an undeclared conversation of a project that prunes, after its backup."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

from reconciler.api.live import Transcript
from reconciler.errors import NotFoundError
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
class Delete(Operation):
    """Delete `session_id`, named `name` with `message_count` messages when planned.

    Must still hold: the conversation exists with that name and that many messages; checked
    again right before the DELETE, after its transcript is backed up.
    """

    action = Action.DELETE
    symbol = "-"
    color = "31"
    summary_rank = 4
    # It first reads the transcript it backs up and checks (one page for most conversations).
    requests = 2
    vacates = True
    after_duplicate_check = True
    skipped_after_failure = True
    backs_up = True

    session_id: str
    message_count: int

    @property
    def requirement(self) -> str:
        return (f"session {self.session_id} still exists, named {self.name!r}, "
                f"with {self.message_count} messages")

    def describe(self) -> str:
        return f"delete {shown(self.name)}  ({self.session_id}, {self.message_count} messages)"

    def changes(self, transcript: Transcript) -> list[str]:
        """What changed in its conversation since the plan ([] when nothing did)."""
        return describe_changes({"name": self.name, "messages": self.message_count},
                       {"name": transcript.conversation.name, "messages": len(transcript.messages)})

    def why_stale(self, live: LiveView) -> str:
        transcript = live.transcripts.get(self.session_id)
        if transcript is None:
            return f"session {self.session_id} no longer exists"
        return changed_since(self.changes(transcript))

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key, "action": self.action.value, "project_id": self.project_id,
            "name": self.name, "session_id": self.session_id, "reason": self.reason,
            "precondition": {"description": self.requirement, "name": self.name,
                             "session_id": self.session_id,
                             "message_count": self.message_count},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(project_id=int(data["project_id"]), name=data["name"], reason=data["reason"],
                   session_id=data["session_id"],
                   message_count=data["precondition"]["message_count"])

    async def apply(self, context: ApplyContext) -> Applied:
        """Back up the transcript, check it is still what was planned, then delete."""
        try:
            transcript = await context.api.get_transcript(self.project_id, self.session_id)
        except NotFoundError:
            return Applied("already deleted", session_id=self.session_id)
        changes = self.changes(transcript)
        if changes:
            return Applied("not deleted: changed since the plan (" + "; ".join(changes) + ")",
                           session_id=self.session_id, failed=True)
        try:
            backup = context.backup(self.project_id, transcript)
        except OSError as error:
            return Applied(f"not deleted: the transcript backup could not be written ({error})",
                           session_id=self.session_id, failed=True)
        await context.api.delete_conversation(self.project_id, self.session_id)
        return Applied("deleted", session_id=self.session_id, backup=backup)
