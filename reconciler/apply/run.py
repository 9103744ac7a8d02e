"""Applying a plan: the only caller of the operations' `apply`, so the only writer (with
`restore`, `reconciler.apply.restore`).

Per project, the kinds run in the registry's order (`reconciler.plan.operations.KINDS`: renames,
creates, sends, deletes), each as its class says: the ones that wait for the check that no other
run created the same names (sends, deletes), the ones run one after another per conversation
(sends), the ones skipped when anything before them in the project failed (deletes). Operations
run concurrently up to `parallelism`; a failed operation does not stop the others. Every delete
is preceded by a transcript backup, written here (`reconciler.apply.backup`) when the delete
asks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from reconciler.api.live import Message, Transcript
from reconciler.api.protocol import ConversationApi, listing_filter
from reconciler.apply.backup import write_backup
from reconciler.errors import (
    ApiError,
    AuthError,
    CreditsExhaustedError,
    ForbiddenError,
    PlanRefusedError,
)
from reconciler.plan.guards import GuardLimits, with_guards
from reconciler.plan.health import MessageCheck, Status
from reconciler.plan.match import in_scope
from reconciler.plan.model import LiveRead, Plan, ProjectPlan
from reconciler.plan.operations import KINDS, MessageCursor, Operation
from reconciler.text import normal_form

REPORT_FORMAT_VERSION = 1
LISTING_PAGE_ESTIMATE = 10  # conversations per listing page, at least (the API's default)


class Outcome(StrEnum):
    """How one operation ended."""

    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"
    PLANNED = "planned"  # --dry-run: would be done
    INTERRUPTED = "interrupted"  # in flight when the run was stopped: may or may not be done


@dataclass(frozen=True)
class OperationResult:
    """One operation and how it ended (a send: with the message it made)."""

    operation: Operation
    outcome: Outcome
    detail: str = ""
    session_id: str | None = None
    backup: str | None = None
    answer: Message | None = None
    forbidden: bool = False  # failed with 403: the key's role may not; trying again won't help

    def to_dict(self) -> dict[str, Any]:
        """JSON form for the apply report."""
        data = self.operation.to_dict()
        data.update(outcome=self.outcome.value, detail=self.detail)
        if self.session_id:
            data["session_id"] = self.session_id
        if self.backup:
            data["backup"] = self.backup
        return data


@dataclass(frozen=True)
class ApplyOptions:
    """How to apply. `backup_dir` None means --no-backup; `limits` are the guards' flags (for
    a saved plan, with what `reconciler.plan.stale.check_live` counted live, so that the plan's
    own numbers are not trusted: see `reconciler.plan.guards`)."""

    parallelism: int = 8
    dry_run: bool = False
    backup_dir: Path | None = None
    limits: GuardLimits = field(default_factory=GuardLimits)


@dataclass
class ApplyReport:
    """What an apply did, operation by operation (filled in as operations end)."""

    plan_checksum: str
    dry_run: bool = False
    results: list[OperationResult] = field(default_factory=list)
    interrupted: bool = False
    planned: list[str] = field(default_factory=list)  # keys of every operation of the plan
    duplicates: list[str] = field(default_factory=list)  # names another run created too
    # The answers of the sends whose message declares `expect:`, checked: (send's key,
    # project, checks), in the order they were judged.
    answer_checks: list[tuple[str, int, MessageCheck]] = field(default_factory=list)

    @property
    def failed(self) -> list[OperationResult]:
        """Results that failed."""
        return [r for r in self.results if r.outcome is Outcome.FAILED]

    def counts(self) -> dict[str, int]:
        """How many operations ended in each outcome."""
        return {o.value: sum(r.outcome is o for r in self.results) for o in Outcome}

    def to_dict(self) -> dict[str, Any]:
        """The `--report FILE` JSON document (`answer_checks` only when an answer was
        checked)."""
        document = {
            "format_version": REPORT_FORMAT_VERSION,
            "plan_checksum": self.plan_checksum,
            "dry_run": self.dry_run,
            "interrupted": self.interrupted,
            "summary": self.counts(),
            "operations": [r.to_dict() for r in self.results],
            "not_started": self.not_started(),
            "duplicates": self.duplicates,
        }
        if self.answer_checks:
            document["answer_checks"] = self._answer_checks()
        return document

    def check_counts(self) -> dict[str, int]:
        """How many of the checks of sent answers passed, failed and were not checked."""
        statuses = [r.status for _, _, check in self.answer_checks for r in check.results or ()]
        return {status.value.replace(" ", "_"): statuses.count(status) for status in Status}

    def _answer_checks(self) -> dict[str, Any]:
        return {"summary": self.check_counts(), "messages": [{
            "key": key, "project_id": project_id, "conversation": check.conversation,
            "session_id": check.session_id, "message_id": check.message_id,
            "prompt": check.prompt, "answer": check.answer,
            "checks": [{"key": r.key, "expected": r.expected, "status": r.status.value,
                        "reason": r.reason} for r in check.results or ()],
        } for key, project_id, check in self.answer_checks]}

    def not_started(self) -> list[str]:
        """Keys of the planned operations that have no result (the run was interrupted)."""
        ended = {r.operation.key for r in self.results}
        return [key for key in self.planned if key not in ended]


ResultListener = Callable[[OperationResult], None]


async def apply_plan(
    client: ConversationApi,
    plan: Plan,
    *,
    options: ApplyOptions,
    report: ApplyReport,
    on_result: ResultListener | None = None,
) -> ApplyReport:
    """Apply every operation of `plan`; results are appended to `report` as they end.

    Raises PlanRefusedError, before anything is done, for a plan with errors or one the guards
    refuse under `options.limits` (every caller, not only the CLI, goes through them); AuthError
    if the key is rejected; any other failure is recorded on its operation.
    """
    refused = with_guards(plan, options.limits).all_errors
    if refused:
        raise PlanRefusedError("the plan cannot be applied; nothing was done:\n  "
                               + "\n  ".join(refused))
    run = ApplyRun(client, options, report, on_result)
    report.planned = [op.key for op in plan.operations]
    projects = [p for p in plan.projects if p.operations]
    before = [kind for kind in KINDS if not kind.after_duplicate_check]
    after = [kind for kind in KINDS if kind.after_duplicate_check]
    firsts = await asyncio.gather(*(run.run_kinds(p, before, []) for p in projects))
    pairs = list(zip(projects, firsts, strict=True))
    if not options.dry_run:
        found = await asyncio.gather(*(run.created_twice(p, r) for p, r in pairs))
        report.duplicates = [line for lines in found for line in lines]
    await asyncio.gather(*(run.run_kinds(p, after, r) for p, r in pairs))
    return report


class ApplyRun:
    """The state of one apply: concurrency limit, credits, and the report being written."""

    def __init__(
        self,
        client: ConversationApi,
        options: ApplyOptions,
        report: ApplyReport,
        on_result: ResultListener | None,
    ) -> None:
        self.client = client
        self.options = options
        self.report = report
        self.on_result = on_result
        self.slots = asyncio.Semaphore(options.parallelism)
        self.credits_exhausted = False

    async def run_kinds(
        self, project: ProjectPlan, kinds: Sequence[type[Operation]],
        results: list[OperationResult],
    ) -> list[OperationResult]:
        """A project's operations of `kinds`, kind after kind, each kind's concurrently (or one
        after another per conversation); `results` holds the project's results so far, and
        these are added to it. Skipped: the kinds that wait for the duplicates check when
        another run was found at work, and those skipped after a failure when anything before
        them failed."""
        for kind in kinds:
            operations = [op for op in project.operations if type(op) is kind]
            reason = self._kind_blocker(kind, results)
            if reason:
                for op in operations:
                    self._record(OperationResult(op, Outcome.SKIPPED, reason,
                                                 session_id=op.session_id))
                continue
            created = _created(results)
            groups = (_by_conversation(operations) if kind.sequential
                      else [[op] for op in operations])
            for group_results in await asyncio.gather(
                    *(self._in_order(group, created) for group in groups)):
                results += group_results
        return results

    def _kind_blocker(self, kind: type[Operation], earlier: list[OperationResult]) -> str:
        if kind.after_duplicate_check and self.report.duplicates:
            return ("skipped: another run changed the same conversations at the same time; "
                    "nothing more is sent or deleted")
        if kind.skipped_after_failure and any(r.outcome is Outcome.FAILED for r in earlier):
            return "skipped: an earlier operation in this project failed"
        return ""

    async def created_twice(
        self, project: ProjectPlan, results: list[OperationResult]
    ) -> list[str]:
        """One line per name this run created that more than one conversation in scope now
        has: another run created it too, at the same time."""
        created = _created(results)
        if not created:
            return []
        try:
            holders = await self._holders(project, created)
        except AuthError:
            raise
        except ApiError as error:
            return [f"project {project.project_id}: could not check that no other run created "
                    f"the same conversations at the same time ({error})"]
        return [
            f"project {project.project_id}: {len(holders[name])} conversations are now named "
            f"{name!r} ({', '.join(holders[name])}), and this run created {session}: another "
            "apply created it at the same time"
            for name, session in created.items() if len(holders[name]) > 1
        ]

    async def _holders(self, project: ProjectPlan, names: Iterable[str]) -> dict[str, list[str]]:
        """The in-scope sessions holding each of `names` (compared in normal form), oldest
        first: a lookup per name, or one listing of the project when that takes fewer
        requests."""
        wanted = {normal_form(name): name for name in names}
        scope = project.scope
        me = await self.client.current_user()
        # A project planned by name counts only the conversations with its names: its listing
        # is long, or it would have been read whole.
        by_name = project.live_read is LiveRead.BY_NAME
        if by_name or len(wanted) * LISTING_PAGE_ESTIMATE <= project.live_in_scope + len(wanted):
            listings = await asyncio.gather(*(
                self.client.list_conversations(project.project_id,
                                               user_filter=listing_filter(scope), name=name)
                for name in wanted))
            found = [c for listing in listings for c in listing]
        else:
            found = await self.client.list_conversations(project.project_id,
                                                         user_filter=listing_filter(scope))
        holders: dict[str, list[str]] = {name: [] for name in wanted.values()}
        for conv in sorted(found, key=lambda c: c.id):
            name = wanted.get(normal_form(conv.name))
            if name is not None and in_scope(conv, scope, me.id) \
                    and conv.session_id not in holders[name]:
                holders[name].append(conv.session_id)
        return holders

    async def _in_order(
        self, group: list[Operation], created: dict[str, str]
    ) -> list[OperationResult]:
        """Operations on one conversation, in plan order, sharing what they learn of it; after
        one that was not done, the rest are skipped (a kind that runs one after another per
        conversation)."""
        results: list[OperationResult] = []
        context = _Context(self.client, created, MessageCursor(), self.options.backup_dir)
        for op in group:
            reason = self._blocker(op, created, results)
            if reason:
                results.append(self._record(OperationResult(
                    op, Outcome.SKIPPED, reason, session_id=op.target(created))))
                continue
            results.append(await self._guarded(op, context))
        return results

    def _blocker(
        self, op: Operation, created: dict[str, str], earlier: list[OperationResult]
    ) -> str:
        if self.options.dry_run:
            return ""
        if op.credits and self.credits_exhausted:
            return "skipped: query credits are exhausted; the next apply sends it"
        if op.target(created) is None and op.waits_for() is not None:
            return "skipped: the conversation could not be created"
        if any(r.outcome is not Outcome.DONE for r in earlier):
            return op.skipped_in_sequence
        return ""

    async def _guarded(self, op: Operation, context: _Context) -> OperationResult:
        """Run one operation within the concurrency limit; record how it ended."""
        if self.options.dry_run:
            return self._record(OperationResult(op, Outcome.PLANNED, "dry run: not applied",
                                                session_id=op.session_id))
        async with self.slots:
            try:
                applied = await op.apply(context)
            except asyncio.CancelledError:
                self._record(OperationResult(
                    op, Outcome.INTERRUPTED, "interrupted in flight: it may or may not have "
                    "been applied", session_id=op.session_id))
                raise
            except AuthError:
                raise
            except CreditsExhaustedError as error:
                self.credits_exhausted = True
                result = OperationResult(op, Outcome.FAILED, str(error), session_id=op.session_id)
            except ApiError as error:
                result = OperationResult(op, Outcome.FAILED, str(error), session_id=op.session_id,
                                         forbidden=isinstance(error, ForbiddenError))
            else:
                result = OperationResult(op, Outcome.FAILED if applied.failed else Outcome.DONE,
                                         applied.detail, session_id=applied.session_id,
                                         backup=applied.backup, answer=applied.answer)
        return self._record(result)

    def _record(self, result: OperationResult) -> OperationResult:
        self.report.results.append(result)
        if self.on_result is not None:
            self.on_result(result)
        return result


@dataclass(frozen=True)
class _Context:
    """What an operation is given to apply itself (`ApplyContext`): backups are written by
    `reconciler.apply.backup`, under `backup_dir` (None: --no-backup)."""

    api: ConversationApi
    created: Mapping[str, str]
    cursor: MessageCursor
    backup_dir: Path | None

    def backup(self, project_id: int, transcript: Transcript) -> str | None:
        if self.backup_dir is None:
            return None
        return str(write_backup(self.backup_dir, project_id, transcript))


def _created(results: list[OperationResult]) -> dict[str, str]:
    """The conversations this run created, by name, from a project's `results`."""
    return {r.operation.name: r.session_id for r in results
            if r.operation.creates and r.outcome is Outcome.DONE and r.session_id is not None}


def _by_conversation(operations: list[Operation]) -> list[list[Operation]]:
    groups: dict[tuple[int, str], list[Operation]] = {}
    for op in operations:
        groups.setdefault(op.group(), []).append(op)
    return list(groups.values())
