"""The plan: plain, immutable data describing what `apply` would change, and why.

A plan is built once by the planner in a deterministic order and never mutated. Renderers turn
it into text; `Plan.to_dict()` is its JSON form and `Plan.checksum` identifies a reviewed plan.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from reconciler.desired.model import Scope
from reconciler.errors import InputError, Problem
from reconciler.jsonio import canonical
from reconciler.plan.operations import KINDS, Operation, operation_from_dict
from reconciler.text import clipped

PLAN_FORMAT_VERSION = 2
DEFAULT_MAX_DELETE_FRACTION = 0.3
IGNORED = "ignored"  # why an `Unmanaged` conversation matched an `ignore` pattern
NOT_DECLARED = "not declared, prune is off"  # why an undeclared one is left alone
# why a pruning project leaves an undeclared one alone
NOT_OWNED = "not owned by this repository: not declared, and no owns pattern matches it"


@dataclass(frozen=True)
class Unmanaged:
    """A live in-scope conversation the plan leaves alone, and why."""

    session_id: str
    name: str
    # NOT_DECLARED, "protected", IGNORED, not owned, or a duplicate's (adopt-oldest) with
    # prune off
    why: str


@dataclass(frozen=True)
class Budget:
    """What making the plan cost and what applying it needs: API requests (the key's budget
    per minute) and query credits (one per sent prompt).

    `apply_requests` counts the requests of the operations themselves (see
    `reconciler.plan.budget`); `credits_left` is None when the API did not report its credits.
    """

    requests_made: int = 0
    apply_requests: int = 0
    credits_needed: int = 0
    credits_left: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"requests_made": self.requests_made, "apply_requests": self.apply_requests,
                "credits_needed": self.credits_needed, "credits_left": self.credits_left}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Budget:
        """Inverse of `to_dict`."""
        left = data.get("credits_left")
        return cls(requests_made=int(data["requests_made"]),
                   apply_requests=int(data["apply_requests"]),
                   credits_needed=int(data["credits_needed"]),
                   credits_left=None if left is None else int(left))


class LiveRead(StrEnum):
    """How a project's live state was read for its plan (its JSON value in `live_read`)."""

    LISTING = "listing"  # every conversation in scope
    BY_NAME = "names"  # prune off: only the conversations named as declared, looked up by name


@dataclass(frozen=True)
class ProjectPlan:
    """Everything the plan says about one project.

    `managed_in_scope` (live in scope and not ignored), `not_owned` (of those, the undeclared
    ones a pruning project leaves alone because it does not own them; 0 when prune is off, and
    in plans made before it was recorded) and `max_delete_fraction` are what the mass-delete
    guard judges the project's deletes by (against `owned_in_scope`) when the plan is made; a
    saved plan is judged by a fresh count of live state instead (it may claim to own no more
    than it manages there), and its threshold is capped unless it is signed
    (`reconciler.plan.guards`). `live_read` says how live state was read: `listing` (every
    conversation in scope) or `names` (prune off: only the conversations named as declared,
    looked up by name, so `live_in_scope`, `managed_in_scope` and `unmanaged` count only those).
    `notes` say what is declared that the plan does not change (values that apply only to
    future sends).
    """

    project_id: int
    label: str | None
    scope: Scope
    live_in_scope: int = 0
    managed_in_scope: int = 0
    not_owned: int = 0
    max_delete_fraction: float = DEFAULT_MAX_DELETE_FRACTION
    operations: tuple[Operation, ...] = ()
    unmanaged: tuple[Unmanaged, ...] = ()
    warnings: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    live_read: LiveRead = LiveRead.LISTING
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Given as their JSON values too (a plan read back, a test): kept as the enums.
        object.__setattr__(self, "scope", Scope(self.scope))
        object.__setattr__(self, "live_read", LiveRead(self.live_read))

    @property
    def display_name(self) -> str:
        """`label (id)` or the id."""
        return f"{self.label} ({self.project_id})" if self.label else str(self.project_id)

    @property
    def owned_in_scope(self) -> int:
        """The managed conversations this repository owns (declared, or matching `owns`): what
        the mass-delete guard counts deletes against."""
        return self.managed_in_scope - self.not_owned

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "project_id": self.project_id,
            "label": self.label,
            "scope": self.scope.value,
            "live_in_scope": self.live_in_scope,
            "managed_in_scope": self.managed_in_scope,
            "not_owned": self.not_owned,
            "max_delete_fraction": self.max_delete_fraction,
            "operations": [op.to_dict() for op in self.operations],
            "unmanaged": [
                {"session_id": u.session_id, "name": u.name, "why": u.why} for u in self.unmanaged
            ],
            "warnings": list(self.warnings),
            "errors": list(self.errors),
            "live_read": self.live_read.value,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProjectPlan:
        """Inverse of `to_dict`."""
        return cls(
            project_id=int(data["project_id"]),
            label=data.get("label"),
            scope=Scope(data["scope"]),
            live_in_scope=int(data["live_in_scope"]),
            managed_in_scope=int(data["managed_in_scope"]),
            not_owned=int(data.get("not_owned", 0)),  # plans made before it: all were owned
            max_delete_fraction=float(data["max_delete_fraction"]),
            operations=tuple(operation_from_dict(op) for op in data["operations"]),
            unmanaged=tuple(
                Unmanaged(u["session_id"], u["name"], u["why"]) for u in data["unmanaged"]
            ),
            warnings=tuple(data["warnings"]),
            errors=tuple(data["errors"]),
            live_read=LiveRead(data.get("live_read", LiveRead.LISTING)),
            notes=tuple(data.get("notes", ())),
        )


