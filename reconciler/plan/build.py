"""Building one project's plan from its matching. Pure: no I/O.

Turns a `Matching` into operations in the order they will be applied (renames, creates, sends,
reactions, deletes), with their reasons and preconditions, plus the warnings and notes a
reviewer needs, and what the guards (`reconciler.plan.guards`) judge the plan by.
"""

from __future__ import annotations

from collections import Counter, defaultdict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from reconciler.api.live import Conversation, Message
from reconciler.api.send_identity import carried_values, value_digest
from reconciler.desired.model import (
    SEND_VALUES,
    ConversationSpec,
    DuplicatePolicy,
    MessageSpec,
    ProjectSpec,
)
from reconciler.gcpause import collection_paused
from reconciler.plan.match import Match, MatchedBy, Matching
from reconciler.plan.model import (
    DEFAULT_MAX_DELETE_FRACTION,
    IGNORED,
    NOT_DECLARED,
    NOT_OWNED,
    ProjectPlan,
    Unmanaged,
)
from reconciler.plan.operations import (
    Create,
    Delete,
    Operation,
    React,
    Rename,
    Send,
)
from reconciler.text import normal_form, shown, skeleton


def build_project_plan(
    spec: ProjectSpec, matching: Matching, transcripts: Mapping[str, tuple[Message, ...]]
) -> ProjectPlan:
    """The plan of one project. `transcripts` maps session ids to the messages already sent
    (a message of one of reconciler's sends carrying its declared prompt, see
    `reconciler.api.send_identity.as_declared`)."""
    with collection_paused():
        return _build(spec, matching, transcripts)


def _build(
    spec: ProjectSpec, matching: Matching, transcripts: Mapping[str, tuple[Message, ...]]
) -> ProjectPlan:
    fraction = spec.max_delete_fraction
    base = ProjectPlan(
        project_id=spec.id, label=spec.label, scope=spec.scope,
        live_in_scope=matching.in_scope,
        managed_in_scope=matching.in_scope - len(matching.ignored),
        not_owned=len(matching.not_owned) if spec.prune else 0,
        max_delete_fraction=DEFAULT_MAX_DELETE_FRACTION if fraction is None else fraction,
    )
    if matching.errors:
        return replace(base, errors=tuple(matching.errors))
    messages = _messages(spec, matching, transcripts)
    operations: list[Operation] = [
        *_renames(spec, matching.matches),
        *_creates(spec, matching.unmatched),
        *messages.sends,
        *messages.reacts,
    ]
    deletes, unmanaged = _undeclared(spec, matching, transcripts)
    operations.extend(deletes)
    warnings = [*matching.notes, *_rename_hint(spec, operations)]
    return replace(base, operations=tuple(operations), unmanaged=tuple(unmanaged),
                   warnings=tuple(warnings), notes=tuple(messages.notes))


def _renames(spec: ProjectSpec, matches: list[Match]) -> list[Rename]:
    operations: list[Rename] = []
    for match in matches:
        if normal_form(match.live.name) == match.spec.name:
            continue
        if match.matched_by is MatchedBy.PIN:
            reason = f"pinned session is named {match.live.name!r}, declared {match.spec.name!r}"
        else:
            reason = f"declared with renamed_from {match.matched_name!r}"
        operations.append(Rename(project_id=spec.id, name=match.spec.name, reason=reason,
                                 session_id=match.live.session_id, old_name=match.live.name))
    return operations


def _creates(spec: ProjectSpec, unmatched: list[ConversationSpec]) -> list[Create]:
    return [
        Create(project_id=spec.id, name=conv.name,
               reason=f"declared; no conversation named {conv.name!r} in scope {spec.scope.value}")
        for conv in unmatched
    ]


