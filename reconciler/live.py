"""Live state: what the CustomGPT.ai API says exists, as typed immutable data.

Built by `reconciler.client` from API responses; read by the planner.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Conversation:
    """A live conversation. `created_by` is None for anonymous visitors' conversations."""

    id: int
    session_id: str
    name: str
    project_id: int
    created_by: str | None
    created_at: str
    updated_at: str


@dataclass(frozen=True, slots=True)
class Message:
    """One exchange of a conversation: the prompt a user sent and the answer it got, and the
    `external_id` of the send when the server echoed one."""

    id: int
    user_query: str
    openai_response: str
    created_at: str
    external_id: str | None = None


@dataclass(frozen=True, slots=True)
class Transcript:
    """A conversation with every one of its messages, oldest first."""

    conversation: Conversation
    messages: tuple[Message, ...]


@dataclass(frozen=True, slots=True)
class User:
    """The user the API key belongs to."""

    id: str
    name: str
    email: str


@dataclass(frozen=True, slots=True)
class Project:
    """A CustomGPT.ai project (agent)."""

    id: int
    name: str


@dataclass(frozen=True, slots=True)
class ProjectLive:
    """What one project has live, as read for planning.

    `conversations` is the listing the project's scope asked for (possibly wider than the scope:
    the planner filters); `pinned` holds pinned conversations found outside that listing, and
    `transcripts` the prompts already sent, for the conversations whose messages matter.
    """

    project_id: int
    user_id: str
    conversations: tuple[Conversation, ...]
    pinned: dict[str, Conversation]
    transcripts: dict[str, tuple[str, ...]]
