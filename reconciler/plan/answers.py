"""Reading stored answers for `reconciler check`: planning's read and matching, then only
the transcripts of matched conversations whose declared messages carry `expect:`, each
declared message found as a plan finds a sent prompt (its send's `external_id`, or the prompt
in normal form), and its latest answer judged (`reconciler.plan.health`); the project's
settings are read for its "I don't know" message only when a `no_answer` check needs it.
Sends nothing."""

from __future__ import annotations

from reconciler.api.live import Message, Transcript
from reconciler.api.protocol import ConversationApi, read_transcripts
from reconciler.desired.model import ConversationSpec, DesiredState, ProjectSpec
from reconciler.errors import ApiError, AuthError
from reconciler.plan.health import (
    Answer,
    MessageCheck,
    ProjectHealth,
    evaluate,
    shown_answer,
)
from reconciler.plan.make import read_project, sent_messages
from reconciler.plan.match import match_project
from reconciler.text import normal_form


async def check_answers(client: ConversationApi, desired: DesiredState) -> list[ProjectHealth]:
    """The answer checks of every project of `desired`. Raises AuthError when the key is
    rejected; any other API failure becomes the error of its project."""
    user = await client.current_user()
    return [await _project(client, spec, user_id=user.id) for spec in desired.projects]


async def _project(client: ConversationApi, spec: ProjectSpec, *, user_id: str) -> ProjectHealth:
    expecting = [c for c in spec.conversations if any(m.expect for m in c.messages)]
    if not expecting:
        return ProjectHealth(spec.id, spec.display_name)
    try:
        live = await read_project(client, spec, user_id=user_id)
        matching = match_project(spec, live.conversations, user_id=user_id, pinned=live.pinned)
        session_of = {id(m.spec): m.live.session_id for m in matching.matches}
        wanted = [session_of[id(c)] for c in expecting if id(c) in session_of]
        transcripts = await read_transcripts(client, spec.id, wanted)
        settings = (await client.project_settings(spec.id)
                    if _asks_no_answer(expecting) else None)
        no_answer = None if settings is None else settings.no_answer_message
    except AuthError:
        raise
    except ApiError as error:
        return ProjectHealth(spec.id, spec.display_name, error=str(error))
    checks: list[MessageCheck] = []
    for conversation in expecting:
        session_id = session_of.get(id(conversation))
        transcript = transcripts.get(session_id) if session_id else None
        checks.extend(_conversation(spec.id, conversation, transcript, no_answer))
    return ProjectHealth(spec.id, spec.display_name, tuple(checks))


def _asks_no_answer(conversations: list[ConversationSpec]) -> bool:
    """Whether a `no_answer` check is declared (only then are the settings read)."""
    return any(m.expect is not None and m.expect.no_answer is not None
               for c in conversations for m in c.messages)


def _conversation(project_id: int, declared: ConversationSpec,
                  transcript: Transcript | None, no_answer: str | None) -> list[MessageCheck]:
    checks = []
    for message in declared.messages:
        if message.expect is None:
            continue
        stored = None if transcript is None else stored_message(
            project_id, declared, transcript, message.prompt)
        results = None if stored is None else evaluate(
            message.expect, Answer(stored.openai_response, stored.citations, no_answer))
        checks.append(MessageCheck(declared.name, message.prompt, results,
                                   None if stored is None else shown_answer(
                                       stored.openai_response)))
    return checks


def stored_message(project_id: int, declared: ConversationSpec, transcript: Transcript,
                   prompt: str) -> Message | None:
    """The latest message of `transcript` that is the declared `prompt`, as a plan tells a
    prompt was sent (`sent_messages`: the send's external id, else the prompt in normal
    form)."""
    wanted = normal_form(prompt)
    found = None
    for message in sent_messages(project_id, declared, transcript):
        if normal_form(message.user_query) == wanted:
            found = message
    return found
