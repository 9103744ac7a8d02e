"""Making a plan: per project, one read stage (`read_for_plan`: the listing or lookups, the
probe, the transcripts the decisions need), then the pure build; then the guards and the
budget over the whole plan.

The only async orchestration of planning; matching and building are pure (`match`,
`build`). Errors of one project (404, ambiguity, a failed listing) are collected in its plan
and never stop the others; a rejected API key stops everything. Where a declared conversation
is missing and the project's retention may have deleted it, the plan says so (its settings are
read only then).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace

from reconciler.api.decoding import Page
from reconciler.api.live import (
    Conversation,
    Message,
    ProjectLive,
    Retention,
    Transcript,
)
from reconciler.api.lookup import by_name_is_cheaper, lookup_names, lookup_query, substring_probe
from reconciler.api.protocol import ConversationApi, listing_filter, read_transcripts
from reconciler.api.send_identity import as_declared
from reconciler.desired.model import ConversationSpec, DesiredState, ProjectSpec
from reconciler.errors import ApiError, AuthError
from reconciler.plan.budget import sends, with_budget
from reconciler.plan.build import build_project_plan, deletion_candidates
from reconciler.plan.credits import credits_left
from reconciler.plan.guards import GuardLimits, with_guards
from reconciler.plan.health import StoredAnswers, StoredConversation
from reconciler.plan.match import Matching, match_project
from reconciler.plan.model import LiveRead, Plan, ProjectPlan
from reconciler.plan.operations import Send
from reconciler.text import normal_form, shown

log = logging.getLogger("reconciler.plan")


async def make_plan(
    client: ConversationApi, desired: DesiredState, *, limits: GuardLimits, api: str = "",
    by_name: bool = True,
) -> Plan:
    """Plan every project of `desired` against the live API, with the errors of the guards
    under `limits` and the query credits the account has left; `api` names where that is.
    The plan records the requests it made and what applying it needs. With `by_name` False,
    every project is listed whole, even where looking names up would cost fewer requests
    (the plan is the same either way).

    Raises AuthError when the key is rejected; every other API failure becomes an error of the
    project it concerns.
    """
    plan, _ = await plan_and_answers(client, desired, limits=limits, api=api, by_name=by_name)
    return plan


async def plan_and_answers(
    client: ConversationApi, desired: DesiredState, *, limits: GuardLimits, api: str = "",
    by_name: bool = True,
) -> tuple[Plan, tuple[StoredAnswers, ...]]:
    """`make_plan`, and what its read found of the stored answers of the projects that
    declare `expect:` (no request more: the transcripts of conversations with messages are
    read to plan their sends; a project whose plan failed holds its error)."""
    before = client.stats.requests
    user = await client.current_user()
    name_filter = _NameFilter() if by_name else None
    planned = await asyncio.gather(
        *(_plan_project(client, spec, user_id=user.id, name_filter=name_filter)
          for spec in desired.projects)
    )
    plan = Plan(projects=tuple(project for project, _ in planned), api=api)
    left = await credits_left(client, prompts=sends(plan))
    limits = replace(limits, credits_left=left)
    plan = with_budget(plan, requests_made=client.stats.requests - before, credits_left=left)
    answers = tuple(stored for _, stored in planned if stored.conversations or stored.error)
    return with_guards(plan, limits), answers


async def read_project(
    client: ConversationApi, spec: ProjectSpec, *, user_id: str,
    name_filter: _NameFilter | None = None,
) -> ProjectLive:
    """The listing for `spec`'s scope (or, prune off and given what the run knows of the
    `name_filter`, the conversations with its declared names when that is cheaper), plus any
    pinned conversation found outside it."""
    listing, looked_up, last_page = await _read_conversations(client, spec,
                                                              name_filter=name_filter)
    listed = {conv.session_id for conv in listing}
    missing = [
        c.session_id for c in spec.conversations if c.session_id and c.session_id not in listed
    ]
    pinned: dict[str, Conversation] = {}
    transcripts: dict[str, tuple[Message, ...]] = {}
    by_pin = {c.session_id: c for c in spec.conversations if c.session_id}
    for session_id, transcript in (await read_transcripts(client, spec.id, missing)).items():
        if transcript is not None:
            pinned[session_id] = transcript.conversation
            transcripts[session_id] = sent_messages(spec.id, by_pin.get(session_id), transcript)
    return ProjectLive(conversations=tuple(listing), pinned=pinned, transcripts=transcripts,
                       by_name=looked_up, last_page=last_page)


class _NameFilter:
    """Whether the API's name filter matches substrings: found out once per run, with one
    lookup (see `reconciler.api.lookup`)."""

    def __init__(self) -> None:
        self.matches_substrings: bool | None = None
        self._lock = asyncio.Lock()

    async def trusted(
        self, client: ConversationApi, project_id: int, user_filter: str, sample: Page[Conversation]
    ) -> bool:
        """Whether lookups find every stored form of a name; `sample` is page 1 of a listing
        whose names may serve to find out."""
        async with self._lock:
            if self.matches_substrings is None:
                probe = substring_probe(c.name for c in sample.items)
                if probe is None:
                    return False
                name, inner = probe
                # The sample's name is among the listing's oldest, so on the answer's page 1.
                answer = await client.conversation_page(project_id, 1, user_filter=user_filter,
                                                        name=inner)
                self.matches_substrings = any(c.name == name for c in answer.items)
                if not self.matches_substrings:
                    log.info("the API's name filter does not match substrings: prune-off "
                             "projects are listed whole")
            return self.matches_substrings


async def _read_conversations(
    client: ConversationApi, spec: ProjectSpec, *, name_filter: _NameFilter | None
) -> tuple[list[Conversation], bool, int]:
    """The project's live conversations: the whole listing of its scope, or (prune off, a
    `name_filter` that matches substrings, a query for every name, and fewer requests) those
    whose names in normal form are declared, found by name. Also whether by name, and the
    listing's page count (0: not read)."""
    user_filter = listing_filter(spec.scope)
    names = lookup_names(spec)
    queries = [lookup_query(name) for name in names]
    if name_filter is None or spec.prune or None in queries:
        return await client.list_conversations(spec.id, user_filter=user_filter), False, 0
    first = await client.conversation_page(spec.id, 1, user_filter=user_filter)
    asked = list(dict.fromkeys(q for q in queries if q is not None))
    if by_name_is_cheaper(len(asked), first.last_page) and await name_filter.trusted(
            client, spec.id, user_filter, first):
        firsts = await asyncio.gather(*(client.conversation_page(
            spec.id, 1, user_filter=user_filter, name=query) for query in asked))
        more = sum(page.last_page - 1 for page in firsts)
        if by_name_is_cheaper(len(asked) + more, first.last_page):
            found = await asyncio.gather(*(
                _answer(client, spec.id, user_filter, query, page)
                for query, page in zip(asked, firsts, strict=True)))
            wanted = set(names)
            unique = {c.session_id: c for group in found for c in group
                      if normal_form(c.name) in wanted}
            return sorted(unique.values(), key=lambda c: c.id), True, first.last_page
    listing = await client.list_conversations(spec.id, user_filter=user_filter, first=first)
    return listing, False, first.last_page


