"""Checking a plan's preconditions against fresh live state before anything is applied.

The one place that decides, per action, whether an operation may still be applied (the
`Precondition` docstring in `reconciler.plan.model` says the same in words): `apply --plan` checks a
saved plan with it, `apply -f` checks its fresh plan again when a person took time to confirm,
and `apply` asks `delete_changes` once more right before each delete. The result names each
stale operation and what changed, so that nothing of a stale plan is applied.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from reconciler.api.live import Conversation, Transcript
from reconciler.api.lookup import lookup_query
from reconciler.api.protocol import ConversationApi, read_transcripts
from reconciler.desired.model import Scope
from reconciler.plan.field_changes import describe_changes
from reconciler.plan.match import in_scope, listing_filter
from reconciler.plan.model import BY_NAME, Action, Operation, Plan, ProjectPlan, send_external_id
from reconciler.text import normal_form, shown


@dataclass(frozen=True)
class LiveView:
    """What one project has live now, as far as its plan's preconditions need it.

    `holders` maps each name to the in-scope sessions that have it; `vacating` holds the
    sessions the plan renames or deletes (their own preconditions pin their current names, so
    they never count as holding a name the plan gives to another conversation).
    """

    by_session: Mapping[str, Conversation]
    holders: Mapping[str, frozenset[str]]
    transcripts: Mapping[str, Transcript | None]
    vacating: frozenset[str]

    def conversation(self, session_id: str) -> Conversation | None:
        """The live conversation, from the listing or (pinned elsewhere) its transcript."""
        transcript = self.transcripts.get(session_id)
        return self.by_session.get(session_id) or (transcript.conversation if transcript else None)

    def taken_by(self, name: str, *, besides: str | None = None) -> list[str]:
        """The in-scope sessions (other than `besides` and those the plan renames or deletes)
        named `name` (in normal form)."""
        return sorted(self.holders.get(normal_form(name), frozenset()) - self.vacating
                      - {besides})


async def find_stale(client: ConversationApi, plan: Plan) -> list[str]:
    """One line per operation of `plan` whose precondition no longer holds ([] when none)."""
    user = await client.current_user()
    per_project = await asyncio.gather(
        *(_stale_in_project(client, p, user.id) for p in plan.projects if p.operations)
    )
    return [line for lines in per_project for line in lines]


def why_stale(op: Operation, live: LiveView) -> str:
    """Why `op` may no longer be applied to `live` ("" when its precondition holds)."""
    return _CHECKS[op.action](op, live)


def delete_changes(op: Operation, transcript: Transcript) -> list[str]:
    """What changed in a delete's conversation since the plan ([] when nothing did)."""
    expected = {"name": op.precondition.name, "messages": op.precondition.message_count}
    actual = {"name": transcript.conversation.name, "messages": len(transcript.messages)}
    return describe_changes(expected, actual)


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
                           if op.action in (Action.RENAME, Action.DELETE) and op.session_id),
    )
    return [f"{op.key}: {why}" for op in project.operations if (why := why_stale(op, live))]


async def _current(
    client: ConversationApi, project: ProjectPlan, user_filter: str
) -> list[Conversation]:
    """The project's live conversations as far as its preconditions need them: its listing, or,
    for a plan made by name (prune off: no deletes), the conversations holding the names its
    creates and renames give, looked up the way the plan was made (`reconciler.api.lookup`)."""
    wanted = {normal_form(op.name) for op in project.operations
              if op.action in (Action.CREATE, Action.RENAME)}
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
    """Sessions whose preconditions need a transcript: deletes (message count), sends (the
    prompt), and renames of a pinned conversation the listing does not hold."""
    return [
        op.session_id for op in project.operations
        if op.session_id and (op.action is not Action.RENAME or op.session_id not in listed)
    ]


def _create(op: Operation, live: LiveView) -> str:
    taken = live.taken_by(op.name)
    return f"a conversation named {shown(op.name)} now exists ({', '.join(taken)})" if taken else ""


def _rename(op: Operation, live: LiveView) -> str:
    assert op.session_id is not None
    current = live.conversation(op.session_id)
    if current is None:
        return f"session {op.session_id} no longer exists"
    changes = describe_changes({"name": op.precondition.name}, {"name": current.name})
    if changes:
        return "changed since the plan was made: " + "; ".join(changes)
    taken = live.taken_by(op.name, besides=op.session_id)
    if taken:
        return (f"the new name {shown(op.name)} has been taken since the plan was made "
                f"({', '.join(taken)})")
    return ""


def _send(op: Operation, live: LiveView) -> str:
    if op.session_id is None:  # into a conversation this plan creates: its create decides
        return ""
    transcript = live.transcripts.get(op.session_id)
    if transcript is None:
        return f"session {op.session_id} no longer exists"
    pre = op.precondition
    changes = describe_changes({"name": pre.name}, {"name": transcript.conversation.name})
    if changes:
        return "changed since the plan was made: " + "; ".join(changes)
    prompt = normal_form(pre.prompt or "")
    own = send_external_id(op.project_id, op.session_id, op.position or 0, prompt)
    sent = sum(normal_form(m.user_query) == prompt or m.external_id == own
               for m in transcript.messages)
    if sent != pre.occurrences:
        return (f"the prompt has been sent since the plan was made: it is in the transcript "
                f"{sent} time(s), {pre.occurrences} when planned")
    return ""


def _delete(op: Operation, live: LiveView) -> str:
    assert op.session_id is not None
    transcript = live.transcripts.get(op.session_id)
    if transcript is None:
        return f"session {op.session_id} no longer exists"
    changes = delete_changes(op, transcript)
    return "changed since the plan was made: " + "; ".join(changes) if changes else ""


_CHECKS: dict[Action, Callable[[Operation, LiveView], str]] = {
    Action.CREATE: _create,
    Action.RENAME: _rename,
    Action.SEND: _send,
    Action.DELETE: _delete,
}