@dataclass
class _Messages:
    """What the declared messages of a project's conversations need: sends, reactions, and
    notes on what the plan cannot change."""

    sends: list[Send] = field(default_factory=list)
    reacts: list[React] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _messages(
    spec: ProjectSpec, matching: Matching, transcripts: Mapping[str, tuple[Message, ...]]
) -> _Messages:
    found = _Messages()
    targets: list[tuple[ConversationSpec, Conversation | None]] = [
        (m.spec, m.live) for m in matching.matches
    ]
    targets.extend((conv, None) for conv in matching.unmatched)
    order = {conv.name: i for i, conv in enumerate(spec.conversations)}
    targets.sort(key=lambda target: order[target[0].name])
    for conv, live in targets:
        held = transcripts.get(live.session_id, ()) if live else ()
        claimed = _claim(conv.prompts, held)
        sent = Counter(normal_form(m.user_query) for m in held)
        sending: Counter[str] = Counter()
        unknown: list[int] = []
        for position, (declared, message) in enumerate(
                zip(conv.messages, claimed, strict=True), start=1):
            if message is None:
                sending[declared.prompt] += 1
                found.sends.append(_send(spec, conv, live, declared.prompt, position,
                                         sent[declared.prompt]))
                if declared.reaction is not None:
                    found.reacts.append(_react_once_sent(
                        spec, conv, live, declared, position,
                        occurrence=sent[declared.prompt] + sending[declared.prompt]))
            elif declared.reaction is None or message.reaction == declared.reaction:
                continue
            elif not message.reaction_shown:
                unknown.append(position)
            elif live is not None:
                found.reacts.append(_react(spec, conv, live, declared, position, message))
        done = [m for m in claimed if m is not None]
        found.notes.extend(_future_only(conv, done) + _unknown_reactions(conv, unknown))
    return found


def _claim(prompts: tuple[str, ...], held: tuple[Message, ...]) -> list[Message | None]:
    """For each declared prompt, in order, the first message of `held` with that prompt that
    an earlier one did not claim (None: it is not there, it is to be sent)."""
    unclaimed: defaultdict[str, deque[Message]] = defaultdict(deque)
    for message in held:
        unclaimed[normal_form(message.user_query)].append(message)
    return [unclaimed[prompt].popleft() if unclaimed[prompt] else None for prompt in prompts]


def _react(spec: ProjectSpec, conv: ConversationSpec, live: Conversation,
           declared: MessageSpec, position: int, message: Message) -> React:
    """The reaction of declared message `position`, already sent as `message`."""
    assert declared.reaction is not None
    had = "none" if message.reaction is None else message.reaction.value
    return React(project_id=spec.id, name=conv.name, session_id=live.session_id,
                 reason=f"declared message {position} is to be {declared.reaction.value}; "
                        f"its answer has {had}",
                 prompt=declared.prompt, position=position, reaction=declared.reaction,
                 message_id=message.id, before=message.reaction)


def _react_once_sent(spec: ProjectSpec, conv: ConversationSpec, live: Conversation | None,
                     declared: MessageSpec, position: int, *, occurrence: int) -> React:
    """The reaction of declared message `position`, which this plan sends: the reaction
    follows the send."""
    assert declared.reaction is not None
    return React(project_id=spec.id, name=conv.name,
                 session_id=None if live is None else live.session_id,
                 reason=f"declared message {position} is to be {declared.reaction.value}; "
                        "this plan sends it",
                 prompt=declared.prompt, position=position, reaction=declared.reaction,
                 occurrence=occurrence)


def _future_only(conv: ConversationSpec, sent: list[Message]) -> list[str]:
    """A note when a value declared for the conversation's sends is not the one the messages
    already sent carried (or may not be: where the API does not say, any declared value):
    it applies only to what is sent from now on."""
    declared = conv.send_values()
    changed = [key for key in SEND_VALUES
               if any(_carried_other(m, key, declared.get(key)) for m in sent)]
    if not changed:
        return []
    kept = "the one sent already keeps its own" if len(sent) == 1 else (
        f"the {len(sent)} sent already keep theirs")
    verb = "applies" if len(changed) == 1 else "apply"
    return [f"{shown(conv.name)}: {_and(changed)} {verb} only to prompts sent from now on; "
            f"{kept}"]


def _carried_other(message: Message, key: str, value: str | None) -> bool:
    """Whether `message` was (or may have been) sent with another `key` than `value`."""
    carried = carried_values(message.external_id)
    if carried is None:  # sent without declared values, or the API does not say
        return value is not None
    return carried[key] != ("" if value is None else value_digest(value))


def _unknown_reactions(conv: ConversationSpec, positions: list[int]) -> list[str]:
    if not positions:
        return []
    which = _and([str(p) for p in positions])
    return [f"{shown(conv.name)}: the API does not show the reaction of message {which}, so "
            "its declared reaction is set only with a message this plan sends"]


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _send(
    spec: ProjectSpec,
    conv: ConversationSpec,
    live: Conversation | None,
    prompt: str,
    position: int,
    occurrences: int,
) -> Send:
    """The send of declared message `position`; `occurrences`: how often the prompt is already
    in the live conversation's transcript."""
    if live is None:
        reason = f"declared message {position} is not yet in a new conversation"
        session_id, live_name, planned_occurrences = None, None, None
    else:
        reason = f"declared message {position} is not yet in the transcript"
        session_id, live_name, planned_occurrences = live.session_id, live.name, occurrences
    return Send(project_id=spec.id, name=conv.name, reason=reason, session_id=session_id,
                prompt=prompt, position=position, lang=spec.lang, live_name=live_name,
                occurrences=planned_occurrences, **conv.send_values())


