"""Reading stored answers for answer checks: for `reconciler check`, planning's read and
matching, then only the transcripts of matched conversations whose declared messages carry
`expect:`; for a plan, what planning read already (`StoredAnswers`). Each declared message is
found as a plan finds a sent prompt (its send's `external_id`, or the prompt in normal form),
and its latest answer judged (`reconciler.plan.health`); the project's settings are read for
its "I don't know" message only when a `no_answer` check needs it. After apply sends a prompt
that declares `expect:`, `sent_expectations` says which, and the answer it got is judged at
once (`judge_message`). Sends nothing.

A `cites` that names a source by text needs the sources the answer cites as the API describes
them: `CitationReader` reads them, for `check`, `test` and apply's checks, only for answers
judged with such a check, each distinct cited id once per project and run, at most
`MAX_SOURCE_READS` ids per project and run (beyond, those checks are not checked, saying why).
A source that cannot be read leaves the checks that need it not checked, with the reason; a
rejected key (AuthError) still stops the run. A plan reads none (its line says so)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable

from reconciler.api.live import CitedSource
from reconciler.api.protocol import ConversationApi, read_transcripts
from reconciler.desired.model import DesiredState, MessageSpec, ProjectSpec
from reconciler.errors import ApiError, AuthError
from reconciler.plan.health import CitedSources, ProjectHealth, StoredAnswers, judge
from reconciler.plan.make import read_project, sent_messages, stored_answers
from reconciler.plan.match import match_project
from reconciler.plan.model import Plan
from reconciler.plan.operations import Send
from reconciler.text import normal_form

MAX_SOURCE_READS = 50  # distinct cited sources read per project and run


class CitationReader:
    """The sources answers cite, read for `cites` by name and remembered for the run: each
    distinct id of a project read once (concurrent askers wait for the one read), at most
    `MAX_SOURCE_READS` ids per project; a failed read is remembered as its reason."""

    def __init__(self, client: ConversationApi) -> None:
        self._client = client
        self._read: dict[tuple[int, int], CitedSource | None] = {}
        self._failed: dict[tuple[int, int], str] = {}
        self._locks: dict[tuple[int, int], asyncio.Lock] = {}
        self._reads: Counter[int] = Counter()

    async def sources(self, project_id: int, citations: Iterable[int]) -> CitedSources:
        """What is known of the sources `citations` of project `project_id`, read one after
        another where not read yet in this run. Raises AuthError; any other failure is the
        reason of its id in `CitedSources.unread`."""
        read: dict[int, CitedSource | None] = {}
        unread: dict[int, str] = {}
        for citation in dict.fromkeys(citations):
            key = (project_id, citation)
            async with self._locks.setdefault(key, asyncio.Lock()):
                if key not in self._read and key not in self._failed:
                    await self._read_one(project_id, citation)
            if key in self._read:
                read[citation] = self._read[key]
            else:
                unread[citation] = self._failed.get(key, _over_limit(project_id))
        return CitedSources(read, unread)

    async def _read_one(self, project_id: int, citation: int) -> None:
        """Read one source, unless the project's reads are used up (then nothing is kept,
        and the id is unread for that reason)."""
        if self._reads[project_id] >= MAX_SOURCE_READS:
            return
        self._reads[project_id] += 1
        try:
            self._read[(project_id, citation)] = await self._client.citation(project_id,
                                                                              citation)
        except AuthError:
            raise
        except ApiError as error:
            self._failed[(project_id, citation)] = str(error)


def _over_limit(project_id: int) -> str:
    return (f"more than {MAX_SOURCE_READS} distinct sources are cited in project "
            f"{project_id}, and a run reads at most {MAX_SOURCE_READS}")


async def check_answers(client: ConversationApi, desired: DesiredState, *,
                        sources: CitationReader | None = None) -> list[ProjectHealth]:
    """The answer checks of every project of `desired`, the sources the answers cite read
    where a `cites` names one by text (through `sources`, when the run has one already).
    Raises AuthError when the key is rejected; any other API failure becomes the error of its
    project."""
    user = await client.current_user()
    stored = [await _read(client, spec, user_id=user.id) for spec in desired.projects]
    return await judge_stored(client, stored, sources=sources or CitationReader(client))


async def judge_stored(client: ConversationApi, stored: Iterable[StoredAnswers], *,
                       sources: CitationReader | None = None) -> list[ProjectHealth]:
    """Every project of `stored` judged; a project's settings are read (one request) only
    when it declares a `no_answer` check, and the sources its answers cite only with
    `sources` (None, a plan's line: a `cites` naming a source by text is not checked).
    Raises AuthError; any other API failure becomes the error of its project."""
    judged = []
    for project in stored:
        try:
            no_answer = (await no_answer_message(client, project.project_id)
                         if project.asks_no_answer and project.error is None else None)
        except AuthError:
            raise
        except ApiError as error:
            judged.append(ProjectHealth(project.project_id, project.label, error=str(error)))
            continue
        cited = None
        if sources is not None and project.error is None:
            cited = await sources.sources(project.project_id, project.named_citations())
        judged.append(judge(project, no_answer, sources=cited))
    return judged


async def no_answer_messages(
    client: ConversationApi, project_ids: Iterable[int]
) -> tuple[dict[int, str | None], dict[int, str]]:
    """The "I don't know" message of each project (None: the vendor's default), and why it
    could not be read for the others (their `no_answer` checks are then not judged: see
    `reconciler.plan.health.not_judged`). Raises AuthError."""
    found: dict[int, str | None] = {}
    unread: dict[int, str] = {}
    for project_id in dict.fromkeys(project_ids):
        try:
            found[project_id] = await no_answer_message(client, project_id)
        except AuthError:
            raise
        except ApiError as error:
            unread[project_id] = str(error)
    return found, unread


def sent_expectations(plan: Plan, desired: DesiredState) -> dict[str, tuple[str, MessageSpec]]:
    """The sends of `plan` whose declared message carries `expect:`, by operation key: its
    conversation's name and the declared message (found by project, conversation name and
    position, and the prompt the same in normal form)."""
    by_name = {(p.id, normal_form(c.name)): c for p in desired.projects for c in p.conversations}
    found = {}
    for op in plan.operations:
        if not isinstance(op, Send):
            continue
        conversation = by_name.get((op.project_id, normal_form(op.name)))
        if conversation is None or not 1 <= op.position <= len(conversation.messages):
            continue
        message = conversation.messages[op.position - 1]
        if message.expect is not None and normal_form(message.prompt) == normal_form(op.prompt):
            found[op.key] = (conversation.name, message)
    return found


async def _read(client: ConversationApi, spec: ProjectSpec, *, user_id: str) -> StoredAnswers:
    """The stored answers of `spec`: planning's read and matching, then the transcripts of
    the matched conversations that declare `expect:`."""
    if not any(m.expect for c in spec.conversations for m in c.messages):
        return StoredAnswers(spec.id, spec.display_name)
    try:
        live = await read_project(client, spec, user_id=user_id)
        matching = match_project(spec, live.conversations, user_id=user_id, pinned=live.pinned)
        declared = {m.live.session_id: m.spec for m in matching.matches
                    if any(message.expect for message in m.spec.messages)}
        read = await read_transcripts(client, spec.id, list(declared))
    except AuthError:
        raise
    except ApiError as error:
        return StoredAnswers(spec.id, spec.display_name, error=str(error))
    transcripts = {session_id: sent_messages(spec.id, declared[session_id], transcript)
                   for session_id, transcript in read.items() if transcript is not None}
    return stored_answers(spec, matching, transcripts)


async def no_answer_message(client: ConversationApi, project_id: int) -> str | None:
    """The project's "I don't know" message, from its settings (one request). Raises
    NotFoundError when the project does not exist or is not visible, ApiError."""
    settings = await client.project_settings(project_id)
    return None if settings is None else settings.no_answer_message