async def _answer(
    client: ConversationApi, project_id: int, user_filter: str, query: str,
    first: Page[Conversation],
) -> list[Conversation]:
    """Every conversation the name filter returns for `query` (its page 1: `first`)."""
    return await client.list_conversations(project_id, user_filter=user_filter, name=query,
                                           first=first)


@dataclass(frozen=True)
class ProjectReading:
    """Everything planning reads of one project before it decides: what is live (`live`: the
    listing or the lookups by name, pinned conversations outside it, and the transcripts of
    every conversation whose messages the decisions weigh) and how the declared conversations
    matched it (`matching`, pure, made once here: which transcripts are needed depends on
    it)."""

    live: ProjectLive
    matching: Matching


async def read_for_plan(
    client: ConversationApi, spec: ProjectSpec, *, user_id: str, name_filter: _NameFilter | None
) -> ProjectReading:
    """The read stage of one project's plan: every request its decisions need, in one place.

    The listing of its scope or the lookups by name (with the probe of the name filter, once
    per run), pinned conversations found outside it, then, once matched, the transcripts of
    the matched conversations with declared messages and of the deletion candidates (one
    deleted since the listing reads as empty), and, for a project read by name that will
    create, the listing's last page (so that a create can tell its own conversation from older
    ones after an ambiguous failure). Raises ApiError (AuthError when the key is rejected)."""
    live = await read_project(client, spec, user_id=user_id, name_filter=name_filter)
    matching = match_project(spec, live.conversations, user_id=user_id, pinned=live.pinned)
    transcripts = dict(live.transcripts)
    needed = [s for s in _transcripts_needed(spec, matching) if s not in transcripts]
    declared = {m.live.session_id: m.spec for m in matching.matches}
    for session_id, transcript in (await read_transcripts(client, spec.id, needed)).items():
        transcripts[session_id] = () if transcript is None else sent_messages(
            spec.id, declared.get(session_id), transcript)
    if live.by_name and matching.unmatched and live.last_page > 1:
        await client.conversation_page(spec.id, live.last_page,
                                       user_filter=listing_filter(spec.scope))
    return ProjectReading(replace(live, transcripts=transcripts), matching)


