"""The guards a plan must pass before anything of it is applied. Pure: no I/O.

`guard_errors` is the one decision for `plan`, `apply -f` and `apply --plan` alike, judged with
the flags of the run that applies the plan, and with numbers the plan cannot lie about
(`send_refusals`, its part about prompts, also judges what a `restore` re-sends):

- a plan just made from the declared state and live state is judged by its own numbers (each
  project's delete threshold and the conversations it owns, counted in this run);
- a saved plan (a file anyone may have edited, its checksum computed again) is judged by what a
  fresh read of live state counts (`LiveCount`, from the stale-plan check's read) and by a
  threshold no higher than the tool's default (`GuardLimits.max_delete_fraction`), unless its
  signature proves the planner wrote its threshold; what it owns needs the declared state, which
  it does not carry, so it may claim to own no more than it manages in live state now.

The guards:

- mass-delete guard, per project (`mass_delete_refusal`): of the conversations the repository
  owns in scope (declared, or matching `owns`; never an ignored one), a plan may delete at most
  `max_delete_fraction`, whatever their number, and never every one of them;
- `--max-deletes N`: at most N deletes in the whole plan;
- `--max-sends N`: at most N prompts sent in the whole plan;
- query credits: the plan's sends must fit in the credits the account has left (when the API
  reports them), so that sends never stop half-way.

`--allow-mass-delete` lifts the first two, never the third. Fractions are compared exactly, as
the decimal written in the file (0.29 of 100 allows 29), never in floating point.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from fractions import Fraction

from reconciler.plan.budget import sends
from reconciler.plan.model import Plan, ProjectPlan
from reconciler.plan.operations import Delete, Operation


@dataclass(frozen=True)
class LiveCount:
    """One project's conversations as a fresh read of live state counts them: how many are in
    its scope, and the sessions of those it manages (in scope, and not among those its plan
    lists as ignored)."""

    in_scope: int
    managed: frozenset[str]


NOTHING_LIVE = LiveCount(in_scope=0, managed=frozenset())


@dataclass(frozen=True)
class GuardLimits:
    """The guard flags of one run, the query credits the account has left (None: not known),
    and where the mass-delete guard's numbers come from.

    `live` holds each project's fresh count of live state (None: the plan was made in this run,
    so its own counts are fresh; a project missing from it has nothing live);
    `max_delete_fraction` is the highest threshold a project of the plan may have (None: the
    plan's own thresholds were read from the declared state, or signed by the planner).
    """

    allow_mass_delete: bool = False
    max_deletes: int | None = None
    max_sends: int | None = None
    credits_left: int | None = None
    live: Mapping[int, LiveCount] | None = None
    max_delete_fraction: float | None = None


def exact_fraction(value: float) -> Fraction:
    """`value` as the exact fraction of the shortest decimal that writes it (0.29 -> 29/100)."""
    return Fraction(repr(value)) if isinstance(value, float) else Fraction(value)


def deletes_allowed(fraction: float, managed: int) -> int:
    """The number of deletes `fraction` allows among `managed` conversations (rounded down)."""
    exact = exact_fraction(fraction)
    return exact.numerator * managed // exact.denominator


def guard_errors(plan: Plan, limits: GuardLimits) -> tuple[list[str], dict[int, list[str]]]:
    """What the guards refuse in `plan` under `limits`: plan-wide errors, and each project's
    (by project id; projects with none are absent)."""
    by_project = {}
    for project in plan.projects:
        errors = _project_errors(project, limits)
        if errors:
            by_project[project.project_id] = errors
    return _plan_wide_errors(plan, limits), by_project


def with_guards(plan: Plan, limits: GuardLimits) -> Plan:
    """`plan` with the guards' errors added to it (the same object when it has no new ones)."""
    plan_wide, by_project = guard_errors(plan, limits)
    added = tuple(e for e in plan_wide if e not in plan.errors)
    projects = tuple(_with_errors(p, by_project.get(p.project_id, [])) for p in plan.projects)
    if not added and projects == plan.projects:
        return plan
    return replace(plan, projects=projects, errors=plan.errors + added, _checksum=None)


def _with_errors(project: ProjectPlan, errors: list[str]) -> ProjectPlan:
    added = tuple(e for e in errors if e not in project.errors)
    return replace(project, errors=project.errors + added) if added else project


def _project_errors(project: ProjectPlan, limits: GuardLimits) -> list[str]:
    numbers = _numbers(project, limits)
    if isinstance(numbers, str):
        return [f"the guard cannot judge this plan: {numbers}; reconciler never makes "
                "such a plan: make a new one"]
    if limits.allow_mass_delete:
        return []
    refusal = mass_delete_refusal(numbers.deletes, numbers.owned, numbers.fraction,
                                  capped_from=project.max_delete_fraction if numbers.capped
                                  else None)
    return [] if refusal is None else [refusal]


def mass_delete_refusal(deletes: int, owned: int, fraction: float, *,
                        capped_from: float | None = None) -> str | None:
    """Why the mass-delete guard refuses a project's plan that deletes `deletes` of the `owned`
    conversations the repository owns in scope under `max_delete_fraction` `fraction`, or None
    when it allows it: every one of them (at least one), or more than `fraction` of them
    (rounded down), of any number. `capped_from` is a saved plan's own threshold when `fraction`
    is the cap that replaced it. `--allow-mass-delete` lifts it (the caller's decision)."""
    if deletes == 0:
        return None
    if deletes >= owned:
        return (f"mass-delete guard: the plan deletes every conversation this repository owns "
                f"in scope ({deletes} of {owned}); check the plan, then pass "
                "--allow-mass-delete")
    allowed = deletes_allowed(fraction, owned)
    if deletes <= allowed:
        return None
    if capped_from is None:
        threshold = f"max_delete_fraction {fraction}"
        remedy = " (or raise max_delete_fraction for this project)"
    else:
        threshold = (f"max_delete_fraction {fraction} (the default: the saved plan's own "
                     f"{capped_from} counts only in a signed plan)")
        remedy = ""
    return (f"mass-delete guard: the plan deletes {deletes} of the {owned} conversations this "
            f"repository owns in scope, more than {threshold} allows ({allowed}); check the "
            f"plan, then pass --allow-mass-delete{remedy}")


@dataclass(frozen=True)
class _Numbers:
    """What the mass-delete guard judges one project by."""

    deletes: int
    owned: int
    fraction: float
    capped: bool  # the plan's own threshold was higher than the cap


def _numbers(project: ProjectPlan, limits: GuardLimits) -> _Numbers | str:
    """The numbers of `project` the guard judges by: its own when it was just planned, else a
    fresh count of live state and the threshold capped by `limits`; or what does not add up
    in what a (possibly hand-edited) plan gives the guard."""
    fraction = project.max_delete_fraction
    if not (isinstance(fraction, float | int) and 0 < fraction <= 1):  # NaN fails too
        return f"max_delete_fraction {fraction!r} is not greater than 0 and at most 1"
    deletes = [op for op in project.operations if isinstance(op, Delete)]
    owned = project.owned_in_scope
    if limits.live is None:
        if not 0 <= len(deletes) <= owned <= project.managed_in_scope <= project.live_in_scope:
            return (f"it deletes {len(deletes)} conversations of the {owned} it owns among the "
                    f"{project.managed_in_scope} it manages and {project.live_in_scope} in scope")
    else:
        live = limits.live.get(project.project_id, NOTHING_LIVE)
        outside = sorted(op.session_id for op in deletes if op.session_id not in live.managed)
        if outside:
            return (f"it deletes {len(outside)} conversation(s) that are not among the "
                    f"{len(live.managed)} it manages in scope now ({_sessions(outside)})")
        # What the repository owns needs its `owns` patterns and declared names, which a saved
        # plan does not carry: it may claim no more than it manages in live state now.
        if not isinstance(owned, int) or owned < 0:
            return f"it claims to own {owned!r} conversations"
        owned = min(owned, len(live.managed))
    cap = limits.max_delete_fraction
    capped = cap is not None and exact_fraction(cap) < exact_fraction(fraction)
    return _Numbers(deletes=len(deletes), owned=owned,
                    fraction=cap if cap is not None and capped else fraction, capped=capped)


def _sessions(sessions: list[str], limit: int = 3) -> str:
    listed = ", ".join(sessions[:limit])
    return listed + (f" and {len(sessions) - limit} more" if len(sessions) > limit else "")


@dataclass(frozen=True)
class Sending:
    """What sends prompts, in the guards' words: `sends` ("{n}": how many), and what a refusal
    for `--max-sends` or for the credits left means for it."""

    sends: str
    over_max_sends: str
    over_credits: str


PLAN_SENDING = Sending(
    sends="the plan sends {n} prompts",
    over_max_sends="; raise --max-sends to proceed",
    over_credits=(": nothing is applied, so that sends do not stop half-way; wait for the "
                  "credits to renew, or declare fewer messages"))
RESTORE_SENDING = Sending(
    sends="restoring this backup sends {n} prompt(s)",
    over_max_sends=": nothing was restored; raise --max-sends to proceed",
    over_credits=(": nothing was restored, so that its prompts do not stop half-way; wait for "
                  "the credits to renew"))


def send_refusals(prompts: int, limits: GuardLimits, sending: Sending = PLAN_SENDING) -> list[str]:
    """Why sending `prompts` is refused under `limits` (`--max-sends`, the query credits left
    when known), in the words of `sending`: empty when it is not."""
    sends = sending.sends.format(n=prompts)
    refusals = []
    if limits.max_sends is not None and prompts > limits.max_sends:
        refusals.append(f"{sends}, more than --max-sends {limits.max_sends} (each costs a "
                        f"query credit){sending.over_max_sends}")
    if limits.credits_left is not None and prompts > limits.credits_left:
        refusals.append(f"{sends} but the account has {limits.credits_left} query credit(s) "
                        f"left{sending.over_credits}")
    return refusals


def _plan_wide_errors(plan: Plan, limits: GuardLimits) -> list[str]:
    deletes = _deletes(plan.operations)
    errors = []
    if limits.max_deletes is not None and deletes > limits.max_deletes \
            and not limits.allow_mass_delete:
        errors.append(
            f"mass-delete guard: the plan deletes {deletes} conversations, more than "
            f"--max-deletes {limits.max_deletes}; check the plan, then pass --allow-mass-delete"
        )
    return errors + send_refusals(sends(plan), limits)


def _deletes(operations: tuple[Operation, ...]) -> int:
    return sum(isinstance(op, Delete) for op in operations)
