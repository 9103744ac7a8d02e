"""`reconciler apply (-f … | --plan FILE)`: make live state match the declared state.

With `-f`, the answer a send gets is checked at once against its message's `expect:` (one
whose `cites` names a source by text once the writes are done, the sources it cites read
then): a line per failed check, the counts in the summary and in the report. A failed check
is not an apply error: the exit code says whether live state was made to match (`reconciler
check` exits 3 on failed checks). A saved plan carries no `expect:`, so `apply --plan`
checks nothing. On the sandbox, `apply -f` then keeps every declared check's result for the
sandbox's pages.
"""

from __future__ import annotations

import asyncio
import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from reconciler.api.client import Client
from reconciler.api.pacer import per_minute
from reconciler.apply.backup import default_backup_dir
from reconciler.apply.outputs import Output, check_outputs
from reconciler.apply.run import (
    ApplyOptions,
    ApplyReport,
    OperationResult,
    Outcome,
    apply_plan,
)
from reconciler.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    Declared,
    key_files,
    load_declared,
    outputs,
    plan_live,
    read_plan,
    write_json,
    writing,
)
from reconciler.cli.connect import Connection, api_target, open_client
from reconciler.cli.console import Console
from reconciler.cli.progress import Progress
from reconciler.cli.sandbox import save_sandbox_health
from reconciler.desired.model import DesiredState, MessageSpec
from reconciler.errors import InputError, Problem, StalePlanError
from reconciler.plan.answers import (
    CitationReader,
    check_answers,
    no_answer_messages,
    sent_expectations,
)
from reconciler.plan.budget import apply_requests, duration, sends
from reconciler.plan.credits import credits_left
from reconciler.plan.guards import GuardLimits, with_guards
from reconciler.plan.health import (
    CitedSources,
    Status,
    judge_message,
    names_sources,
    not_judged,
)
from reconciler.plan.model import DEFAULT_MAX_DELETE_FRACTION, Plan
from reconciler.plan.signing import check_signature, read_plan_key
from reconciler.plan.stale import check_live
from reconciler.render.formats import render_text
from reconciler.text import shown


@dataclass(frozen=True)
class SavedPlan:
    """A plan saved by `plan --out`, and the plan key file its signature must fit (None:
    the environment's key, or none)."""

    path: str
    key_file: str | None


@dataclass(frozen=True)
class ApplyParams:
    """What `apply` applies (declared state, planned afresh, or a saved plan), whether it
    asks first, its transcript backups (`backup_dir` None: under .reconciler/backups/), its
    report file (None: none), and its guards."""

    connection: Connection
    source: Declared | SavedPlan
    auto_approve: bool
    dry_run: bool
    backup: bool
    backup_dir: str | None
    report: str | None
    limits: GuardLimits


def run(params: ApplyParams, console: Console) -> int:
    """Plan (or read the saved plan), confirm, apply; exit 1 if any operation failed."""
    source = params.source
    loaded: DesiredState | Plan
    if isinstance(source, SavedPlan):
        loaded, signed = _read_signed_plan(source, console)
        inputs = [source.path, *key_files(params.connection, source.key_file)]
        if not signed:  # its thresholds are the file's word only: the default caps them
            params = replace(params, limits=replace(
                params.limits, max_delete_fraction=DEFAULT_MAX_DELETE_FRACTION))
    else:
        loaded = load_declared(source, console)
        inputs = [*loaded.files, *key_files(params.connection)]
    check_outputs(outputs(report=params.report), inputs=inputs)
    report = ApplyReport(plan_checksum="", dry_run=params.dry_run)
    try:
        return asyncio.run(_apply(params, console, loaded, report))
    except KeyboardInterrupt:
        raise KeyboardInterrupt(_interrupted(params, report)) from None
    finally:
        if params.report and report.plan_checksum:
            write_json(Path(params.report), report.to_dict())


def _read_signed_plan(saved: SavedPlan, console: Console) -> tuple[Plan, bool]:
    """The plan of `apply --plan`, whose signature fits the plan key (or neither is there),
    and whether it is signed."""
    key = read_plan_key(console.env, saved.key_file)
    plan, document = read_plan(Path(saved.path))
    check_signature(document, key, source=saved.path)
    return plan, key is not None


def _project_ids(loaded: DesiredState | Plan) -> list[int]:
    if isinstance(loaded, DesiredState):
        return [p.id for p in loaded.projects]
    return [p.project_id for p in loaded.projects]


