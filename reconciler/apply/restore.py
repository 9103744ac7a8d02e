"""Restoring a deleted conversation from its transcript backup, once: the other writer beside
the operation kinds (`reconciler.apply.run`).

What it sends is judged by the guards (`reconciler.plan.guards.send_refusals`, with the query
credits read as every path that sends reads them, `reconciler.plan.credits`); a message holds a
backed-up prompt when it is that send (`reconciler.api.send_identity`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from reconciler.api.live import Conversation
from reconciler.api.protocol import ConversationApi
from reconciler.api.send_identity import is_send, send_external_id
from reconciler.errors import NotFoundError, RestoreConflict, RestoreRefused
from reconciler.plan.credits import credits_left
from reconciler.plan.guards import RESTORE_SENDING, GuardLimits, send_refusals
from reconciler.text import normal_form


class Restored(StrEnum):
    """What `restore` found and did."""

    CREATED = "created"  # a new conversation, and its prompts when asked
    RESUMED = "resumed"  # the only conversation of that name held the first prompts: sent the rest
    ALREADY_BACK = "already back"  # nothing to do
    # Another run created the name between this one's look-up and its create (a restore of the
    # same backup elsewhere, most likely): the older conversation is left to it, this one's own
    # is deleted while still empty, and nothing is sent.
    RACED = "raced"


@dataclass(frozen=True)
class RestoreResult:
    """What `restore` did for one backup: the conversation that holds (or will hold) it, and,
    when another run created the name at the same time (`Restored.RACED`), the conversation
    this restore made (`own`) and whether it deleted it (it keeps one that gained messages)."""

    project_id: int
    session_id: str
    name: str
    prompts_sent: int
    state: Restored = Restored.CREATED
    own: str | None = None
    own_deleted: bool = False


async def restore_conversation(
    client: ConversationApi, project_id: int, original: str, name: str,
    prompts: Sequence[str] | None, *, max_sends: int | None = None,
) -> RestoreResult:
    """Bring back the conversation `original`, named `name`, and (unless `prompts` is None)
    its prompts, in order; never makes a second conversation of that name.

    It is already back when `original` still exists, or when the only conversation named `name`
    is the key user's and (with `prompts`) holds exactly those prompts; when that conversation
    holds the first of them (a restore that stopped midway), the rest are sent. Any other
    conversation named `name` takes the name: RestoreConflict, nothing is done. After its
    create it looks the name up again: when an older conversation has it now, another run
    created it meanwhile (runs on two machines share no lock), and this one withdraws
    (`Restored.RACED`, see `_created_first`), so that one conversation is restored and its
    prompts are sent once. Prompts to send
    beyond `max_sends`, or beyond the query credits the account has left (when the API says),
    are refused before anything is done: RestoreRefused. The API cannot write answers: sent
    prompts get new answers. Raises ApiError on failure (what was done before the failure
    stays done).
    """
    try:
        still = await client.get_transcript(project_id, original)
    except NotFoundError:
        still = None
    if still is not None:
        return RestoreResult(project_id, original, still.conversation.name, 0,
                             Restored.ALREADY_BACK)
    listed = await client.list_conversations(project_id, name=normal_form(name))
    named = [c for c in listed if normal_form(c.name) == normal_form(name)]
    wanted = list(prompts or ())
    if named:
        found = await _restored_before(client, project_id, named, prompts)
        if found is None:
            raise RestoreConflict(project_id, name, [c.session_id for c in named])
        session_id: str | None = found[0]
        sent = found[1]
        state = Restored.ALREADY_BACK if sent == len(wanted) else Restored.RESUMED
    else:
        session_id, sent, state = None, 0, Restored.CREATED
    await _refuse_sends_beyond(client, len(wanted) - sent, max_sends)
    if session_id is None:
        created = await client.create_conversation(project_id, name)
        raced = await _created_first(client, project_id, created, name)
        if raced is not None:
            return raced
        session_id = created.session_id
    for position, prompt in enumerate(wanted[sent:], start=sent + 1):
        await client.send_message(
            project_id, session_id, prompt,
            external_id=send_external_id(project_id, session_id, position, prompt))
    return RestoreResult(project_id, session_id, name, len(wanted) - sent, state)


async def _created_first(
    client: ConversationApi, project_id: int, created: Conversation, name: str
) -> RestoreResult | None:
    """None when `created` is the oldest conversation named `name` (the restore goes on).
    Otherwise another run created the name after this restore looked it up: the oldest holder
    is left to that run, and `created` is deleted while it holds no message (nothing of anyone
    is lost; one that gained messages is kept and named). Raises ApiError."""
    listed = await client.list_conversations(project_id, name=normal_form(name))
    older = sorted((c for c in listed if normal_form(c.name) == normal_form(name)
                    and c.id < created.id), key=lambda c: c.id)
    if not older:
        return None
    try:
        held = len((await client.get_transcript(project_id, created.session_id)).messages)
    except NotFoundError:
        held = 0  # deleted already: nothing to keep
    else:
        if not held:
            await client.delete_conversation(project_id, created.session_id)
    return RestoreResult(project_id, older[0].session_id, name, 0, Restored.RACED,
                         own=created.session_id, own_deleted=held == 0)


async def _refuse_sends_beyond(
    client: ConversationApi, count: int, max_sends: int | None
) -> None:
    """Raise RestoreRefused when the guards refuse sending `count` prompts: more than
    `max_sends`, or than the query credits the account has left (read only when `max_sends`
    allows them; credits that cannot be read refuse nothing: `credits_left` warns)."""
    refused = send_refusals(count, GuardLimits(max_sends=max_sends), RESTORE_SENDING)
    if not refused:
        left = await credits_left(client, prompts=count)
        refused = send_refusals(count, GuardLimits(credits_left=left), RESTORE_SENDING)
    if refused:
        raise RestoreRefused(refused[0])


async def _restored_before(
    client: ConversationApi, project_id: int, named: list[Conversation],
    prompts: Sequence[str] | None,
) -> tuple[str, int] | None:
    """(session, prompts it already holds) when `named` is one conversation of the key's user
    that a restore of `prompts` could have left; None when the name is taken otherwise.

    A message holds prompt N when it is that send (`reconciler.api.send_identity.is_send`: it
    carries the send's identity, or it is that prompt in normal form), whatever the service
    stored for it (as a plan counts sends)."""
    me = await client.current_user()
    if len(named) != 1 or named[0].created_by != me.id:
        return None
    session_id = named[0].session_id
    if prompts is None:
        return session_id, 0
    held = (await client.get_transcript(project_id, session_id)).messages
    if len(held) > len(prompts):
        return None
    expected = prompts[:len(held)]
    for position, (message, prompt) in enumerate(zip(held, expected, strict=True), start=1):
        if not is_send(message, send_external_id(project_id, session_id, position, prompt),
                       prompt):
            return None
    return session_id, len(held)
