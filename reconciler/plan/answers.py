"""Reading stored answers for `reconciler check`: planning's read and matching, then only
the transcripts of matched conversations whose declared messages carry `expect:`, each
declared message found as a plan finds a sent prompt (its send's `external_id`, or the prompt
in normal form), and its latest answer judged (`reconciler.plan.health`). Sends nothing."""

from __future__ import annotations

from reconciler.api.live import Message, Transcript
from reconciler.api.protocol import ConversationApi, read_transcripts
from reconciler.desired.model import ConversationSpec, DesiredState, ProjectSpec
from reconciler.errors import ApiError, AuthError
from reconciler.plan.health import Answer, MessageCheck, ProjectHealth, evaluate
from reconciler.plan.make import read_project
from reconciler.plan.match import match_project
from reconciler.plan.operations import send_external_id
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
    except AuthError:
        raise
    except ApiError as error:
        return ProjectHealth(spec.id, spec.display_name, error=str(error))
    checks: list[MessageCheck] = []
    for conversation in expecting:
        session_id = session_of.get(id(conversation))
        transcript = transcripts.get(session_id) if session_id else None
        checks.extend(_conversation(spec.id, conversation, transcript))
    return ProjectHealth(spec.id, spec.display_name, tuple(checks))


def _conversation(project_id: int, declared: ConversationSpec,
                  transcript: Transcript | None) -> list[MessageCheck]:
    checks = []
    for position, message in enumerate(declared.messages, start=1):
        if message.expect is None:
            continue
        stored = None if transcript is None else stored_message(
            project_id, transcript, position, message.prompt)
        results = None if stored is None else evaluate(
            message.expect, Answer(stored.openai_response, stored.citations))
        checks.append(MessageCheck(declared.name, message.prompt, results))
    return checks


def stored_message(project_id: int, transcript: Transcript, position: int,
                   prompt: str) -> Message | None:
    """The latest message of `transcript` that is the declared `prompt` at `position`: the one
    carrying its send's `external_id`, else one whose prompt is the same in normal form."""
    own = send_external_id(project_id, transcript.conversation.session_id, position, prompt)
    wanted = normal_form(prompt)
    found = None
    for message in transcript.messages:
        if message.external_id == own or normal_form(message.user_query) == wanted:
            found = message
    return found