async def _plan_project(
    client: ConversationApi, spec: ProjectSpec, *, user_id: str, name_filter: _NameFilter | None
) -> tuple[ProjectPlan, StoredAnswers]:
    """The project's plan, and what it read of the answers its `expect:` judge: the read
    stage (`read_for_plan`), then the pure build; then, only when the plan creates again a
    declared conversation that may have been deleted for its age, the project's retention for
    a note (`_with_retention_notes`)."""
    expecting = any(m.expect for c in spec.conversations for m in c.messages)
    try:
        reading = await read_for_plan(client, spec, user_id=user_id, name_filter=name_filter)
        live, matching = reading.live, reading.matching
        plan = build_project_plan(spec, matching, live.transcripts)
        if live.by_name:
            plan = replace(plan, live_read=LiveRead.BY_NAME)
        plan = await _with_retention_notes(client, spec, live, plan)
        answers = (stored_answers(spec, matching, live.transcripts) if expecting
                   else StoredAnswers(spec.id, spec.display_name))
        return plan, answers
    except AuthError:
        raise
    except ApiError as error:
        return _failed(spec, str(error)), StoredAnswers(
            spec.id, spec.display_name, error=str(error) if expecting else None)


# At most this many retention notes a project; then one line says how many more.
MAX_RETENTION_NOTES = 10


@dataclass(frozen=True)
class _Missing:
    """A declared conversation that is not live: created again by the plan, or pinned to a
    session that no longer exists; with the prompts its creation (re)sends and their
    credits."""

    name: str
    pinned: str | None
    prompts: int
    credits: int


async def _with_retention_notes(
    client: ConversationApi, spec: ProjectSpec, live: ProjectLive, plan: ProjectPlan
) -> ProjectPlan:
    """`plan` with what the project's retention may explain: a warning for each pin whose
    session is gone (it existed), and one note for the creates whose sends spend credits (they
    may be new, or gone with the retention: nothing tells which). The settings are read only
    when there is one (one request); without a retention period, or settings that cannot be
    read, nothing is added. Raises AuthError."""
    missing = _missing_declared(spec, live, plan)
    if not missing:
        return plan
    retention = await _retention(client, spec.id)
    if retention is None or retention.days is None:
        return plan
    pins = [m for m in missing if m.pinned is not None]
    warnings = [_retention_note(plan.display_name, retention.days, m)
                for m in pins[:MAX_RETENTION_NOTES]]
    if len(pins) > MAX_RETENTION_NOTES:
        warnings.append(f"... and {len(pins) - MAX_RETENTION_NOTES} more pinned "
                        "conversation(s) the retention may have deleted")
    creates = [m for m in missing if m.pinned is None]
    notes = [_created_again_note(retention.days, creates)] if creates else []
    return replace(plan, warnings=(*plan.warnings, *warnings), notes=(*plan.notes, *notes))


