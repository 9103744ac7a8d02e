"""Reading stored answers for answer checks: for `reconciler check`, planning's read and
matching, then only the transcripts of matched conversations whose declared messages carry
`expect:`; for a plan, what planning read already (`StoredAnswers`). Each declared message is
found as a plan finds a sent prompt (its send's `external_id`, or the prompt in normal form),
and its latest answer judged (`reconciler.plan.health`); the project's settings are read for
its "I don't know" message only when a `no_answer` check needs it. After apply sends a prompt
that declares `expect:`, `sent_expectations` says which, and the answer it got is judged at
once (`judge_message`). Sends nothing."""

from __future__ import annotations

from collections.abc import Iterable

from reconciler.api.protocol import ConversationApi, read_transcripts
from reconciler.desired.model import DesiredState, MessageSpec, ProjectSpec
from reconciler.errors import ApiError, AuthError
from reconciler.plan.health import ProjectHealth, StoredAnswers, judge
from reconciler.plan.make import read_project, sent_messages, stored_answers
from reconciler.plan.match import match_project
from reconciler.plan.model import Plan
from reconciler.plan.operations import Send
from reconciler.text import normal_form


async def check_answers(client: ConversationApi, desired: DesiredState) -> list[ProjectHealth]:
    """The answer checks of every project of `desired`. Raises AuthError when the key is
    rejected; any other API failure becomes the error of its project."""
    user = await client.current_user()
    stored = [await _read(client, spec, user_id=user.id) for spec in desired.projects]
    return await judge_stored(client, stored)


async def judge_stored(client: ConversationApi,
                       stored: Iterable[StoredAnswers]) -> list[ProjectHealth]:
    """Every project of `stored` judged; a project's settings are read (one request) only
    when it declares a `no_answer` check. Raises AuthError; any other API failure becomes the
    error of its project."""
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
        judged.append(judge(project, no_answer))
    return judged


async def no_answer_messages(client: ConversationApi,
                             project_ids: Iterable[int]) -> dict[int, str | None]:
    """The "I don't know" message of each project (None: the vendor's default, or its
    settings cannot be read now). Raises AuthError."""
    found: dict[int, str | None] = {}
    for project_id in dict.fromkeys(project_ids):
        try:
            found[project_id] = await no_answer_message(client, project_id)
        except AuthError:
            raise
        except ApiError:
            found[project_id] = None
    return found


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
