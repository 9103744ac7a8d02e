"""Checking a plan's preconditions against fresh live state before anything is applied.

Reads what the preconditions need (a listing or the names the plan gives, and the transcripts
its operations ask for) and asks each operation whether it still holds (each kind decides, in
`reconciler.plan.operations`): `apply --plan` checks a saved plan with it, `apply -f` checks its
fresh plan again when a person took time to confirm (a delete checks itself once more right
before the DELETE). The result names each stale operation and what changed, so that nothing of
a stale plan is applied.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping

from reconciler.api.live import Conversation
from reconciler.api.lookup import lookup_query
from reconciler.api.protocol import ConversationApi, listing_filter, read_transcripts
from reconciler.desired.model import Scope
from reconciler.plan.match import in_scope
from reconciler.plan.model import BY_NAME, Plan, ProjectPlan
from reconciler.plan.operations import LiveView
from reconciler.text import normal_form


async def find_stale(client: ConversationApi, plan: Plan) -> list[str]:
    """One line per operation of `plan` whose precondition no longer holds ([] when none)."""
    user = await client.current_user()
    per_project = await asyncio.gather(
        *(_stale_in_project(client, p, user.id) for p in plan.projects if p.operations)
    )
    return [line for lines in per_project for line in lines]


async def _stale_in_project(
    client: ConversationApi, project: ProjectPlan, user_id: str
) -> list[str]:
    scope = Scope(project.scope)
    listing = await _current(client, project, listing_filter(scope))
    by_session = {c.session_id: c for c in listing}
    holders: dict[str, set[str]] = defaultdict(set)
    for conv in listing:
        if in_scope(conv, scope, user_id):
            holders[normal_form(conv.name)].add(conv.session_id)
    transcripts = await read_transcripts(
        client, project.project_id, _transcripts_needed(project, by_session))
    live = LiveView(
        by_session=by_session,
        holders={name: frozenset(sessions) for name, sessions in holders.items()},
        transcripts=transcripts,
        vacating=frozenset(op.session_id for op in project.operations
                           if op.vacates and op.session_id),
    )
    return [f"{op.key}: {why}" for op in project.operations if (why := op.why_stale(live))]


async def _current(
    client: ConversationApi, project: ProjectPlan, user_filter: str
) -> list[Conversation]:
    """The project's live conversations as far as its preconditions need them: its listing, or,
    for a plan made by name (prune off: no deletes), the conversations holding the names its
    creates and renames give, looked up the way the plan was made (`reconciler.api.lookup`)."""
    wanted = {normal_form(op.name) for op in project.operations if op.gives_name}
    queries = {lookup_query(name) for name in wanted}
    if project.live_read != BY_NAME or None in queries:
        return await client.list_conversations(project.project_id, user_filter=user_filter)
    answers = await asyncio.gather(*(
        client.list_conversations(project.project_id, user_filter=user_filter, name=query)
        for query in sorted(q for q in queries if q is not None)))
    found = {c.session_id: c for answer in answers for c in answer
             if normal_form(c.name) in wanted}
    return list(found.values())


def _transcripts_needed(project: ProjectPlan, listed: Mapping[str, Conversation]) -> list[str]:
    """Sessions whose preconditions need a transcript (each operation says which), given the
    conversations `listed`."""
    return [session for op in project.operations
            if (session := op.transcript_needed(listed)) is not None]
