"""The operation kinds: one class per kind, in the order apply runs them in a project.

Everything that differs between kinds lives in the kind's class (its data, words, precondition,
JSON form, cost and apply); the rest of the package iterates `KINDS` and never asks which kind
an operation is, except where a rule is about one kind (the mass-delete guard counts deletes,
the credit guard sends). See ARCHITECTURE.md, "How to extend it".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.plan.operations.base import (
    Action,
    Applied,
    ApplyContext,
    LiveView,
    MessageCursor,
    Operation,
)
from reconciler.plan.operations.create import Create
from reconciler.plan.operations.delete import Delete
from reconciler.plan.operations.react import React
from reconciler.plan.operations.rename import Rename
from reconciler.plan.operations.send import Send

# The kinds in apply order: per project, every operation of a kind runs after those of the
# kinds before it (a reaction after the sends: it needs its message).
KINDS: tuple[type[Operation], ...] = (Rename, Create, Send, React, Delete)

BY_ACTION: Mapping[Action, type[Operation]] = {kind.action: kind for kind in KINDS}

# The kinds in the order the plan's summary names them (create, rename, send, react, delete).
SUMMARY_ORDER: tuple[type[Operation], ...] = tuple(sorted(KINDS, key=lambda k: k.summary_rank))


def kind_of(action: str) -> type[Operation]:
    """The kind named `action`."""
    return BY_ACTION[Action(action)]


def operation_from_dict(data: Mapping[str, Any]) -> Operation:
    """An operation from its JSON form (the document must already be schema-valid)."""
    return kind_of(data["action"]).from_dict(data)


__all__ = [
    "BY_ACTION",
    "KINDS",
    "SUMMARY_ORDER",
    "Action",
    "Applied",
    "ApplyContext",
    "Create",
    "Delete",
    "LiveView",
    "MessageCursor",
    "Operation",
    "React",
    "Rename",
    "Send",
    "kind_of",
    "operation_from_dict",
]
