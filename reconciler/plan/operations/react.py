"""A react: gives the answer of a declared message the reaction declared for it (the API's
feedback on a message)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

from reconciler.api.live import Conversation
from reconciler.api.send_identity import send_external_id, sent_copy
from reconciler.desired.model import Reaction
from reconciler.plan.field_changes import describe_changes
from reconciler.plan.operations.base import (
    Action,
    Applied,
    ApplyContext,
    LiveView,
    Operation,
    changed_since,
    present,
)
from reconciler.text import shown


@dataclass(frozen=True)
class React(Operation):
    """Set the reaction of declared message `position` of conversation `name` to `reaction`:
    message `message_id` of `session_id`, whose reaction was `before` when planned (None: it
    had none); or, `message_id` None, the message a send of this plan makes for that position,
    in `session_id` or (None) in the conversation this plan creates under `name`.

    Must still hold, for a message that exists: the conversation still holds message
    `message_id`, and its reaction is still `before`. For the message a send of this plan
    makes: what the send requires. That message is found after the send by the send's
    external id or, where the service does not echo external ids, as copy `occurrence` of the
    prompt in the transcript.
    """

    action = Action.REACT
    symbol = "*"
    color = "35"
    summary_rank = 3
    requests = 1
    after_duplicate_check = True  # after the sends: a reaction needs its message
    sequential = True
    skipped_in_sequence = "skipped: an earlier reaction in this conversation was not set"

    session_id: str | None
    prompt: str
    position: int
    reaction: Reaction
    message_id: int | None = None
    before: Reaction | None = None
    occurrence: int | None = None  # the message a send makes: which copy of the prompt

    def _distinct(self) -> str:
        return f"#{self.position}"

    @property
    def requirement(self) -> str:
        if self.message_id is None:
            return "the message is sent by this plan"
        return (f"session {self.session_id} still holds message {self.message_id}, and its "
                f"reaction is still {_word(self.before)}")

    def describe(self) -> str:
        change = (f"{self.reaction.value} once sent" if self.message_id is None
                  else f"{_word(self.before)} -> {self.reaction.value}")
        return (f"react  {shown(self.name)} message {self.position}: {change}  "
                f"({self.session_id or 'new'})")

    def why_stale(self, live: LiveView) -> str:
        if self.message_id is None or self.session_id is None:
            return ""  # the message a send of this plan makes: the send decides
        transcript = live.transcripts.get(self.session_id)
        if transcript is None:
            return f"session {self.session_id} no longer exists"
        found = [m for m in transcript.messages if m.id == self.message_id]
        if not found:
            return f"message {self.message_id} is no longer in session {self.session_id}"
        if not found[0].reaction_shown:
            return "the API no longer shows the message's reaction"
        return changed_since(describe_changes({"reaction": _word(self.before)},
                                              {"reaction": _word(found[0].reaction)}))

    def transcript_needed(self, listed: Mapping[str, Conversation]) -> str | None:
        return None if self.message_id is None else self.session_id

    def waits_for(self) -> str | None:
        return self.name if self.session_id is None else None

    def reads_once(self) -> tuple[int, str] | None:
        """The reaction to a message a send of this plan makes first reads the conversation's
        messages to find it (once per conversation)."""
        if self.message_id is not None:
            return None
        return self.project_id, f"{self.session_id or self.name}#messages"

    def to_dict(self) -> dict[str, Any]:
        return present(
            key=self.key, action=self.action.value, project_id=self.project_id, name=self.name,
            session_id=self.session_id, prompt=self.prompt, position=self.position,
            reaction=self.reaction.value, message_id=self.message_id,
            occurrence=self.occurrence, reason=self.reason,
            precondition=present(description=self.requirement,
                                 session_id=None if self.message_id is None else self.session_id,
                                 message_id=self.message_id,
                                 reaction=None if self.before is None else self.before.value),
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        before = data["precondition"].get("reaction")
        return cls(project_id=int(data["project_id"]), name=data["name"], reason=data["reason"],
                   session_id=data.get("session_id"), prompt=data["prompt"],
                   position=data["position"], reaction=Reaction(data["reaction"]),
                   message_id=data.get("message_id"),
                   before=None if before is None else Reaction(before),
                   occurrence=data.get("occurrence"))

    async def apply(self, context: ApplyContext) -> Applied:
        """Set the reaction; for the message a send of this run made, first find it among the
        conversation's messages (read once per conversation, shared through its cursor)."""
        session_id = self.session_id or context.created[self.name]
        message_id = self.message_id
        if message_id is None:
            message_id = await self._sent_message(context, session_id)
            if message_id is None:
                return Applied(f"not set: message {self.position} is not in the conversation "
                               "(its send was not done)", session_id=session_id, failed=True)
        await context.api.set_reaction(self.project_id, session_id, message_id, self.reaction)
        return Applied(f"set the reaction to message {self.position} to {self.reaction.value}",
                       session_id=session_id)

    async def _sent_message(self, context: ApplyContext, session_id: str) -> int | None:
        """The id of the message the send of this position made, None when there is none."""
        cursor = context.cursor
        if cursor.messages is None:
            transcript = await context.api.get_transcript(self.project_id, session_id)
            cursor.messages = transcript.messages
        own = send_external_id(self.project_id, session_id, self.position, self.prompt)
        sent = sent_copy(cursor.messages, own, self.prompt, occurrence=self.occurrence or 1)
        return None if sent is None else sent.id


def _word(reaction: Reaction | None) -> str:
    return "none" if reaction is None else reaction.value