def _undeclared(
    spec: ProjectSpec, matching: Matching, transcripts: Mapping[str, tuple[Message, ...]]
) -> tuple[list[Delete], list[Unmanaged]]:
    deletes: list[Delete] = []
    unmanaged = [Unmanaged(c.session_id, c.name, IGNORED) for c in matching.ignored]
    duplicated = _adopted(spec, matching)

    def duplicate_of(conv: Conversation) -> str:
        kept = duplicated.get(normal_form(conv.name))
        return (f"a duplicate of {shown(kept.name)} (the oldest, {kept.session_id}, is kept)"
                if kept else "")

    if not spec.prune:  # owned or not, nothing is deleted
        for conv in [*matching.undeclared, *matching.not_owned]:
            duplicate = duplicate_of(conv)
            why = f"{duplicate}; prune is off" if duplicate else NOT_DECLARED
            unmanaged.append(Unmanaged(conv.session_id, conv.name, why))
        return deletes, sorted(unmanaged, key=lambda u: (u.name, u.session_id))
    unmanaged.extend(Unmanaged(c.session_id, c.name, NOT_OWNED) for c in matching.not_owned)
    for conv in matching.undeclared:
        if spec.is_protected(conv.name):
            unmanaged.append(Unmanaged(conv.session_id, conv.name, "protected"))
        else:
            deletes.append(_delete(spec, conv, len(transcripts.get(conv.session_id, ())),
                                   reason=duplicate_of(conv) or "not declared and prune is on"))
    unmanaged.sort(key=lambda u: (u.name, u.session_id))
    return deletes, unmanaged


def _adopted(spec: ProjectSpec, matching: Matching) -> dict[str, Conversation]:
    """Under `duplicates: adopt-oldest`, the oldest conversation adopted for each name (in
    normal form) that several live conversations share: the others of that name are its
    duplicates, undeclared."""
    if spec.duplicates is not DuplicatePolicy.ADOPT_OLDEST:
        return {}
    return {normal_form(m.live.name): m.live for m in matching.matches
            if m.matched_by is not MatchedBy.PIN}


def _delete(spec: ProjectSpec, conv: Conversation, message_count: int, *, reason: str) -> Delete:
    return Delete(project_id=spec.id, name=conv.name, reason=reason,
                  session_id=conv.session_id, message_count=message_count)


def deletion_candidates(spec: ProjectSpec, matching: Matching) -> list[str]:
    """Session ids the plan will delete (their transcripts are read for the precondition): the
    undeclared conversations the project owns, unless protected."""
    if not spec.prune or matching.errors:
        return []
    return [c.session_id for c in matching.undeclared if not spec.is_protected(c.name)]


def _rename_hint(spec: ProjectSpec, operations: list[Operation]) -> list[str]:
    creates = [op.name for op in operations if isinstance(op, Create)]
    deletes = [op.name for op in operations if isinstance(op, Delete)]
    if not creates or not deletes:
        return []
    return [*_look_alikes(creates, deletes),
        f"this plan creates {_names(creates)} and deletes {_names(deletes)}: if a deleted "
        "conversation was only renamed, declare its old name with renamed_from on the new entry "
        "so that it is renamed and keeps its messages"
    ]


def _look_alikes(creates: list[str], deletes: list[str]) -> list[str]:
    """A warning for each created name that looks like a deleted one (they differ only in
    characters a reader cannot see)."""
    deleted_by_look: defaultdict[str, list[str]] = defaultdict(list)
    for old in deletes:
        deleted_by_look[skeleton(old)].append(old)
    warnings: list[str] = []
    for new in creates:
        for old in deleted_by_look.get(skeleton(new), ()):
            if old != new and len(warnings) < 10:
                warnings.append(
                    f"{shown(new)} and {shown(old)} look alike but differ in invisible "
                    "characters: the plan creates the one and deletes the other")
    return warnings


def _names(names: list[str], limit: int = 3) -> str:
    listed = ", ".join(shown(n) for n in names[:limit])
    return listed + (f" and {len(names) - limit} more" if len(names) > limit else "")

