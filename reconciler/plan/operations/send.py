"""A send: a declared message not yet in a conversation's transcript, sent as a prompt.

A send carries its identity as its `external_id`, with the values it is sent with (see
`reconciler.api.send_identity`, which also decides whether a message is that send).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

from reconciler.api.send_identity import external_id_carrying, is_send, send_external_id
from reconciler.desired.model import SEND_VALUES
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
class Send(Operation):
    """Send `prompt`, declared message `position` of conversation `name`, into `session_id`
    (None: the conversation this plan creates under `name`).

    Must still hold: the conversation exists, is still named `live_name`, and `prompt` is in
    its transcript exactly `occurrences` times, as when planned. A send into a conversation the
    plan creates holds when its create does: it waits for the create and is skipped if that
    failed.
    """

    action = Action.SEND
    symbol = ">"
    color = "36"
    summary_rank = 2
    requests = 1
    credits = 1
    after_duplicate_check = True
    sequential = True
    skipped_in_sequence = "skipped: an earlier message of this conversation was not sent"

    session_id: str | None
    prompt: str
    position: int
    persona: str | None = None
    response_source: str | None = None
    lang: str | None = None
    live_name: str | None = None  # the conversation's name when planned (None: new)
    occurrences: int | None = None  # times `prompt` was in its transcript when planned
    custom_context: str | None = None
    agent_capability: str | None = None
    chatbot_model: str | None = None

    def values(self) -> dict[str, str]:
        """The values it is sent with (`SEND_VALUES`), by field."""
        return {key: value for key in SEND_VALUES if (value := getattr(self, key)) is not None}

    def _distinct(self) -> str:
        return f"#{self.position}"

    @property
    def requirement(self) -> str:
        if self.session_id is None:
            return "the conversation is created by this plan"
        return (f"session {self.session_id} is still named {self.live_name!r}, and the prompt "
                f"is in its transcript {self.occurrences} time(s), as when planned")

    def describe(self) -> str:
        return (f"send   {shown(self.name)} message {self.position}: {shown(_clip(self.prompt))}"
                f"  ({self.session_id or 'new'})")

    def why_stale(self, live: LiveView) -> str:
        if self.session_id is None:  # into a conversation this plan creates: its create decides
            return ""
        transcript = live.transcripts.get(self.session_id)
        if transcript is None:
            return f"session {self.session_id} no longer exists"
        stale = changed_since(describe_changes({"name": self.live_name},
                                               {"name": transcript.conversation.name}))
        if stale:
            return stale
        own = send_external_id(self.project_id, self.session_id, self.position, self.prompt)
        sent = sum(is_send(m, own, self.prompt) for m in transcript.messages)
        if sent != self.occurrences:
            return (f"the prompt has been sent since the plan was made: it is in the transcript "
                    f"{sent} time(s), {self.occurrences} when planned")
        return ""

    def waits_for(self) -> str | None:
        return self.name if self.session_id is None else None

    def reads_once(self) -> tuple[int, str] | None:
        """Into a conversation that exists before the apply, it first reads the conversation's
        newest message id (once per conversation)."""
        return None if self.session_id is None else (self.project_id, self.session_id)

    def to_dict(self) -> dict[str, Any]:
        return present(
            key=self.key, action=self.action.value, project_id=self.project_id, name=self.name,
            session_id=self.session_id, prompt=self.prompt, position=self.position,
            persona=self.persona, response_source=self.response_source, lang=self.lang,
            custom_context=self.custom_context, agent_capability=self.agent_capability,
            chatbot_model=self.chatbot_model, reason=self.reason,
            precondition=present(description=self.requirement, name=self.live_name,
                                 session_id=self.session_id, prompt=self.prompt,
                                 occurrences=self.occurrences),
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        precondition = data["precondition"]
        return cls(project_id=int(data["project_id"]), name=data["name"], reason=data["reason"],
                   session_id=data.get("session_id"), prompt=data["prompt"],
                   position=data["position"], persona=data.get("persona"),
                   response_source=data.get("response_source"), lang=data.get("lang"),
                   live_name=precondition.get("name"), occurrences=precondition.get("occurrences"),
                   custom_context=data.get("custom_context"),
                   agent_capability=data.get("agent_capability"),
                   chatbot_model=data.get("chatbot_model"))

    async def apply(self, context: ApplyContext) -> Applied:
        """Send into its conversation, or the one this run created for it; the newest message id
        is carried from send to send (none yet in a conversation this run created), so that
        the client need not read it before each send."""
        session_id = self.session_id or context.created[self.name]
        cursor = context.cursor
        newest_id = 0 if cursor.newest_id is None and self.session_id is None else cursor.newest_id
        identity = send_external_id(self.project_id, session_id, self.position, self.prompt)
        message = await context.api.send_message(
            self.project_id, session_id, self.prompt, persona=self.persona,
            response_source=self.response_source, lang=self.lang, newest_id=newest_id,
            external_id=external_id_carrying(identity, self.values()),
            custom_context=self.custom_context, agent_capability=self.agent_capability,
            chatbot_model=self.chatbot_model,
        )
        cursor.newest_id = message.id
        return Applied(f"sent message {self.position}", session_id=session_id, answer=message)


def _clip(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
