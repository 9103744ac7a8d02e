"""Making a plan: read live state through the client, match, and build (DESIGN §3, §4).

The only async orchestration of planning; matching and building are pure (`match`,
`planning`). Errors of one project (404, ambiguity, a failed listing) are collected in its plan
and never stop the others; a rejected API key stops everything.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from reconciler.client import Client
from reconciler.desired import DesiredState, ProjectSpec
from reconciler.errors import ApiError, AuthError, NotFoundError
from reconciler.guards import GuardLimits, with_guards
from reconciler.live import Conversation, ProjectLive, Transcript
from reconciler.match import Matching, listing_filter, match_project
from reconciler.plan import Plan, ProjectPlan
from reconciler.planning import build_project_plan, deletion_candidates


async def make_plan(
    client: Client, desired: DesiredState, *, limits: GuardLimits, api: str = ""
) -> Plan:
    """Plan every project of `desired` against the live API, with the errors of the guards
    under `limits`; `api` names where that is.

    Raises AuthError when the key is rejected; every other API failure becomes an error of the
    project it concerns.
    """
    user = await client.current_user()
    projects = await asyncio.gather(
        *(_plan_project(client, spec, user_id=user.id) for spec in desired.projects)
    )
    return with_guards(Plan(projects=tuple(projects), api=api), limits)


async def read_project(client: Client, spec: ProjectSpec, *, user_id: str) -> ProjectLive:
    """The listing for `spec`'s scope, plus any pinned conversation found outside it."""
    listing = await client.list_conversations(spec.id, user_filter=listing_filter(spec.scope))
    listed = {conv.session_id for conv in listing}
    missing = [
        c.session_id for c in spec.conversations if c.session_id and c.session_id not in listed
    ]
    pinned: dict[str, Conversation] = {}
    transcripts: dict[str, tuple[str, ...]] = {}
    for session_id, transcript in (await read_transcripts(client, spec.id, missing)).items():
        if transcript is not None:
            pinned[session_id] = transcript.conversation
            transcripts[session_id] = tuple(m.user_query for m in transcript.messages)
    return ProjectLive(project_id=spec.id, user_id=user_id, conversations=tuple(listing),
                       pinned=pinned, transcripts=transcripts)


async def _plan_project(client: Client, spec: ProjectSpec, *, user_id: str) -> ProjectPlan:
    try:
        live = await read_project(client, spec, user_id=user_id)
        matching = match_project(spec, live.conversations, user_id=user_id, pinned=live.pinned)
        transcripts = dict(live.transcripts)
        needed = [s for s in _transcripts_needed(spec, matching) if s not in transcripts]
        for session_id, transcript in (await read_transcripts(client, spec.id, needed)).items():
            # A conversation deleted since the listing has no transcript: plan as if empty.
            queries = () if transcript is None else tuple(m.user_query for m in transcript.messages)
            transcripts[session_id] = queries
        return build_project_plan(spec, matching, transcripts)
    except AuthError:
        raise
    except ApiError as error:
        return _failed(spec, str(error))


def _transcripts_needed(spec: ProjectSpec, matching: Matching) -> list[str]:
    with_messages = [m.live.session_id for m in matching.matches if m.spec.messages]
    return with_messages + deletion_candidates(spec, matching)


async def read_transcripts(
    client: Client, project_id: int, session_ids: Iterable[str]
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


def _failed(spec: ProjectSpec, message: str) -> ProjectPlan:
    return ProjectPlan(project_id=spec.id, label=spec.label, scope=spec.scope.value,
                       errors=(message,))