async def _apply(
    params: ApplyParams, console: Console, loaded: DesiredState | Plan, report: ApplyReport,
) -> int:
    connection = params.connection
    ids = _project_ids(loaded)
    async with open_client(connection, console, project_ids=ids) as client:
        sources = CitationReader(client)  # the cited sources, read once in the run
        with writing(connection, client, ids, command="apply", dry_run=params.dry_run):
            done = await _plan_and_apply(params, console, client, loaded, report,
                                         sources=sources)
        if connection.sandbox and isinstance(loaded, DesiredState) and not params.dry_run:
            save_sandbox_health(console, await check_answers(client, loaded,
                                                             sources=sources))
    if done is not None:
        return done
    for line in report.duplicates:
        console.error(f"error: {line}")
    if report.duplicates:
        console.error("Nothing was sent or deleted after the creates. Keep one conversation of "
                      "each name (delete the others), then run apply again.")
    console.result(_apply_summary(report, params))
    return EXIT_ERROR if report.failed or report.duplicates else EXIT_OK


@dataclass(frozen=True)
class NoAnswer:
    """The projects' "I don't know" messages read for the `no_answer` checks of what is
    sent (None: the vendor's default), and why one could not be read."""

    found: dict[int, str | None]
    unread: dict[int, str]


async def _plan_and_apply(
    params: ApplyParams, console: Console, client: Client, loaded: DesiredState | Plan,
    report: ApplyReport, *, sources: CitationReader,
) -> int | None:
    """Plan (or check the saved plan), show it, confirm and apply it, the sources the
    answers it checks cite read through `sources`; the exit code when nothing was applied
    (errors, or no changes), else None."""
    plan, limits = await _plan_to_apply(params, console, client, loaded)
    console.result(render_text(plan, color=console.color, verbose=console.verbose > 0,
                               rate=client.pacer.rate), painted=console.color)
    if plan.all_errors or not plan.has_changes:
        return EXIT_ERROR if plan.all_errors else EXIT_OK
    backup_dir = _backup_dir(params)
    backing_up = any(op.backs_up for op in plan.operations)
    if backup_dir is not None and not params.dry_run and backing_up:
        check_outputs([Output("--backup-dir", backup_dir, directory=True)], inputs=())
    if _confirm(params, console):  # time has passed: check the plan again
        limits = await _checked(client, plan, limits, saved=isinstance(loaded, Plan))
    expecting = ({} if params.dry_run or not isinstance(loaded, DesiredState)
                 else sent_expectations(plan, loaded))
    await _run_apply(params, console, client, plan, report, limits=limits,
                     backup_dir=backup_dir, expecting=expecting, sources=sources)
    return None


async def _plan_to_apply(
    params: ApplyParams, console: Console, client: Client, loaded: DesiredState | Plan,
) -> tuple[Plan, GuardLimits]:
    """A fresh plan of the declared state, or the saved plan checked against fresh live state
    (StalePlanError when stale) with the apply's guards; and the guard limits the writer
    judges it by again (for a saved plan, with what live state counts now)."""
    if isinstance(loaded, DesiredState):
        plan = await plan_live(client, console, loaded, limits=params.limits,
                               connection=params.connection)
        return plan, params.limits
    _check_target(loaded, api_target(params.connection, client))
    limits = await _limits_with_credits(client, loaded, params.limits)
    if not loaded.all_errors:
        limits = await _checked(client, loaded, limits, saved=True)
    return with_guards(loaded, limits), limits


async def _limits_with_credits(client: Client, plan: Plan, limits: GuardLimits) -> GuardLimits:
    """The run's guard limits, with the query credits left when `plan` sends anything."""
    if not sends(plan):
        return limits
    return replace(limits, credits_left=await credits_left(client, prompts=sends(plan)))


