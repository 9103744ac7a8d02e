"""`ConversationApi`: what planning, the stale-plan check, export and apply need of the API.

`reconciler.api.client.Client` implements it over HTTP; the modules above the api layer take a
`ConversationApi`, so that they can be given anything that answers these calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from reconciler.api.decoding import Page
from reconciler.api.live import (
    CitedSource,
    Conversation,
    Message,
    Project,
    ProjectSettings,
    QueryCredits,
    Transcript,
    User,
)
from reconciler.desired.model import Reaction, Scope
from reconciler.errors import NotFoundError

# The listings `list_conversations` reads: the API's `userFilter` values.
USER_FILTERS = ("all", "anonymous", "team_member", "me")


def listing_filter(scope: Scope) -> str:
    """The `userFilter` (the listing's query parameter) whose listing holds every conversation
    `scope` may manage: `me` for "mine" (the client reads it even where the service refuses
    `me`), `team_member` for "team", `all` for "all". The planner still keeps only what
    `reconciler.plan.match.in_scope` says."""
    return {Scope.ALL: "all", Scope.TEAM: "team_member", Scope.MINE: "me"}[scope]


@dataclass
class ClientStats:
    """Counters of one client's work: HTTP attempts made, retries, listings read again,
    requests the API refused for the rate."""

    requests: int = 0
    retries: int = 0
    relists: int = 0
    refusals: int = 0  # answered 429 for the rate (not for query credits)


class ConversationApi(Protocol):
    """The calls of the CustomGPT.ai API that reconciler makes (see `Client` for each)."""

    @property
    def stats(self) -> ClientStats: ...

    async def current_user(self) -> User: ...

    async def query_credits(self) -> QueryCredits | None: ...

    async def get_project(self, project_id: int) -> Project: ...

    async def project_settings(
        self, project_id: int, *, retention: bool = False
    ) -> ProjectSettings | None: ...

    async def citation(self, project_id: int, citation_id: int) -> CitedSource | None: ...

    async def list_conversations(
        self, project_id: int, *, user_filter: str = "all", name: str | None = None,
        first: Page[Conversation] | None = None, throwaways: bool = False,
    ) -> list[Conversation]: ...

    async def conversation_page(
        self, project_id: int, number: int, *, user_filter: str = "all", name: str | None = None
    ) -> Page[Conversation]: ...

    async def get_transcript(self, project_id: int, session_id: str) -> Transcript: ...

    async def create_conversation(self, project_id: int, name: str) -> Conversation: ...

    async def rename_conversation(
        self, project_id: int, session_id: str, name: str
    ) -> Conversation: ...

    async def delete_conversation(self, project_id: int, session_id: str) -> None: ...

    async def send_message(
        self,
        project_id: int,
        session_id: str,
        prompt: str,
        *,
        persona: str | None = None,
        response_source: str | None = None,
        lang: str | None = None,
        newest_id: int | None = None,
        external_id: str | None = None,
        custom_context: str | None = None,
        agent_capability: str | None = None,
        chatbot_model: str | None = None,
    ) -> Message: ...

    async def set_reaction(
        self, project_id: int, session_id: str, message_id: int, reaction: Reaction
    ) -> None: ...


async def read_transcripts(
    client: ConversationApi, project_id: int, session_ids: Iterable[str]
) -> dict[str, Transcript | None]:
    """The transcripts of `session_ids` (read concurrently), None for a conversation that does
    not exist. Raises AuthError, ApiError."""
    sessions = list(dict.fromkeys(session_ids))

    async def one(session_id: str) -> Transcript | None:
        try:
            return await client.get_transcript(project_id, session_id)
        except NotFoundError:
            return None

    found = await asyncio.gather(*(one(s) for s in sessions))
    return dict(zip(sessions, found, strict=True))
