"""The desired state: what the YAML files declare, as typed immutable data.

Built by `reconciler.desired.loader`; read by the planner. Nothing here knows about YAML or HTTP.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Protocol

from reconciler.errors import Location, Problem
from reconciler.text import normal_form

MAX_ID = 2**63 - 1  # ids are 64-bit signed integers on the API's side

# The names of the throwaway conversations `reconciler test` asks in start with this (compared
# casefolded, in normal form): no declared name or `renamed_from` may, no `owns` pattern owns
# one, and the client's listings leave them out (see ARCHITECTURE.md, Invariants).
THROWAWAY_PREFIX = "reconciler-test "


def is_throwaway(name: str) -> bool:
    """Whether `name` is reserved for `reconciler test`'s throwaway conversations: in normal
    form and casefolded, it starts with `THROWAWAY_PREFIX`."""
    return normal_form(name).casefold().startswith(THROWAWAY_PREFIX)


class Scope(StrEnum):
    """Which live conversations a project entry manages."""

    MINE = "mine"
    TEAM = "team"
    ALL = "all"


class DuplicatePolicy(StrEnum):
    """What to do when a declared name matches several live conversations."""

    ERROR = "error"
    ADOPT_OLDEST = "adopt-oldest"


class Reaction(StrEnum):
    """The feedback a message's answer was given (the API's `reaction`)."""

    LIKED = "liked"
    DISLIKED = "disliked"
    NEUTRAL = "neutral"


@dataclass(frozen=True)
class Similarity:
    """`similar_to`: the answer must be at least `min` (0 to 1) similar to `text`."""

    text: str
    min: float


@dataclass(frozen=True)
class Expectations:
    """What a message's answer must say (`expect:`), defaults merged in; checked later by
    whoever evaluates answers. Phrases and texts are in normal form (`reconciler.text`).

    `cites`: True, at least one citation; a tuple, each of these sources (names, or ids as
    integers); False, none; None, not checked. `no_answer`: True, the agent must say it has no
    answer; False, it must answer. `matches` is a regular expression that compiles and cannot
    backtrack exponentially (see `reconciler.desired.expectations`).
    """

    contains: tuple[str, ...] = ()
    not_contains: tuple[str, ...] = ()
    matches: str | None = None
    cites: bool | tuple[str | int, ...] | None = None
    no_answer: bool | None = None
    max_chars: int | None = None
    similar_to: Similarity | None = None


@dataclass(frozen=True)
class MessageSpec:
    """One declared message: the prompt that must have been sent, the reaction its answer
    must have (None: left as it is), and what the answer must say (None: nothing)."""

    prompt: str
    reaction: Reaction | None = None
    expect: Expectations | None = None
    location: Location | None = field(default=None, compare=False)


# The values a conversation declares for its sends, as the API's send fields are named in
# `ConversationSpec` and in a send: they apply to prompts sent from then on.
SEND_VALUES = ("persona", "response_source", "custom_context", "agent_capability",
               "chatbot_model")


@dataclass(frozen=True)
class ConversationSpec:
    """One declared conversation.

    A plain string among `messages` is taken as a `MessageSpec` with only a prompt, as in the
    files.
    """

    name: str
    renamed_from: tuple[str, ...] = ()
    session_id: str | None = None
    messages: tuple[MessageSpec, ...] = ()
    persona: str | None = None
    response_source: str | None = None
    custom_context: str | None = None
    agent_capability: str | None = None
    chatbot_model: str | None = None
    location: Location | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        messages: tuple[MessageSpec | str, ...] = self.messages
        if any(isinstance(m, str) for m in messages):
            object.__setattr__(self, "messages", tuple(
                MessageSpec(m) if isinstance(m, str) else m for m in messages))

    @property
    def prompts(self) -> tuple[str, ...]:
        """The declared prompts, in order."""
        return tuple(m.prompt for m in self.messages)

    def send_values(self) -> dict[str, str]:
        """The values declared for this conversation's sends (`SEND_VALUES`), by field."""
        return {key: value for key in SEND_VALUES if (value := getattr(self, key)) is not None}


@dataclass(frozen=True)
class ProjectSpec:
    """One declared project and the conversations it must have."""

    id: int
    label: str | None = None
    scope: Scope = Scope.MINE
    prune: bool = False
    owns: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    protect: tuple[str, ...] = ()
    duplicates: DuplicatePolicy = DuplicatePolicy.ERROR
    max_delete_fraction: float | None = None
    lang: str | None = None
    conversations: tuple[ConversationSpec, ...] = ()
    location: Location | None = field(default=None, compare=False)

    @property
    def display_name(self) -> str:
        """How plans name the project: `label (id)` or just the id."""
        return f"{self.label} ({self.id})" if self.label else str(self.id)

    @cached_property
    def is_owned(self) -> NameTest:
        """`is_owned(name)`: whether `name` matches one of the `owns` patterns (the names this
        repository owns beyond those it declares: only they are pruned); never a throwaway
        conversation's name (`is_throwaway`), whatever the patterns."""
        matcher = glob_matcher(self.owns)

        def owned(name: str, normal: str | None = None, /) -> bool:
            return matcher(name, normal) and not is_throwaway(name)

        return owned

    @cached_property
    def is_ignored(self) -> NameTest:
        """`is_ignored(name)`: whether `name` matches one of the `ignore` patterns."""
        return glob_matcher(self.ignore)

    @cached_property
    def is_protected(self) -> NameTest:
        """`is_protected(name)`: whether `name` matches one of the `protect` patterns."""
        return glob_matcher(self.protect)


class NameTest(Protocol):
    """`test(name)`: whether a name passes; `test(name, normal)` the same, given the name's
    normal form when the caller has it already (planning does, for every live conversation)."""

    def __call__(self, name: str, normal: str | None = None, /) -> bool: ...


def glob_matcher(patterns: Iterable[str]) -> NameTest:
    """A test of whether a name, as written or in its normal form (a live name may have
    surrounding whitespace or decomposed characters), matches any of the glob `patterns` (as
    `fnmatchcase`), with the patterns compiled once: planning asks it for every live
    conversation."""
    translated = [f"(?:{fnmatch.translate(pattern)})" for pattern in patterns]
    if not translated:
        return _never
    match = re.compile("|".join(translated)).match

    def matches(name: str, normal: str | None = None, /) -> bool:
        if match(name) is not None:
            return True
        if normal is None:
            normal = normal_form(name)
        return normal != name and match(normal) is not None

    return matches


def literal_pattern(name: str) -> str:
    """The glob pattern that matches exactly `name`: each `*`, `?` and `[` written as a one-
    character class (`[*]`, `[?]`, `[[]`), the only escape the pattern syntax has."""
    return _GLOB_SPECIAL.sub(r"[\g<0>]", name)


_GLOB_SPECIAL = re.compile(r"[*?\[]")


def _never(name: str, normal: str | None = None, /) -> bool:
    return False


@dataclass(frozen=True)
class DesiredState:
    """Everything the given files declare, projects in the order they were declared."""

    projects: tuple[ProjectSpec, ...] = ()
    files: tuple[str, ...] = ()
    warnings: tuple[Problem, ...] = ()  # what is valid but may surprise (located)

    @property
    def conversation_count(self) -> int:
        """How many conversations are declared across all projects."""
        return sum(len(p.conversations) for p in self.projects)

    def select(self, project_ids: set[int] | None) -> DesiredState:
        """The same state restricted to `project_ids` (all when None)."""
        if project_ids is None:
            return self
        kept = tuple(p for p in self.projects if p.id in project_ids)
        return DesiredState(projects=kept, files=self.files, warnings=self.warnings)
