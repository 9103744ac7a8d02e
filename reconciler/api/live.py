"""Live state: what the CustomGPT.ai API says exists, as typed immutable data.

Built by `reconciler.api.client` from API responses; read by the planner.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeGuard

from reconciler.desired.model import Reaction

_SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


def is_session_id(value: object) -> TypeGuard[str]:
    """True when `value` can be a session id: 1 to 128 ASCII letters, digits, '-' or '_',
    starting with a letter or digit (a UUID is one).

    The one check of an identifier that reaches a file name, a URL path or a terminal: it
    cannot hold '/', '.', '..', NUL, control characters or anything a shell or terminal reads.
    """
    return isinstance(value, str) and _SESSION_ID.fullmatch(value) is not None


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
    """One exchange of a conversation: the prompt a user sent and the answer it got, the
    `external_id` of the send when the server echoed one, and the reaction its answer was
    given (None: none, or, when `reaction_shown` is False, the server did not say), and the ids
    of the sources its answer cites."""

    id: int
    user_query: str
    openai_response: str
    created_at: str
    external_id: str | None = None
    reaction: Reaction | None = None
    reaction_shown: bool = False
    citations: tuple[int, ...] = ()


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
    the planner filters), or with `by_name` only the conversations named as the project
    declares; `pinned` holds pinned conversations found outside it, and `transcripts` the
    messages already sent, for the conversations whose messages matter. `last_page` is the
    number of pages of the whole listing (0 when unknown).
    """

    conversations: tuple[Conversation, ...]
    pinned: dict[str, Conversation]
    transcripts: dict[str, tuple[Message, ...]]
    by_name: bool = False
    last_page: int = 0


@dataclass(frozen=True, slots=True)
class QueryCredits:
    """The account's query credits: each sent message spends one. `limit` None: the API
    reported no limit."""

    limit: int | None
    used: int

    @property
    def left(self) -> int | None:
        """Credits left (never below 0); None when there is no limit."""
        return None if self.limit is None else max(0, self.limit - self.used)


@dataclass(frozen=True, slots=True)
class ProjectSettings:
    """What reconciler reads of a project's settings: its "I don't know" message (None: none,
    or not text), and how long it keeps conversations (None: not asked for)."""

    no_answer_message: str | None
    retention: Retention | None = None


@dataclass(frozen=True, slots=True)
class Retention:
    """How long a project keeps its conversations (its settings'
    `conversation_retention_period` and `_days`): `days` None when it keeps them for ever.
    The service deletes older conversations for good, with their messages."""

    days: int | None


@dataclass(frozen=True, slots=True)
class CitedSource:
    """A source an answer cites, as the API describes it (its page metadata): its id, and its
    title and URL (None: missing, not text, or implausibly long). Both are the API's words,
    untrusted: shown escaped, never followed."""

    id: int
    title: str | None
    url: str | None
