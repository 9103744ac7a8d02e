"""Matching declared conversations to live ones. Pure: no I/O.

Each live conversation is claimed at most once, in this order: session-id pins, exact names,
`renamed_from` names; ambiguity is an error unless the project adopts the oldest (the smallest
id); what is left in scope is undeclared, and split by ownership: the project owns an undeclared
conversation when its name matches an `owns` pattern or is a declared name (an extra copy left
by `adopt-oldest`). Only what it owns may ever be pruned: an API key is often shared with
production integrations, which create conversations as the key's user. Declared conversations
and their `renamed_from` sources need no `owns`: declaring one is owning it. Names compare in
their normal form (NFC, without surrounding whitespace). Dicts keyed by session id and name keep
it O(n).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from operator import attrgetter

from reconciler.api.live import Conversation
from reconciler.desired.model import ConversationSpec, DuplicatePolicy, ProjectSpec, Scope
from reconciler.gcpause import collection_paused
from reconciler.text import normal_form


class MatchedBy(StrEnum):
    """How a declared conversation found its live one."""

    PIN = "session_id"
    NAME = "name"
    RENAMED_FROM = "renamed_from"


@dataclass(frozen=True)
class Match:
    """A declared conversation and the live conversation it manages."""

    spec: ConversationSpec
    live: Conversation
    matched_by: MatchedBy
    matched_name: str  # the name that matched (an old name for renamed_from)


@dataclass
class Matching:
    """The outcome of matching one project.

    `undeclared`: the in-scope conversations no entry claimed that the project owns (what
    prune deletes, unless protected); `not_owned`: the other unclaimed ones, never deleted;
    both by name, the same names oldest first. `ignored`: those `ignore` matched.
    """

    matches: list[Match] = field(default_factory=list)
    unmatched: list[ConversationSpec] = field(default_factory=list)
    undeclared: list[Conversation] = field(default_factory=list)
    not_owned: list[Conversation] = field(default_factory=list)
    ignored: list[Conversation] = field(default_factory=list)
    in_scope: int = 0
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def in_scope(conversation: Conversation, scope: Scope, user_id: str) -> bool:
    """Whether `scope` makes `conversation` one this project manages."""
    if scope is Scope.ALL:
        return True
    if scope is Scope.TEAM:
        return conversation.created_by is not None
    return conversation.created_by == user_id


def match_project(
    spec: ProjectSpec,
    conversations: Iterable[Conversation],
    *,
    user_id: str,
    pinned: dict[str, Conversation] | None = None,
) -> Matching:
    """Match `spec`'s declared conversations to the live `conversations`."""
    with collection_paused():
        return _match(spec, conversations, user_id=user_id, pinned=pinned)


def _match(
    spec: ProjectSpec,
    conversations: Iterable[Conversation],
    *,
    user_id: str,
    pinned: dict[str, Conversation] | None,
) -> Matching:
    # One pass per step, each a comprehension or a loop with its lookups bound once: planning
    # runs it over every live conversation of a project (100,000 in the benchmark).
    listing = list(conversations)
    result = Matching()
    by_session: dict[str, Conversation] = dict(pinned or {})
    if any(conv_spec.session_id is not None for conv_spec in spec.conversations):
        by_session.update({conv.session_id: conv for conv in listing})  # only pins look here
    scoped = _scoped(listing, spec.scope, user_id)
    result.in_scope = len(scoped)
    is_ignored = spec.is_ignored
    ignored = result.ignored
    candidates: dict[str, list[Conversation]] = {}
    for conv in scoped:
        name = conv.name
        normal = normal_form(name)
        if is_ignored(name, normal):
            ignored.append(conv)
            continue
        group = candidates.get(normal)
        if group is None:
            candidates[normal] = [conv]
        else:
            group.append(conv)

    claimed: set[str] = set()
    pending = _match_pins(spec, by_session, claimed, result)
    pending = _match_names(spec, pending, candidates, claimed, result, by_renames=False)
    result.unmatched = _match_names(spec, pending, candidates, claimed, result, by_renames=True)
    _split_undeclared(spec, candidates, claimed, result)
    return result


