"""`reconciler export`: the desired-state document of what is live.

Lets a team adopt the tool on an existing project: `plan` right after `export` shows no
changes. Reading goes through the client; building the document is pure.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.api.live import Conversation, Message, Project
from reconciler.api.protocol import ConversationApi, listing_filter
from reconciler.desired.model import Scope, literal_pattern
from reconciler.plan.match import in_scope
from reconciler.text import normal_form, shown

MAX_NAME_LENGTH = 255
MAX_LABEL_LENGTH = 255


@dataclass(frozen=True)
class LiveProject:
    """One project as exported: its in-scope conversations and, if asked, their messages."""

    project: Project
    conversations: tuple[Conversation, ...]
    messages: dict[str, tuple[Message, ...]]


async def read_live(
    client: ConversationApi, project_ids: Sequence[int], *, scope: Scope, with_messages: bool
) -> list[LiveProject]:
    """Read every project's in-scope conversations (and transcripts when `with_messages`).

    Raises NotFoundError for a project the key cannot see, ApiError for other failures.
    """
    user = await client.current_user()
    return list(await asyncio.gather(*(
        _read_one(client, pid, scope=scope, user_id=user.id, with_messages=with_messages)
        for pid in project_ids
    )))


async def _read_one(
    client: ConversationApi, project_id: int, *, scope: Scope, user_id: str, with_messages: bool
) -> LiveProject:
    project = await client.get_project(project_id)
    listing = await client.list_conversations(project_id, user_filter=listing_filter(scope))
    conversations = tuple(c for c in listing if in_scope(c, scope, user_id))
    messages: dict[str, tuple[Message, ...]] = {}
    if with_messages:
        transcripts = await asyncio.gather(
            *(client.get_transcript(project_id, c.session_id) for c in conversations)
        )
        messages = {t.conversation.session_id: t.messages for t in transcripts}
    return LiveProject(project, conversations, messages)


def export_document(
    projects: Sequence[LiveProject], *, scope: Scope, pin: bool
) -> tuple[dict[str, Any], list[str]]:
    """The desired-state document, and notes on what could not be declared.

    Projects are sorted by id, conversations by name then id. A name shared by several live
    conversations is declared once with `duplicates: adopt-oldest` (the oldest is adopted, the
    others stay unmanaged), so that a plan of the export shows no changes. Each project `owns`
    exactly the names it declares (as literal patterns): once prune is turned on, removing an
    entry deletes its conversation, and nothing the export did not see is ever pruned.
    """
    notes: list[str] = []
    entries = []
    for live in sorted(projects, key=lambda p: p.project.id):
        entry, project_notes = _project_entry(live, scope=scope, pin=pin)
        entries.append(entry)
        notes.extend(project_notes)
    return {"version": 1, "projects": entries}, notes


def _project_entry(
    live: LiveProject, *, scope: Scope, pin: bool
) -> tuple[dict[str, Any], list[str]]:
    by_name: dict[str, list[Conversation]] = defaultdict(list)
    for conv in live.conversations:
        by_name[normal_form(conv.name)].append(conv)
    notes = []
    conversations = []
    declared: list[str] = []
    for name in sorted(by_name):
        group = sorted(by_name[name], key=lambda c: c.id)  # the smallest id is the oldest
        if not name.strip() or len(name) > MAX_NAME_LENGTH:
            notes.append(f"project {live.project.id}: {len(group)} conversation(s) named "
                         f"{name[:40]!r}… cannot be declared (blank or over 255 characters); "
                         "they stay unmanaged")
            continue
        if len(group) > 1:
            notes.append(f"project {live.project.id}: {len(group)} conversations are named "
                         f"{shown(name)} (in normal form); the oldest is declared, the others "
                         "stay unmanaged while prune is off (prune deletes extra copies of a "
                         "declared name)")
        conversations.append(_conversation_entry(group[0], live.messages, pin=pin))
        declared.append(name)
    entry: dict[str, Any] = {"id": live.project.id}
    if live.project.name:  # only shown in plans: a label too long for the format is cut
        entry["label"] = _literal(live.project.name[:MAX_LABEL_LENGTH])
    entry["scope"] = scope.value
    entry["prune"] = False
    entry["owns"] = [_literal(literal_pattern(name)) for name in declared]
    if any(len(group) > 1 for group in by_name.values()):
        entry["duplicates"] = "adopt-oldest"
    entry["conversations"] = conversations
    return entry, notes


def _conversation_entry(
    conv: Conversation, messages: dict[str, tuple[Message, ...]], *, pin: bool
) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": _literal(normal_form(conv.name))}
    if pin:
        entry["session_id"] = conv.session_id
    sent = [_message_entry(m) for m in messages.get(conv.session_id, ()) if m.user_query.strip()]
    if sent:
        entry["messages"] = sent
    return entry


def conversation_entry(name: str, prompts: Sequence[str] = ()) -> dict[str, Any]:
    """A conversation as export declares it (its name, and its prompts as `messages` when
    there are any): the entry `restore` asks to be added back to the desired-state files."""
    entry: dict[str, Any] = {"name": _literal(normal_form(name))}
    if prompts:
        entry["messages"] = [_literal(normal_form(prompt)) for prompt in prompts]
    return entry


def _message_entry(message: Message) -> str | dict[str, str]:
    """A message as declared: its prompt, or the mapping form when its answer has a reaction
    (so that a plan of the export sets none)."""
    prompt = _literal(normal_form(message.user_query))
    if message.reaction is None:
        return prompt
    return {"prompt": prompt, "reaction": message.reaction.value}


def _literal(text: str) -> str:
    """Escape `${` so that the loader's variable expansion gives `text` back (every string
    written into the document goes through here)."""
    return text.replace("${", "$${")
