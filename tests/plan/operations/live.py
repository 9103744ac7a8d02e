"""What the tests of the operation kinds share: live conversations and views to check
preconditions against, and an operation applied to the emulator through the client."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.api.client import Client
from reconciler.api.live import Conversation, Message, Transcript
from reconciler.api.protocol import ConversationApi
from reconciler.api.settings import ClientSettings, Secret
from reconciler.emulator import Emulator
from reconciler.plan.model import Plan, ProjectPlan
from reconciler.plan.operations import Applied, LiveView, MessageCursor, Operation
from reconciler.render.formats import render_text

PROJECT = 7


def conv(session: str, name: str) -> Conversation:
    return Conversation(id=int(session.removeprefix("s")), session_id=session, name=name,
                        project_id=PROJECT, created_by="1", created_at="2024-01-01 00:00:00",
                        updated_at="2024-01-01 00:00:00")


def view(*conversations: Conversation, prompts: dict[str, list[str]] | None = None,
         vacating: tuple[str, ...] = ()) -> LiveView:
    prompts = prompts or {}
    transcripts: dict[str, Transcript | None] = {
        c.session_id: Transcript(c, tuple(
            Message(i, p, "answer", "2024-01-01 00:00:00")
            for i, p in enumerate(prompts.get(c.session_id, []), start=1)))
        for c in conversations
    }
    holders: dict[str, frozenset[str]] = {}
    for c in conversations:
        holders[c.name] = holders.get(c.name, frozenset()) | {c.session_id}
    return LiveView(by_session={c.session_id: c for c in conversations}, holders=holders,
                    transcripts=transcripts, vacating=frozenset(vacating))


class Recording:
    """The client, recording the prompts it is asked to send (what a send passes to the API:
    the emulator does not keep a persona, a response source or a language)."""

    def __init__(self, api: ConversationApi) -> None:
        self.api = api
        self.sent: list[tuple[tuple[object, ...], dict[str, object]]] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self.api, name)

    async def send_message(self, *args: Any, **kwargs: Any) -> Message:
        self.sent.append((args, kwargs))
        return await self.api.send_message(*args, **kwargs)


@dataclass
class Context:
    """An `ApplyContext` that keeps the transcripts it is asked to back up (`backups`), or
    refuses to write them (`backup_error`), or has backups off (`backups_off`)."""

    api: ConversationApi
    created: Mapping[str, str] = field(default_factory=dict)
    cursor: MessageCursor = field(default_factory=MessageCursor)
    backups: list[Transcript] = field(default_factory=list)
    backup_error: OSError | None = None
    backups_off: bool = False

    def backup(self, project_id: int, transcript: Transcript) -> str | None:
        if self.backup_error is not None:
            raise self.backup_error
        if self.backups_off:
            return None
        self.backups.append(transcript)
        return f"backups/{project_id}/{transcript.conversation.session_id}.json"


def apply(emulator: Emulator, *operations: Operation,
          **context: object) -> tuple[list[Applied], Context]:
    """Apply `operations` one after another to `emulator`, with one context."""
    settings = ClientSettings(api_key=Secret(emulator.api_key), base_url=emulator.base_url)

    async def run() -> tuple[list[Applied], Context]:
        async with Client(settings) as client:
            given = Context(Recording(client), **context)  # type: ignore[arg-type]
            return [await op.apply(given) for op in operations], given

    return asyncio.run(run())


def seed(emulator: Emulator, name: str, *prompts: str) -> str:
    """A conversation of the key's user in project 7, holding `prompts`; its session id."""
    emulator.ensure_project(PROJECT)
    session = str(emulator.add_conversation(PROJECT, name)["session_id"])
    for prompt in prompts:
        emulator.add_message(PROJECT, session, prompt)
    return session


def names(emulator: Emulator) -> list[str]:
    return [c["name"] for c in emulator.conversations(PROJECT)]


def painted(op: Operation) -> str:
    """The operation's line in a coloured text plan."""
    plan = Plan(projects=(ProjectPlan(project_id=PROJECT, label=None, scope="mine",
                                      operations=(op,)),))
    return render_text(plan, color=True).splitlines()[1].strip()