@dataclass(frozen=True)
class Plan:
    """The whole plan: one entry per project, in the order they were declared.

    `api` says where it was made (the API's base URL, or "sandbox"), so that a plan reviewed
    against one environment is never applied to another.
    """

    projects: tuple[ProjectPlan, ...] = ()
    errors: tuple[str, ...] = ()
    api: str = ""
    budget: Budget | None = None
    _checksum: str | None = field(default=None, compare=False, repr=False)

    @property
    def operations(self) -> tuple[Operation, ...]:
        """Every operation of every project, in plan order."""
        return tuple(op for project in self.projects for op in project.operations)

    @property
    def all_errors(self) -> tuple[str, ...]:
        """Plan-wide errors, then each project's, prefixed with the project."""
        return self.errors + tuple(
            f"project {p.display_name}: {e}" for p in self.projects for e in p.errors
        )

    @property
    def has_changes(self) -> bool:
        """True when applying would change anything."""
        return any(p.operations for p in self.projects)

    def summary(self) -> dict[str, int]:
        """Operation counts by action (every action present, zeros included)."""
        counts = Counter(op.action for op in self.operations)
        summary = {kind.action.value: counts.get(kind.action, 0) for kind in KINDS}
        summary["unmanaged"] = sum(len(p.unmanaged) for p in self.projects)
        return summary

    def _body(self) -> dict[str, Any]:
        body = {
            "format_version": PLAN_FORMAT_VERSION,
            "api": self.api,
            "summary": self.summary(),
            "errors": list(self.all_errors),
            "projects": [p.to_dict() for p in self.projects],
        }
        if self.budget is not None:
            body["budget"] = self.budget.to_dict()
        return body

    @property
    def checksum(self) -> str:
        """sha256 of the canonical JSON of the plan's content."""
        return self._checksum or _checksum(self._body())

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (schemas/plan.schema.json)."""
        body = self._body()
        return {**body, "checksum": self._checksum or _checksum(body)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "plan") -> Plan:
        """Read a saved plan; raises InputError if it was altered after it was written."""
        body = {k: v for k, v in data.items() if k not in ("checksum", "signature")}
        if data.get("checksum") != _checksum(body):
            raise InputError([Problem(
                f"{source}: checksum mismatch: the plan was changed after it was written; "
                "make a new one with `reconciler plan --out`"
            )])
        projects = tuple(ProjectPlan.from_dict(p) for p in data["projects"])
        impossible = _impossible(projects)
        if impossible:
            raise InputError([Problem(f"{source}: reconciler never makes such a plan: {why}; "
                                      "make a new one with `reconciler plan --out`")
                              for why in impossible])
        project_errors = {f"project {p.display_name}: {e}" for p in projects for e in p.errors}
        errors = tuple(e for e in data["errors"] if e not in project_errors)
        budget = Budget.from_dict(data["budget"]) if "budget" in data else None
        return cls(projects=projects, errors=errors, api=data["api"], budget=budget,
                   _checksum=data["checksum"])


def _impossible(projects: tuple[ProjectPlan, ...]) -> list[str]:
    """What no plan built by the planner has (a hand-made or edited plan may): a project twice,
    an operation filed under another project, an operation twice, two conversations given one
    name."""
    problems: list[str] = []
    ids = [p.project_id for p in projects]
    problems += [f"project {i} appears twice" for i in sorted({i for i in ids if ids.count(i) > 1})]
    for project in projects:
        keys: set[str] = set()
        named: set[str] = set()
        for op in project.operations:
            key = clipped(op.key)
            if op.project_id != project.project_id:
                problems.append(f"operation {key} is filed under project {project.project_id}")
            if op.key in keys:
                problems.append(f"operation {key} appears twice")
            keys.add(op.key)
            if op.gives_name:
                if op.name in named:
                    problems.append(f"two operations of project {project.project_id} give the "
                                    f"name {clipped(op.name, quote=repr)}")
                named.add(op.name)
    return problems


def _checksum(body: Mapping[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(canonical(body)).hexdigest()
