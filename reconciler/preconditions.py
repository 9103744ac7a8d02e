"""Checking a saved plan against fresh live state before anything is applied (DESIGN §5).

Every operation's precondition is re-read; the result names each stale operation and what
changed, so that `apply --plan` can refuse to apply any of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from reconciler.client import Client
from reconciler.desired import Scope
from reconciler.diff import describe_changes
from reconciler.live import Conversation, Transcript
from reconciler.match import in_scope, listing_filter
from reconciler.plan import Action, Operation, Plan, ProjectPlan
from reconciler.planner import read_transcripts


async def find_stale(client: Client, plan: Plan) -> list[str]:
    """One line per operation of `plan` whose precondition no longer holds ([] when none)."""
    user = await client.current_user()
    per_project = await asyncio.gather(
        *(_stale_in_project(client, p, user.id) for p in plan.projects if p.operations)
    )
    return [line for lines in per_project for line in lines]


async def _stale_in_project(client: Client, project: ProjectPlan, user_id: str) -> list[str]:
    scope = Scope(project.scope)
    listing = await client.list_conversations(project.project_id,
                                              user_filter=listing_filter(scope))
    by_session = {c.session_id: c for c in listing}
    scoped_names = {c.name for c in listing if in_scope(c, scope, user_id)}
    transcripts = await read_transcripts(
        client, project.project_id, _transcripts_needed(project, by_session))
    stale = []
    for op in project.operations:
        why = _why_stale(op, by_session, scoped_names, transcripts)
        if why:
            stale.append(f"{op.key}: {why}")
    return stale


def _transcripts_needed(project: ProjectPlan, listed: Mapping[str, Conversation]) -> list[str]:
    """Sessions whose preconditions need a transcript: deletes (message count), sends (the
    prompt), and renames of a pinned conversation the listing does not hold."""
    return [
        op.session_id for op in project.operations
        if op.session_id and (op.action is not Action.RENAME or op.session_id not in listed)
    ]


def _why_stale(
    op: Operation,
    by_session: Mapping[str, Conversation],
    scoped_names: set[str],
    transcripts: Mapping[str, Transcript | None],
) -> str:
    pre = op.precondition
    if op.action is Action.CREATE:
        return f"a conversation named {pre.name!r} now exists" if pre.name in scoped_names else ""
    if op.session_id is None:  # a send into a conversation this plan creates
        return ""
    transcript = transcripts.get(op.session_id)
    live = by_session.get(op.session_id) or (transcript.conversation if transcript else None)
    if live is None or (transcript is None and op.action is not Action.RENAME):
        return f"session {op.session_id} no longer exists"
    if op.action is Action.SEND:
        assert transcript is not None
        prompts = [m.user_query for m in transcript.messages]
        return "the prompt has been sent since the plan was made" if pre.prompt in prompts else ""
    expected: dict[str, object] = {"name": pre.name}
    actual: dict[str, object] = {"name": live.name}
    if op.action is Action.DELETE:
        assert transcript is not None
        expected["messages"] = pre.message_count
        actual["messages"] = len(transcript.messages)
    changes = describe_changes(expected, actual)
    return "changed since the plan was made: " + "; ".join(changes) if changes else ""