def _created_again_note(days: int, creates: list[_Missing]) -> str:
    """The note for the creates that send prompts in a project whose retention deletes
    conversations after `days` days: those may be new, or deleted by it since they were
    made; either way their prompts cost credits."""
    names = ", ".join(shown(m.name) for m in creates[:3]) + (", …" if len(creates) > 3 else "")
    prompts = sum(m.prompts for m in creates)
    credits = sum(m.credits for m in creates)
    return (f"the project deletes conversations after {days} days: if the {len(creates)} "
            f"conversation(s) created here ({names}) existed before, it deleted them, and "
            f"their {prompts} prompt(s) are sent again ({credits} query credit(s))")


def _missing_declared(spec: ProjectSpec, live: ProjectLive, plan: ProjectPlan) -> list[_Missing]:
    """The declared conversations a retention may explain: pins whose session neither the
    listing nor a lookup found, and creates whose sends spend credits."""
    found = {c.session_id for c in live.conversations} | set(live.pinned)
    missing = [_Missing(c.name, c.session_id, len(c.messages), len(c.messages) * Send.credits)
               for c in spec.conversations if c.session_id and c.session_id not in found]
    for create in (op for op in plan.operations if op.creates):
        into = [op for op in plan.operations if op.credits and op.waits_for() == create.name]
        if into:
            missing.append(_Missing(create.name, None, len(into),
                                    sum(op.credits for op in into)))
    return missing


async def _retention(client: ConversationApi, project_id: int) -> Retention | None:
    """The project's retention; None when its settings are not served or cannot be read."""
    try:
        settings = await client.project_settings(project_id, retention=True)
        return None if settings is None else settings.retention
    except AuthError:
        raise
    except ApiError as error:
        log.info("no retention note for project %s: %s", project_id, error)
        return None


def _retention_note(project: str, days: int, missing: _Missing) -> str:
    """The warning for one pinned conversation the retention of `project` may have
    deleted."""
    prompts = f"{missing.prompts} prompt(s)"
    credits = f"{missing.credits} query credit(s)"
    then = (f"remove its session_id to create it again (its {prompts} re-sent, {credits})"
            if missing.prompts else "remove its session_id to create it again")
    return (f"project {project} deletes conversations after {days} days; "
            f"{shown(missing.name)} (pinned to session {missing.pinned}) may have been "
            f"deleted by it: {then}")


def _transcripts_needed(spec: ProjectSpec, matching: Matching) -> list[str]:
    with_messages = [m.live.session_id for m in matching.matches if m.spec.messages]
    return with_messages + deletion_candidates(spec, matching)


def stored_answers(spec: ProjectSpec, matching: Matching,
                   transcripts: Mapping[str, tuple[Message, ...]]) -> StoredAnswers:
    """What was read of `spec`'s conversations that declare `expect:`: their sessions and,
    from `transcripts` (the sent messages read, by session), their messages."""
    session_of = {id(m.spec): m.live.session_id for m in matching.matches}
    conversations = []
    for conversation in spec.conversations:
        if any(m.expect for m in conversation.messages):
            session_id = session_of.get(id(conversation))
            conversations.append(StoredConversation(
                conversation, session_id,
                None if session_id is None else transcripts.get(session_id)))
    return StoredAnswers(spec.id, spec.display_name, tuple(conversations))


def sent_messages(
    project_id: int, declared: ConversationSpec | None, transcript: Transcript
) -> tuple[Message, ...]:
    """The messages of `transcript`, in order, a send of one of the `declared` conversation's
    prompts standing as that prompt (see `reconciler.api.send_identity.as_declared`)."""
    prompts = () if declared is None else declared.prompts
    return as_declared(project_id, transcript.conversation.session_id, prompts,
                       transcript.messages)


def _failed(spec: ProjectSpec, message: str) -> ProjectPlan:
    return ProjectPlan(project_id=spec.id, label=spec.label, scope=spec.scope,
                       errors=(message,))

