"""Checking a plan's preconditions against fresh live state before anything is applied.

Reads what the preconditions need (a listing or the names the plan gives, and the transcripts
its operations ask for) and asks each operation whether it still holds (each kind decides, in
`reconciler.plan.operations`): `apply --plan` checks a saved plan with it, `apply -f` checks its
fresh plan again when a person took time to confirm (a delete checks itself once more right
before the DELETE). The result names each stale operation and what changed, so that nothing of
a stale plan is applied, and counts what each project has live now for the mass-delete guard
(`reconciler.plan.guards.LiveCount`), so that a saved plan is judged by numbers it cannot lie
about, from the same read.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from reconciler.api.live import Conversation
from reconciler.api.lookup import lookup_query
from reconciler.api.protocol import ConversationApi, listing_filter, read_transcripts
from reconciler.plan.guards import LiveCount
from reconciler.plan.match import in_scope
from reconciler.plan.model import IGNORED, LiveRead, Plan, ProjectPlan
from reconciler.plan.operations import Delete, LiveView
from reconciler.text import normal_form


@dataclass(frozen=True)
class LiveCheck:
    """A plan checked against fresh live state: one line per stale operation ([] when none),
    and what each project with operations has live now (by project id)."""

    stale: list[str]
    counts: dict[int, LiveCount]


async def check_live(client: ConversationApi, plan: Plan) -> LiveCheck:
    """Read what `plan`'s preconditions need, check each operation against it, and count each
    project's live conversations for the guard (a project that deletes is listed whole)."""
    user = await client.current_user()
    projects = [p for p in plan.projects if p.operations]
    per_project = await asyncio.gather(*(_check_project(client, p, user.id) for p in projects))
    return LiveCheck(stale=[line for lines, _ in per_project for line in lines],
                     counts={projects[i].project_id: count
                             for i, (_, count) in enumerate(per_project)})


async def find_stale(client: ConversationApi, plan: Plan) -> list[str]:
    """One line per operation of `plan` whose precondition no longer holds ([] when none)."""
    return (await check_live(client, plan)).stale


async def _check_project(
    client: ConversationApi, project: ProjectPlan, user_id: str
) -> tuple[list[str], LiveCount]:
    scope = project.scope
    listing = await _current(client, project, listing_filter(scope))
    by_session = {c.session_id: c for c in listing}
    holders: dict[str, set[str]] = defaultdict(set)
    scoped: set[str] = set()
    for conv in listing:
        if in_scope(conv, scope, user_id):
            holders[normal_form(conv.name)].add(conv.session_id)
            scoped.add(conv.session_id)
    ignored = {u.session_id for u in project.unmanaged if u.why == IGNORED}
    count = LiveCount(in_scope=len(scoped), managed=frozenset(scoped - ignored))
    transcripts = await read_transcripts(
        client, project.project_id, _transcripts_needed(project, by_session))
    live = LiveView(
        by_session=by_session,
        holders={name: frozenset(sessions) for name, sessions in holders.items()},
        transcripts=transcripts,
        vacating=frozenset(op.session_id for op in project.operations
                           if op.vacates and op.session_id),
    )
    stale = [f"{op.key}: {why}" for op in project.operations if (why := op.why_stale(live))]
    return stale, count


async def _current(
    client: ConversationApi, project: ProjectPlan, user_filter: str
) -> list[Conversation]:
    """The project's live conversations as far as its preconditions need them: its listing, or,
    for a plan made by name (prune off: no deletes), the conversations holding the names its
    creates and renames give, looked up the way the plan was made (`reconciler.api.lookup`).
    A project that deletes is listed whole, whatever its plan says: the guard counts it."""
    wanted = {normal_form(op.name) for op in project.operations if op.gives_name}
    queries = {lookup_query(name) for name in wanted}
    deletes = any(isinstance(op, Delete) for op in project.operations)
    if project.live_read is not LiveRead.BY_NAME or deletes or None in queries:
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