def _split_undeclared(
    spec: ProjectSpec,
    candidates: dict[str, list[Conversation]],
    claimed: set[str],
    result: Matching,
) -> None:
    """The unclaimed `candidates` (grouped by normal name) into the project's own and the
    others, each by name, the same names oldest first."""
    declared = {conv_spec.name for conv_spec in spec.conversations}  # in normal form
    is_owned = spec.is_owned
    owned, not_owned = result.undeclared, result.not_owned
    for normal, group in candidates.items():
        named = normal in declared  # an extra copy of a declared name is the project's
        for conv in group:
            if conv.session_id in claimed:
                continue
            if named or is_owned(conv.name, normal):
                owned.append(conv)
            else:
                not_owned.append(conv)
    for found in (owned, not_owned):
        # By name, the same names oldest first: two stable sorts compare no tuples.
        found.sort(key=attrgetter("id"))
        found.sort(key=attrgetter("name"))


def _scoped(conversations: list[Conversation], scope: Scope, user_id: str) -> list[Conversation]:
    """The `conversations` that `in_scope` says `scope` manages, in order (one comprehension,
    not a call per conversation)."""
    if scope is Scope.ALL:
        return conversations
    if scope is Scope.TEAM:
        return [conv for conv in conversations if conv.created_by is not None]
    return [conv for conv in conversations if conv.created_by == user_id]


def _match_pins(
    spec: ProjectSpec,
    by_session: dict[str, Conversation],
    claimed: set[str],
    result: Matching,
) -> list[ConversationSpec]:
    pending = []
    for conv_spec in spec.conversations:
        if conv_spec.session_id is None:
            pending.append(conv_spec)
            continue
        live = by_session.get(conv_spec.session_id)
        if live is None:
            result.errors.append(
                f"{conv_spec.name!r} is pinned to session {conv_spec.session_id}, which does not "
                "exist (deleted outside reconciler?): remove the session_id to create it anew"
            )
            continue
        claimed.add(live.session_id)
        result.matches.append(Match(conv_spec, live, MatchedBy.PIN, live.name))
    return pending


def _match_names(
    spec: ProjectSpec,
    pending: list[ConversationSpec],
    candidates: dict[str, list[Conversation]],
    claimed: set[str],
    result: Matching,
    *,
    by_renames: bool,
) -> list[ConversationSpec]:
    """Match each pending spec by its name (or its old names); return those still unmatched."""
    how = MatchedBy.RENAMED_FROM if by_renames else MatchedBy.NAME
    still_pending = []
    for conv_spec in pending:
        names = conv_spec.renamed_from if by_renames else (conv_spec.name,)
        group: list[Conversation] = []
        for name in names:
            group = [c for c in candidates.get(name, ()) if c.session_id not in claimed]
            if group:
                break
        if not group:
            still_pending.append(conv_spec)
            continue
        found = _choose(spec, conv_spec, group, result)
        if found is not None:  # None: ambiguous, reported as an error
            claimed.add(found.session_id)
            result.matches.append(Match(conv_spec, found, how, found.name))
    return still_pending


def _choose(
    spec: ProjectSpec,
    conv_spec: ConversationSpec,
    group: list[Conversation],
    result: Matching,
) -> Conversation | None:
    if len(group) == 1:
        return group[0]
    name = group[0].name
    ordered = sorted(group, key=lambda c: c.id)  # ids only grow: the smallest is the oldest
    if spec.duplicates is DuplicatePolicy.ADOPT_OLDEST:
        others = ", ".join(c.session_id for c in ordered[1:])
        result.notes.append(
            f"{conv_spec.name!r}: {len(group)} live conversations are named {name!r}; adopted "
            f"the oldest ({ordered[0].session_id}), the others are undeclared: {others}"
        )
        return ordered[0]
    sessions = ", ".join(c.session_id for c in ordered)
    result.errors.append(
        f"{conv_spec.name!r}: {len(group)} live conversations are named {name!r} "
        f"({sessions}); pin one with session_id, or set duplicates: adopt-oldest"
    )
    return None
