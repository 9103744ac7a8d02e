"""Applying a plan: the only module that changes live state.

Per project: renames, then creates, then sends, then deletes; a project's deletes are skipped
when anything before them failed. Operations run concurrently up to `parallelism`; a failed
operation does not stop the others. Every delete is preceded by a transcript backup.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Any

from reconciler.api.live import Conversation
from reconciler.api.protocol import ConversationApi
from reconciler.apply.backup import write_backup
from reconciler.desired.model import Scope
from reconciler.errors import (
    ApiError,
    AuthError,
    CreditsExhaustedError,
    NotFoundError,
    PlanRefusedError,
    RestoreConflict,
)
from reconciler.plan.guards import GuardLimits, with_guards
from reconciler.plan.match import in_scope, listing_filter
from reconciler.plan.model import BY_NAME, Action, Operation, Plan, ProjectPlan, send_external_id
from reconciler.plan.stale import delete_changes
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
    """One operation and how it ended."""

    operation: Operation
    outcome: Outcome
    detail: str = ""
    session_id: str | None = None
    backup: str | None = None

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
    """How to apply. `backup_dir` None means --no-backup; `limits` are the guards' flags."""

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

    @property
    def failed(self) -> list[OperationResult]:
        """Results that failed."""
        return [r for r in self.results if r.outcome is Outcome.FAILED]

    def counts(self) -> dict[str, int]:
        """How many operations ended in each outcome."""
        return {o.value: sum(r.outcome is o for r in self.results) for o in Outcome}

    def to_dict(self) -> dict[str, Any]:
        """The `--report FILE` JSON document."""
        return {
            "format_version": REPORT_FORMAT_VERSION,
            "plan_checksum": self.plan_checksum,
            "dry_run": self.dry_run,
            "interrupted": self.interrupted,
            "summary": self.counts(),
            "operations": [r.to_dict() for r in self.results],
            "not_started": self.not_started(),
            "duplicates": self.duplicates,
        }

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
    firsts = await asyncio.gather(*(run.rename_and_create(p) for p in projects))
    pairs = list(zip(projects, firsts, strict=True))
    if not options.dry_run:
        found = await asyncio.gather(*(run.created_twice(p, r) for p, r in pairs))
        report.duplicates = [line for lines in found for line in lines]
    await asyncio.gather(*(run.send_and_delete(p, r) for p, r in pairs))
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

    async def rename_and_create(self, project: ProjectPlan) -> list[OperationResult]:
        """A project's renames, then its creates, each phase concurrent."""
        results = await self._each(self._rename, _of(project, Action.RENAME))
        return results + await self._each(self._create, _of(project, Action.CREATE))

    async def created_twice(
        self, project: ProjectPlan, results: list[OperationResult]
    ) -> list[str]:
        """One line per name this run created that more than one conversation in scope now
        has: another run created it too, at the same time."""
        created = {r.operation.name: r.session_id for r in results
                   if r.operation.action is Action.CREATE and r.outcome is Outcome.DONE}
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
        scope = Scope(project.scope)
        me = await self.client.current_user()
        # A project planned by name counts only the conversations with its names: its listing
        # is long, or it would have been read whole.
        by_name = project.live_read == BY_NAME
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

    async def send_and_delete(self, project: ProjectPlan, results: list[OperationResult]) -> None:
        """A project's sends (each conversation's in order), then its deletes, unless anything
        before failed or another run was found at work."""
        created = {r.operation.name: r.session_id for r in results
                   if r.operation.action is Action.CREATE and r.outcome is Outcome.DONE}
        if self.report.duplicates:
            reason = ("skipped: another run changed the same conversations at the same time; "
                      "nothing more is sent or deleted")
            for op in _of(project, Action.SEND) + _of(project, Action.DELETE):
                self._record(OperationResult(op, Outcome.SKIPPED, reason,
                                             session_id=op.session_id))
            return
        for group_results in await asyncio.gather(
            *(self._send_group(group, created)
              for group in _by_conversation(_of(project, Action.SEND)))
        ):
            results += group_results
        if any(r.outcome is Outcome.FAILED for r in results):
            for op in _of(project, Action.DELETE):
                self._record(OperationResult(
                    op, Outcome.SKIPPED, "skipped: an earlier operation in this project failed",
                    session_id=op.session_id))
            return
        await self._each(self._delete, _of(project, Action.DELETE))

    async def _each(
        self, apply_one: Callable[[Operation], Any], operations: Iterable[Operation]
    ) -> list[OperationResult]:
        return list(await asyncio.gather(*(self._guarded(apply_one, op) for op in operations)))

    async def _guarded(
        self, apply_one: Callable[[Operation], Any], op: Operation
    ) -> OperationResult:
        """Run one operation within the concurrency limit; record how it ended."""
        if self.options.dry_run:
            return self._record(OperationResult(op, Outcome.PLANNED, "dry run: not applied",
                                                session_id=op.session_id))
        async with self.slots:
            try:
                result: OperationResult = await apply_one(op)
            except asyncio.CancelledError:
                self._record(OperationResult(
                    op, Outcome.INTERRUPTED, "interrupted in flight: it may or may not have "
                    "been applied; the next apply converges", session_id=op.session_id))
                raise
            except AuthError:
                raise
            except CreditsExhaustedError as error:
                self.credits_exhausted = True
                result = OperationResult(op, Outcome.FAILED, str(error), session_id=op.session_id)
            except ApiError as error:
                result = OperationResult(op, Outcome.FAILED, str(error), session_id=op.session_id)
        return self._record(result)

    def _record(self, result: OperationResult) -> OperationResult:
        self.report.results.append(result)
        if self.on_result is not None:
            self.on_result(result)
        return result

    async def _rename(self, op: Operation) -> OperationResult:
        assert op.session_id is not None
        await self.client.rename_conversation(op.project_id, op.session_id, op.name)
        return OperationResult(op, Outcome.DONE, f"renamed from {op.old_name!r}",
                               session_id=op.session_id)

    async def _create(self, op: Operation) -> OperationResult:
        conversation = await self.client.create_conversation(op.project_id, op.name)
        return OperationResult(op, Outcome.DONE, "created", session_id=conversation.session_id)

    async def _send_group(
        self, group: list[Operation], created: dict[str, str | None]
    ) -> list[OperationResult]:
        """One conversation's sends, strictly in declared order; stop at the first failure.

        The newest message id is carried from send to send (none yet in a conversation this
        run created), so that the client need not read it before each send.
        """
        results: list[OperationResult] = []
        thread = _Thread(newest_id=0 if group[0].session_id is None else None)
        for op in group:
            session_id = op.session_id or created.get(op.name)
            reason = self._send_blocker(session_id, results)
            if reason:
                results.append(self._record(OperationResult(op, Outcome.SKIPPED, reason,
                                                            session_id=session_id)))
                continue
            send = partial(self._send, session_id=session_id, thread=thread)
            results.append(await self._guarded(send, op))
        return results

    def _send_blocker(self, session_id: str | None, earlier: list[OperationResult]) -> str:
        if self.options.dry_run:
            return ""
        if self.credits_exhausted:
            return "skipped: query credits are exhausted; the next apply sends it"
        if session_id is None:
            return "skipped: the conversation could not be created"
        if any(r.outcome is not Outcome.DONE for r in earlier):
            return "skipped: an earlier message of this conversation was not sent"
        return ""

    async def _send(
        self, op: Operation, *, session_id: str | None, thread: _Thread
    ) -> OperationResult:
        assert session_id is not None
        prompt = op.prompt or ""
        message = await self.client.send_message(
            op.project_id, session_id, prompt, persona=op.persona,
            response_source=op.response_source, lang=op.lang, newest_id=thread.newest_id,
            external_id=send_external_id(op.project_id, session_id, op.position or 0, prompt),
        )
        thread.newest_id = message.id
        return OperationResult(op, Outcome.DONE, f"sent message {op.position}",
                               session_id=session_id)

    async def _delete(self, op: Operation) -> OperationResult:
        """Back up the transcript, check it is still what was planned, then delete."""
        assert op.session_id is not None
        try:
            transcript = await self.client.get_transcript(op.project_id, op.session_id)
        except NotFoundError:
            return OperationResult(op, Outcome.DONE, "already deleted", session_id=op.session_id)
        changes = delete_changes(op, transcript)
        if changes:
            return OperationResult(
                op, Outcome.FAILED,
                "not deleted: changed since the plan (" + "; ".join(changes) + ")",
                session_id=op.session_id)
        backup = None
        if self.options.backup_dir is not None:
            try:
                path = write_backup(self.options.backup_dir, op.project_id, transcript)
            except OSError as error:
                return OperationResult(
                    op, Outcome.FAILED,
                    f"not deleted: the transcript backup could not be written ({error})",
                    session_id=op.session_id)
            backup = str(path)
        await self.client.delete_conversation(op.project_id, op.session_id)
        return OperationResult(op, Outcome.DONE, "deleted", session_id=op.session_id,
                               backup=backup)


