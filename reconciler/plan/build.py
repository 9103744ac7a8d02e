"""Building one project's plan from its matching. Pure: no I/O.

Turns a `Matching` into operations in the order they will be applied (renames, creates, sends,
deletes), with their reasons and preconditions, plus the warnings and notes a reviewer needs,
and what the guards (`reconciler.plan.guards`) judge the plan by.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import replace

from reconciler.api.live import Conversation
from reconciler.desired.model import ConversationSpec, ProjectSpec
from reconciler.gcpause import collection_paused
from reconciler.plan.match import Match, MatchedBy, Matching
from reconciler.plan.model import DEFAULT_MAX_DELETE_FRACTION, ProjectPlan, Unmanaged
from reconciler.plan.operations import Create, Delete, Operation, Rename, Send
from reconciler.text import normal_form, shown, skeleton


def build_project_plan(
    spec: ProjectSpec, matching: Matching, transcripts: Mapping[str, tuple[str, ...]]
) -> ProjectPlan:
    """The plan of one project. `transcripts` maps session ids to the prompts already sent."""
    with collection_paused():
        return _build(spec, matching, transcripts)


def _build(
    spec: ProjectSpec, matching: Matching, transcripts: Mapping[str, tuple[str, ...]]
) -> ProjectPlan:
    fraction = spec.max_delete_fraction
    base = ProjectPlan(
        project_id=spec.id, label=spec.label, scope=spec.scope.value,
        live_in_scope=matching.in_scope,
        managed_in_scope=matching.in_scope - len(matching.ignored),
        max_delete_fraction=DEFAULT_MAX_DELETE_FRACTION if fraction is None else fraction,
    )
    if matching.errors:
        return replace(base, errors=tuple(matching.errors))
    operations = [
        *_renames(spec, matching.matches),
        *_creates(spec, matching.unmatched),
        *_sends(spec, matching, transcripts),
    ]
    deletes, unmanaged = _undeclared(spec, matching, transcripts)
    operations.extend(deletes)
    warnings = [*matching.notes, *_rename_hint(spec, operations)]
    return replace(base, operations=tuple(operations), unmanaged=tuple(unmanaged),
                   warnings=tuple(warnings))


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


def _sends(
    spec: ProjectSpec, matching: Matching, transcripts: Mapping[str, tuple[str, ...]]
) -> list[Send]:
    operations = []
    targets: list[tuple[ConversationSpec, Conversation | None]] = [
        (m.spec, m.live) for m in matching.matches
    ]
    targets.extend((conv, None) for conv in matching.unmatched)
    order = {conv.name: i for i, conv in enumerate(spec.conversations)}
    targets.sort(key=lambda target: order[target[0].name])
    for conv, live in targets:
        sent = Counter(normal_form(q) for q in (transcripts.get(live.session_id, ()) if live
                                                else ()))
        unclaimed = sent.copy()
        for position, prompt in enumerate(conv.prompts, start=1):
            if unclaimed[prompt] > 0:
                unclaimed[prompt] -= 1
                continue
            operations.append(_send(spec, conv, live, prompt, position, sent[prompt]))
    return operations


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
                prompt=prompt, position=position, persona=conv.persona,
                response_source=conv.response_source, lang=spec.lang, live_name=live_name,
                occurrences=planned_occurrences)


def _undeclared(
    spec: ProjectSpec, matching: Matching, transcripts: Mapping[str, tuple[str, ...]]
) -> tuple[list[Delete], list[Unmanaged]]:
    deletes: list[Delete] = []
    unmanaged = [Unmanaged(c.session_id, c.name, "ignored") for c in matching.ignored]
    for conv in matching.undeclared:
        if not spec.prune:
            unmanaged.append(Unmanaged(conv.session_id, conv.name, "not declared, prune is off"))
        elif spec.is_protected(conv.name):
            unmanaged.append(Unmanaged(conv.session_id, conv.name, "protected"))
        else:
            deletes.append(_delete(spec, conv, len(transcripts.get(conv.session_id, ()))))
    unmanaged.sort(key=lambda u: (u.name, u.session_id))
    return deletes, unmanaged


def _delete(spec: ProjectSpec, conv: Conversation, message_count: int) -> Delete:
    return Delete(project_id=spec.id, name=conv.name, reason="not declared and prune is on",
                  session_id=conv.session_id, message_count=message_count)


def deletion_candidates(spec: ProjectSpec, matching: Matching) -> list[str]:
    """Session ids the plan will delete (their transcripts are read for the precondition)."""
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

