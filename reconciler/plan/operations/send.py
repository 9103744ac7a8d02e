"""A send: a declared message not yet in a conversation's transcript, sent as a prompt.

A send's `external_id` is its identity (`send_external_id`), followed, when the conversation
declares values for its sends (persona, response source, custom context, agent capability,
model), by a short digest of each (`external_id_carrying`): where the service echoes external
ids, a plan can then tell which values a message was sent with (`carried_values`), and say
when a declared value differs from what the messages already sent carried.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

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
from reconciler.text import normal_form, shown


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
    sequential = "skipped: an earlier message of this conversation was not sent"

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
        prompt = normal_form(self.prompt)
        own = send_external_id(self.project_id, self.session_id, self.position, prompt)
        sent = sum(normal_form(m.user_query) == prompt or sent_identity(m.external_id) == own
                   for m in transcript.messages)
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
        thread = context.thread
        newest_id = 0 if thread.newest_id is None and self.session_id is None else thread.newest_id
        identity = send_external_id(self.project_id, session_id, self.position, self.prompt)
        message = await context.api.send_message(
            self.project_id, session_id, self.prompt, persona=self.persona,
            response_source=self.response_source, lang=self.lang, newest_id=newest_id,
            external_id=external_id_carrying(identity, self.values()),
            custom_context=self.custom_context, agent_capability=self.agent_capability,
            chatbot_model=self.chatbot_model,
        )
        thread.newest_id = message.id
        return Applied(f"sent message {self.position}", session_id=session_id, answer=message)


def send_external_id(project_id: int, session_id: str, position: int, prompt: str) -> str:
    """The `external_id` of a send: derived from what it is (project, conversation, position
    of the message, prompt), so that every attempt of one send carries the same id, a check
    after an ambiguous failure can find it, and a plan can tell the message it made whatever
    the service did to the prompt. 47 characters (the API allows 128)."""
    digest = hashlib.sha256(
        f"{project_id}\n{session_id}\n{position}\n{prompt}".encode()).hexdigest()
    return f"reconciler-{digest[:36]}"


_IDENTITY_LENGTH = len("reconciler-") + 36
_DIGEST_LENGTH = 6
_UNSET = "x" * _DIGEST_LENGTH


def value_digest(value: str) -> str:
    """What an external id records of a declared send value: 6 hex digits of its sha256."""
    return hashlib.sha256(value.encode()).hexdigest()[:_DIGEST_LENGTH]


def external_id_carrying(identity: str, values: Mapping[str, str]) -> str:
    """The `external_id` of a send with identity `identity` (`send_external_id`) carrying
    `values` (by `SEND_VALUES` field): the identity alone when there are none, else followed by
    "-" and each field's digest in `SEND_VALUES` order ("xxxxxx": not set). 78 characters."""
    if not values:
        return identity
    return identity + "-" + "".join(
        value_digest(values[key]) if key in values else _UNSET for key in SEND_VALUES)


def sent_identity(external_id: str | None) -> str | None:
    """The identity (`send_external_id`) in an external id a send of reconciler carried; the
    external id itself when it is not one of those."""
    if external_id is not None and external_id.startswith("reconciler-") and \
            len(external_id) == _IDENTITY_LENGTH + 1 + _DIGEST_LENGTH * len(SEND_VALUES):
        return external_id[:_IDENTITY_LENGTH]
    return external_id


def carried_values(external_id: str | None) -> dict[str, str] | None:
    """What a message sent by reconciler says it carried: each `SEND_VALUES` field's digest
    (`value_digest`, "" when not set). None when its external id does not say (not
    reconciler's, or sent without declared values)."""
    if external_id is None or sent_identity(external_id) == external_id:
        return None
    tail = external_id[_IDENTITY_LENGTH + 1:]
    digests = [tail[i:i + _DIGEST_LENGTH] for i in range(0, len(tail), _DIGEST_LENGTH)]
    return {key: "" if digest == _UNSET else digest
            for key, digest in zip(SEND_VALUES, digests, strict=True)}


def _clip(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