async def _run_apply(
    params: ApplyParams, console: Console, client: Client, plan: Plan, report: ApplyReport,
    *, limits: GuardLimits, backup_dir: Path | None,
    expecting: dict[str, tuple[str, MessageSpec]], sources: CitationReader,
) -> None:
    """Apply `plan`, showing each result as it ends, and checking the answer of each send
    in `expecting` (by operation key: its conversation's name and declared message): at
    once, or, where a `cites` names a source by text, once the apply's writes are done, the
    sources its answer cites read through `sources` (an interrupted apply reads no more:
    those checks are not checked)."""
    report.plan_checksum = plan.checksum
    options = ApplyOptions(parallelism=params.connection.parallelism, dry_run=params.dry_run,
                           backup_dir=backup_dir, limits=limits)
    no_answer = NoAnswer(*await no_answer_messages(client, [
        message.project_id for message in plan.operations if message.key in expecting
        and (expect := expecting[message.key][1].expect) is not None
        and expect.no_answer is not None]))
    progress = Progress(enabled=console.progress, stream=console.err,
                        description="Applying", unit="operations", total=len(plan.operations))
    eta = _time_left(client, plan)
    progress.note(eta())

    waiting: list[OperationResult] = []  # their checks name cited sources

    def on_result(result: OperationResult) -> None:
        _show_result(console, progress, result)
        if _names_sources(result, expecting):
            waiting.append(result)
        else:
            _check_answer(console, progress, report, result, expecting, no_answer)
        progress.note(eta())

    try:
        await apply_plan(client, plan, options=options, report=report, on_result=on_result)
        while waiting:
            result = waiting[0]
            assert result.answer is not None  # as `_names_sources` found
            cited = await sources.sources(result.operation.project_id, result.answer.citations)
            _check_answer(console, progress, report, waiting.pop(0), expecting, no_answer,
                          sources=cited)
    except (KeyboardInterrupt, asyncio.CancelledError):
        report.interrupted = True
        for result in waiting:
            ids = result.answer.citations if result.answer else ()
            _check_answer(console, progress, report, result, expecting, no_answer,
                          sources=CitedSources(unread=dict.fromkeys(
                              ids, "the apply was interrupted before it was read")))
        raise
    finally:
        progress.close()


def _time_left(client: Client, plan: Plan) -> Callable[[], str]:
    """How long the rest of the apply takes at the run's pace, in words ("" when unpaced):
    the requests its operations need (the plan's estimate) less those made since now."""
    start, needed = client.stats.requests, apply_requests(plan)

    def left() -> str:
        rate = client.pacer.rate
        if rate is None:
            return ""
        remaining = max(0, needed - (client.stats.requests - start))
        seconds = client.pacer.seconds_for(remaining)
        return f"{duration(seconds)} left at {per_minute(rate)}/min"

    return left


async def _checked(client: Client, plan: Plan, limits: GuardLimits, *, saved: bool
                   ) -> GuardLimits:
    """`limits` with what live state counts now, for the guards; raises StalePlanError when
    an operation of `plan` no longer fits live state."""
    check = await check_live(client, plan)
    if check.stale:
        what, remedy = (("the saved plan", "Make a new plan with `reconciler plan --out`.")
                        if saved else ("the plan", "Run apply again to plan afresh."))
        raise StalePlanError(
            f"{what} is stale; nothing was applied. Stale operations:\n  "
            + "\n  ".join(check.stale) + f"\n{remedy}"
        )
    return replace(limits, live=check.counts)


def _check_target(plan: Plan, target: str) -> None:
    if plan.api != target:
        raise InputError([Problem(
            f"this plan was made against {plan.api or 'an unknown API'}, not {target}: "
            "nothing was applied; make a plan against this API and review it"
        )])


def _confirm(params: ApplyParams, console: Console) -> bool:
    """Ask a person to confirm; True when one did (False: no question was needed)."""
    if params.dry_run or params.auto_approve:
        return False
    if not console.interactive:
        raise InputError([Problem(
            "refusing to apply without confirmation: stdin is not a terminal; review the plan "
            "and pass --auto-approve (or use --dry-run)"
        )])
    console.err.write("Apply these changes? Only 'yes' is accepted: ")
    console.err.flush()
    if console.stdin.readline().strip() != "yes":
        raise InputError([Problem("apply cancelled: nothing was changed")])
    return True


def _backup_dir(params: ApplyParams) -> Path | None:
    if not params.backup:
        return None
    return Path(params.backup_dir) if params.backup_dir else default_backup_dir()


def _show_result(console: Console, progress: Progress, result: OperationResult) -> None:
    progress.advance()
    mark = {Outcome.DONE: "ok", Outcome.FAILED: "FAILED", Outcome.SKIPPED: "skipped",
            Outcome.PLANNED: "would", Outcome.INTERRUPTED: "interrupted"}[result.outcome]
    op = result.operation
    if result.outcome is Outcome.FAILED or not console.quiet:
        where = f"project {op.project_id}" + (f", {result.session_id}" if result.session_id else "")
        backup = f"; backup: {result.backup}" if result.backup else ""
        progress.write(console.clean(
            f"  [{mark}] {op.action.value} {op.name!r} ({where}): {result.detail}{backup}"))