@dataclass
class _Thread:
    """What a conversation's sends know of it: its newest message id (None: unknown)."""

    newest_id: int | None


def _of(project: ProjectPlan, action: Action) -> list[Operation]:
    return [op for op in project.operations if op.action is action]


def _by_conversation(sends: list[Operation]) -> list[list[Operation]]:
    groups: dict[tuple[int, str], list[Operation]] = {}
    for op in sends:
        groups.setdefault((op.project_id, op.session_id or op.name), []).append(op)
    return list(groups.values())


class Restored(StrEnum):
    """What `restore` found and did."""

    CREATED = "created"  # a new conversation, and its prompts when asked
    RESUMED = "resumed"  # the only conversation of that name held the first prompts: sent the rest
    ALREADY_BACK = "already back"  # nothing to do


@dataclass(frozen=True)
class RestoreResult:
    """What `restore` did for one backup."""

    project_id: int
    session_id: str
    name: str
    prompts_sent: int
    state: Restored = Restored.CREATED


async def restore_conversation(
    client: ConversationApi, project_id: int, original: str, name: str,
    prompts: Sequence[str] | None,
) -> RestoreResult:
    """Bring back the conversation `original`, named `name`, and (unless `prompts` is None)
    its prompts, in order; never makes a second conversation of that name.

    It is already back when `original` still exists, or when the only conversation named `name`
    is the key user's and (with `prompts`) holds exactly those prompts; when that conversation
    holds the first of them (a restore that stopped midway), the rest are sent. Any other
    conversation named `name` takes the name: RestoreConflict, nothing is done. The API cannot
    write answers: sent prompts get new answers. Raises ApiError on failure (what was done
    before the failure stays done).
    """
    try:
        still = await client.get_transcript(project_id, original)
    except NotFoundError:
        still = None
    if still is not None:
        return RestoreResult(project_id, original, still.conversation.name, 0,
                             Restored.ALREADY_BACK)
    listed = await client.list_conversations(project_id, name=normal_form(name))
    named = [c for c in listed if normal_form(c.name) == normal_form(name)]
    wanted = list(prompts or ())
    if named:
        found = await _restored_before(client, project_id, named, prompts)
        if found is None:
            raise RestoreConflict(project_id, name, [c.session_id for c in named])
        session_id, sent = found
        state = Restored.ALREADY_BACK if sent == len(wanted) else Restored.RESUMED
    else:
        session_id, sent = (await client.create_conversation(project_id, name)).session_id, 0
        state = Restored.CREATED
    for position, prompt in enumerate(wanted[sent:], start=sent + 1):
        await client.send_message(
            project_id, session_id, prompt,
            external_id=send_external_id(project_id, session_id, position, prompt))
    return RestoreResult(project_id, session_id, name, len(wanted) - sent, state)


async def _restored_before(
    client: ConversationApi, project_id: int, named: list[Conversation],
    prompts: Sequence[str] | None,
) -> tuple[str, int] | None:
    """(session, prompts it already holds) when `named` is one conversation of the key's user
    that a restore of `prompts` could have left; None when the name is taken otherwise."""
    me = await client.current_user()
    if len(named) != 1 or named[0].created_by != me.id:
        return None
    conversation = named[0]
    if prompts is None:
        return conversation.session_id, 0
    transcript = await client.get_transcript(project_id, conversation.session_id)
    held = [normal_form(m.user_query) for m in transcript.messages]
    if held != [normal_form(prompt) for prompt in prompts[:len(held)]]:
        return None
    return conversation.session_id, len(held)
