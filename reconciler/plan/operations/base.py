"""What every operation kind shares: its name (`Action`), the fields and methods each kind
defines, the live state its precondition is checked against (`LiveView`), and what applying it
is given (`ApplyContext`) and returns (`Applied`).

A kind is one class in its own module of this package, listed in the registry
(`reconciler.plan.operations`); see ARCHITECTURE.md, "How to extend it".
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self

from reconciler.api.live import Conversation, Message, Transcript
from reconciler.text import normal_form

if TYPE_CHECKING:  # not imported when run: plans are made, shown and read without asyncio
    from reconciler.api.protocol import ConversationApi


class Action(StrEnum):
    """The name of an operation kind: what it does to one conversation (its JSON `action`)."""

    RENAME = "rename"
    CREATE = "create"
    SEND = "send"
    REACT = "react"
    DELETE = "delete"


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


@dataclass
class MessageCursor:
    """Where the operations on one conversation stand in its messages while they run one after
    another: its newest message id (None: unknown), which each send moves on, and its messages
    once one of them read them (None: not read)."""

    newest_id: int | None = None
    messages: tuple[Message, ...] | None = None


class ApplyContext(Protocol):
    """What applying an operation is given by the run that applies it."""

    @property
    def api(self) -> ConversationApi:
        """The API the run writes to."""
        ...

    @property
    def created(self) -> Mapping[str, str]:
        """The session ids of the conversations this run created, by name."""
        ...

    @property
    def cursor(self) -> MessageCursor:
        """What the operations before this one on its conversation learnt of its messages."""
        ...

    def backup(self, project_id: int, transcript: Transcript) -> str | None:
        """Write `transcript` where backups go and return its path (None: backups are off).
        Raises OSError when it cannot be written."""
        ...


@dataclass(frozen=True)
class Applied:
    """What applying one operation did: `detail` in words, the session it acted on, the backup
    it wrote, the message a send made (its answer is checked against the declared `expect:`);
    `failed` when it was refused without an API error (a delete whose conversation changed
    since the plan)."""

    detail: str
    session_id: str | None = None
    backup: str | None = None
    failed: bool = False
    answer: Message | None = None


def present(**values: Any) -> dict[str, Any]:
    """`values` without the ones that are None (a JSON form leaves them out)."""
    return {key: value for key, value in values.items() if value is not None}


def changed_since(changes: list[str]) -> str:
    """Why an operation is stale when `changes` happened since its plan ("" when none)."""
    return "changed since the plan was made: " + "; ".join(changes) if changes else ""


@dataclass(frozen=True)
class Operation(ABC):
    """One change to one conversation. Each kind is a subclass: its fields, and its class
    attributes below, which say how the plan shows it and how apply runs it.

    `session_id` is the live conversation it acts on (None: a create, or a send into a
    conversation this plan creates).
    """

    action: ClassVar[Action]
    symbol: ClassVar[str]  # its mark in the text plan (Terraform-like: `+`, `-`, `~`)
    color: ClassVar[str]  # the ANSI colour of its plan line
    summary_rank: ClassVar[int]  # its place in the plan's summary line and table
    requests: ClassVar[int]  # the requests applying it makes when nothing fails
    credits: ClassVar[int] = 0  # the query credits applying it uses
    gives_name: ClassVar[bool] = False  # gives its `name` to a conversation
    vacates: ClassVar[bool] = False  # takes its conversation's current name away
    creates: ClassVar[bool] = False  # when done, its `name` is a conversation this run created
    after_duplicate_check: ClassVar[bool] = False  # runs only when no other run created a name
    skipped_after_failure: ClassVar[bool] = False  # skipped when anything before it failed
    backs_up: ClassVar[bool] = False  # writes a transcript backup first (`ApplyContext.backup`)
    # The operations on one conversation run one after another, in plan order, sharing a
    # `MessageCursor`; the ones after one that was not done are skipped, `skipped_in_sequence`
    # saying why.
    sequential: ClassVar[bool] = False
    skipped_in_sequence: ClassVar[str] = ""

    project_id: int
    name: str
    reason: str
    session_id: str | None

    @property
    def key(self) -> str:
        """A stable identifier of the operation inside its plan."""
        return f"{self.project_id}/{self.action.value}/{self.group()[1]}{self._distinct()}"

    def _distinct(self) -> str:
        """What tells this operation from the others of its kind on one conversation."""
        return ""

    @property
    @abstractmethod
    def requirement(self) -> str:
        """Its precondition in words, as plans show it."""

    @abstractmethod
    def describe(self) -> str:
        """Its line in the plan, without its symbol."""

    @abstractmethod
    def why_stale(self, live: LiveView) -> str:
        """Why it may no longer be applied to `live` ("" when its precondition holds)."""

    def transcript_needed(self, listed: Mapping[str, Conversation]) -> str | None:
        """The session whose transcript its precondition needs (None: none), given the
        conversations `listed`."""
        return self.session_id

    def waits_for(self) -> str | None:
        """The name of the conversation this plan creates that it goes into (None: none)."""
        return None

    def target(self, created: Mapping[str, str]) -> str | None:
        """The session it acts on: its own, or the one this run `created` for it."""
        waits = self.waits_for()
        return self.session_id if waits is None else created.get(waits)

    def group(self) -> tuple[int, str]:
        """The conversation it acts on, as far as the plan knows it."""
        return self.project_id, self.session_id or self.name

    def reads_once(self) -> tuple[int, str] | None:
        """A read its apply makes once per conversation, whatever the number of operations
        (None: none)."""
        return None

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """JSON form (schemas/plan.schema.json, `operation`); keys with no value are left
        out."""

    @classmethod
    @abstractmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Inverse of `to_dict` (the document must already be schema-valid). The key, the
        precondition's words and its copies of the operation's fields are derived from the
        operation, not read: what a plan shows is what it checks and does."""

    @abstractmethod
    async def apply(self, context: ApplyContext) -> Applied:
        """Make the change through `context.api`. Raises ApiError when the API refuses it."""