def _check_answer(
    console: Console, progress: Progress, report: ApplyReport, result: OperationResult,
    expecting: dict[str, tuple[str, MessageSpec]], no_answer: NoAnswer, *,
    sources: CitedSources | None = None,
) -> None:
    """Check the answer a send got against its message's `expect:` (when it declares one and
    was sent), with what was read of the sources it cites, keep the checks in `report`, and
    write a line per failed check."""
    op = result.operation
    found = expecting.get(op.key)
    if found is None or result.outcome is not Outcome.DONE or result.answer is None:
        return
    conversation, message = found
    check = judge_message(conversation, message, result.session_id, result.answer,
                          no_answer.found.get(op.project_id), sources=sources)
    if op.project_id in no_answer.unread:
        check = not_judged(check, "no_answer", "the project's 'I don't know' message could "
                           f"not be read: {no_answer.unread[op.project_id]}")
    report.answer_checks.append((op.key, op.project_id, check))
    for failed in (r for r in check.results or () if r.status is Status.FAILED):
        progress.write(console.clean(
            f"  [check FAILED] {shown(conversation)} / {shown(message.prompt)} "
            f"(project {op.project_id}): {failed.key}: {failed.reason}"))


def _names_sources(result: OperationResult,
                   expecting: dict[str, tuple[str, MessageSpec]]) -> bool:
    """Whether `result` is a send whose answer is checked by a `cites` naming a source by
    text (its sources must be read first)."""
    found = expecting.get(result.operation.key)
    expect = None if found is None else found[1].expect
    return (expect is not None and names_sources(expect) and result.answer is not None
            and result.outcome is Outcome.DONE)


def _interrupted(params: ApplyParams, report: ApplyReport) -> str:
    """What an interrupted apply did and left, and what to run to finish it (the CLI prints
    it after "interrupted: ")."""
    if not report.plan_checksum:
        return "nothing was applied"
    if report.dry_run:
        return "a dry run: nothing was changed"
    counts = report.counts()
    done = [f"{counts['done']} done", f"{counts['failed']} failed"]
    if counts["skipped"]:
        done.append(f"{counts['skipped']} skipped")
    if counts["interrupted"]:
        done.append(f"{counts['interrupted']} in flight (applied or not)")
    done.append(f"{len(report.not_started())} not started")
    source = params.source
    if isinstance(source, SavedPlan):
        finish = (f"the saved plan {source.path} is stale once part of it is applied: run "
                  "`reconciler apply -f` with its desired-state files to finish (or make a new "
                  "plan with `reconciler plan --out` and apply that)")
    else:
        files = " ".join(shlex.quote(path) for path in source.files)
        projects = "".join(f" --project {p}" for p in source.projects)
        finish = (f"run `reconciler apply -f {files}{projects}` again to finish (it plans "
                  "afresh; a saved plan is stale once part of it is applied)")
    told = f"; {params.report} says what each operation did" if params.report else ""
    return ", ".join(done) + f"; {finish}{told}"


def _apply_summary(report: ApplyReport, params: ApplyParams) -> str:
    counts = report.counts()
    if report.dry_run:
        return f"Dry run: {counts['planned']} operation(s) would be applied; nothing was changed."
    line = (f"Apply: {counts['done']} done, {counts['failed']} failed, "
            f"{counts['skipped']} skipped.")
    backups = [r.backup for r in report.results if r.backup]
    if backups:
        where = os.path.commonpath([os.path.dirname(b) for b in backups])
        line += (f" The transcripts of the {len(backups)} deleted conversation(s) are backed up "
                 f"under {where} (`reconciler restore FILE` brings one back).")
    if report.answer_checks:
        checks = report.check_counts()
        line += (f" Answer checks of the {len(report.answer_checks)} answer(s) sent: "
                 f"{checks['passed']} passed, {checks['failed']} failed"
                 + (f", {checks['not_checked']} not checked" if checks["not_checked"] else "")
                 + " (a failed check does not fail the apply; `reconciler check` exits 3 "
                 "on one).")
    forbidden = sum(r.forbidden for r in report.failed)
    if forbidden:
        line += (f" The API key's role may not make {forbidden} of the failed change(s) (403): "
                 "applying again with this key fails the same way; use a key whose role may "
                 "make them, or declare them otherwise.")
    if len(report.failed) > forbidden:
        line += (" Run apply again to retry what failed; it converges."
                 if isinstance(params.source, Declared) else
                 " To retry what failed, run `reconciler apply -f` with the plan's desired-state "
                 "files: the saved plan is stale once part of it is applied.")
    return line
