"""The commands: one function each, taking parsed arguments and a Console, returning an exit
code. They load, plan, apply and render by calling the layers; they only print via Console.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

from reconciler.api.client import Client
from reconciler.api.live import is_session_id
from reconciler.api.pacer import per_minute
from reconciler.api.settings import Secret
from reconciler.apply.backup import default_backup_dir, read_backup
from reconciler.apply.locks import project_locks
from reconciler.apply.outputs import Output, check_outputs
from reconciler.apply.run import (
    ApplyOptions,
    ApplyReport,
    OperationResult,
    Outcome,
    Restored,
    RestoreResult,
    apply_plan,
    restore_conversation,
)
from reconciler.cli.connect import api_target, open_client
from reconciler.cli.console import Console
from reconciler.cli.progress import Progress, counting
from reconciler.desired.loader import load_desired
from reconciler.desired.model import DesiredState, Scope
from reconciler.desired.yamlsource import dump_yaml
from reconciler.errors import InputError, Location, Problem, StalePlanError, os_reason
from reconciler.jsonio import pretty, read_json_file
from reconciler.plan.budget import apply_requests, duration, sends
from reconciler.plan.export import LiveProject, export_document, read_live
from reconciler.plan.guards import GuardLimits, with_guards
from reconciler.plan.make import make_plan
from reconciler.plan.model import PLAN_FORMAT_VERSION, Plan
from reconciler.plan.signing import check_signature, read_plan_key, sign
from reconciler.plan.stale import find_stale
from reconciler.render.formats import render_json, render_markdown, render_text

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2


def cmd_validate(args: argparse.Namespace, console: Console) -> int:
    """`reconciler validate [-f PATH…] [PATH…]`: check files without touching the API."""
    paths = [*(args.files or ()), *args.paths]
    if not paths:
        raise InputError([Problem("validate needs at least one file or directory "
                                  "(-f PATH or PATH)")])
    state = load_desired(paths, env=console.env, secrets=console.secrets)
    for warning in state.warnings:
        console.info(str(warning))
    console.result(f"OK: {len(state.projects)} projects, {state.conversation_count} conversations")
    return EXIT_OK


def cmd_plan(args: argparse.Namespace, console: Console) -> int:
    """`reconciler plan -f …`: show what apply would change; optionally save it."""
    if args.plan_key_file and not args.out:
        raise InputError([Problem("--plan-key-file signs the saved plan: it needs --out FILE")])
    key = read_plan_key(console.env, args.plan_key_file) if args.out else None
    desired = _load(args, console)
    check_outputs(_outputs(out=args.out), inputs=[*desired.files, *_key_files(args)])
    plan, rate = asyncio.run(_plan(args, console, desired))
    if args.out:
        _save_plan(Path(args.out), plan, key)
        console.info(f"Saved the plan to {args.out} (checksum {plan.checksum}).")
    console.result(_render(plan, args.format, console, saved_as=args.out, rate=rate),
                   painted=args.format == "text" and console.color)
    if plan.all_errors:
        return EXIT_ERROR
    return EXIT_CHANGES if args.detailed_exitcode and plan.has_changes else EXIT_OK


def cmd_show(args: argparse.Namespace, console: Console) -> int:
    """`reconciler show FILE`: render a saved plan."""
    plan, _ = read_plan(Path(args.plan_file))
    console.result(_render(plan, args.format, console, saved_as=args.plan_file),
                   painted=args.format == "text" and console.color)
    return EXIT_OK


def cmd_apply(args: argparse.Namespace, console: Console) -> int:
    """`reconciler apply (-f … | --plan FILE)`: make live state match the declared state."""
    if bool(args.files) == bool(args.plan):
        raise InputError([Problem("apply needs either -f PATH… or --plan FILE (not both)")])
    if args.plan_key_file and not args.plan:
        raise InputError([Problem("--plan-key-file checks the signature of a saved plan: it "
                                  "needs --plan FILE")])
    if args.plan and args.project:
        raise InputError([Problem("--project cannot be combined with --plan: a reviewed plan is "
                                  "applied whole (make a plan with --project instead)")])
    saved = _read_signed_plan(args, console) if args.plan else None
    desired = None if saved else _load(args, console)
    inputs = [*(desired.files if desired else [args.plan]), *_key_files(args)]
    check_outputs(_outputs(report=args.report), inputs=inputs)
    report = ApplyReport(plan_checksum="", dry_run=args.dry_run)
    try:
        return asyncio.run(_apply(args, console, desired, saved, report))
    finally:
        if args.report and report.plan_checksum:
            _write_json(Path(args.report), report.to_dict())


def cmd_restore(args: argparse.Namespace, console: Console) -> int:
    """`reconciler restore BACKUP`: recreate a deleted conversation from its backup, once."""
    backup = read_backup(Path(args.backup_file))
    project_id = int(backup["project_id"])
    original = str(backup["conversation"]["session_id"])
    name = str(backup["conversation"]["name"])
    prompts = [str(m["user_query"]) for m in backup["messages"]] if args.resend_prompts else None
    result = asyncio.run(_restore(args, console, project_id, original, name, prompts))
    console.result(_restore_summary(result, original, resend=prompts is not None))
    if result.prompts_sent:
        console.result(
            f"Sent {result.prompts_sent} prompt(s) in order. Their answers were generated "
            "anew: the API cannot restore the original answers, which remain in the backup."
        )
    if prompts is None and backup["messages"]:
        console.info(f"{len(backup['messages'])} message(s) were not re-sent "
                     "(--resend-prompts re-sends the prompts; answers are regenerated).")
    return EXIT_OK


def _restore_summary(result: RestoreResult, original: str, *, resend: bool) -> str:
    where = f"{result.name!r} in project {result.project_id}"
    if result.state is Restored.CREATED:
        return f"Restored {where} as session {result.session_id}."
    if result.state is Restored.RESUMED:
        return (f"Resumed the restore of {where} (session {result.session_id}), which held "
                "the first prompts of the backup.")
    if result.session_id == original:
        return f"Nothing to restore: {where} (session {original}) still exists."
    held = " with the backup's prompts" if resend else ""
    return f"Already restored: {where} is session {result.session_id}{held}; nothing was done."


async def _restore(
    args: argparse.Namespace,
    console: Console,
    project_id: int,
    original: str,
    name: str,
    prompts: list[str] | None,
) -> RestoreResult:
    async with open_client(args, console, project_ids=[project_id]) as client:
        with _writing(args, client, [project_id], command="restore"):
            return await restore_conversation(client, project_id, original, name, prompts)


def cmd_export(args: argparse.Namespace, console: Console) -> int:
    """`reconciler export --project ID…`: write desired-state YAML of what is live."""
    scope = Scope(args.scope)
    check_outputs(_outputs(output=args.output), inputs=_key_files(args))
    projects = asyncio.run(_export(args, console, scope))
    document, notes = export_document(projects, scope=scope, pin=args.pin)
    text = EXPORT_HEADER + dump_yaml(document)
    for note in notes:
        console.info(f"note: {note}")
    if args.output:
        _write_text(Path(args.output), text)
        count = sum(len(p["conversations"]) for p in document["projects"])
        console.info(f"Wrote {count} conversation(s) of {len(projects)} project(s) "
                     f"to {args.output}.")
    else:
        console.result(text)
    return EXIT_OK


EXPORT_HEADER = (
    "# yaml-language-server: $schema=../schemas/conversations.schema.json\n"
    "# Written by `reconciler export`: what is live, as desired state. Review, commit, and\n"
    "# from then on change conversations through this file.\n"
)


async def _export(args: argparse.Namespace, console: Console, scope: Scope) -> list[LiveProject]:
    async with (
        open_client(args, console, project_ids=args.project) as client,
        counting(enabled=console.progress, stream=console.err,
                 description="Reading live state", count=lambda: client.stats.requests),
    ):
        return await read_live(client, args.project, scope=scope,
                               with_messages=args.with_messages)


def _load(args: argparse.Namespace, console: Console) -> DesiredState:
    desired = load_desired(args.files, env=console.env, secrets=console.secrets)
    if args.project:
        wanted = set(args.project)
        unknown = wanted - {p.id for p in desired.projects}
        if unknown:
            raise InputError([Problem(
                f"--project {', '.join(map(str, sorted(unknown)))}: not declared in the given files"
            )])
        desired = desired.select(wanted)
    return desired


def _guard_limits(args: argparse.Namespace) -> GuardLimits:
    return GuardLimits(allow_mass_delete=args.allow_mass_delete, max_deletes=args.max_deletes,
                       max_sends=args.max_sends)


def _key_files(args: argparse.Namespace) -> list[str]:
    """The key files given (--api-key-file, --plan-key-file): inputs no output may replace."""
    return [path for path in (args.api_key_file, getattr(args, "plan_key_file", None)) if path]


def _outputs(**paths: str | None) -> list[Output]:
    """The output files given, named by their option (`out` is "--out")."""
    return [Output(f"--{option}", Path(path)) for option, path in paths.items() if path]


async def _limits_with_credits(
    client: Client, plan: Plan, args: argparse.Namespace
) -> GuardLimits:
    """The run's guard limits, with the query credits left when `plan` sends anything."""
    if not sends(plan):
        return _guard_limits(args)
    credits = await client.query_credits()
    return replace(_guard_limits(args), credits_left=None if credits is None else credits.left)


async def _plan(
    args: argparse.Namespace, console: Console, desired: DesiredState
) -> tuple[Plan, float | None]:
    """The plan, and the pace the run ended at (requests per minute; None: unpaced)."""
    async with open_client(args, console, project_ids=[p.id for p in desired.projects]) as client:
        return await _make_plan(client, console, desired, args), client.pacer.rate


async def _make_plan(
    client: Client, console: Console, desired: DesiredState, args: argparse.Namespace
) -> Plan:
    async with counting(enabled=console.progress, stream=console.err,
                        description="Reading live state", count=lambda: client.stats.requests,
                        note=lambda: _pace_note(client)):
        return await make_plan(client, desired, limits=_guard_limits(args),
                               api=api_target(args, client))


async def _apply(
    args: argparse.Namespace,
    console: Console,
    desired: DesiredState | None,
    saved: Plan | None,
    report: ApplyReport,
) -> int:
    ids = [p.id for p in desired.projects] if desired else [p.project_id for p in saved.projects]  # type: ignore[union-attr]
    async with open_client(args, console, project_ids=ids) as client:
        with _writing(args, client, ids, command="apply"):
            plan = await _plan_to_apply(args, console, client, desired, saved)
            console.result(render_text(plan, color=console.color, verbose=console.verbose > 0,
                                       rate=client.pacer.rate), painted=console.color)
            if plan.all_errors or not plan.has_changes:
                return EXIT_ERROR if plan.all_errors else EXIT_OK
            backup_dir = _backup_dir(args)
            if backup_dir is not None and not args.dry_run and plan.summary()["delete"]:
                check_outputs([Output("--backup-dir", backup_dir, directory=True)], inputs=())
            if _confirm(args, console):  # time has passed: check the plan again
                await _refuse_stale(client, plan, saved=saved is not None)
            await _run_apply(args, console, client, plan, report, backup_dir=backup_dir)
    for line in report.duplicates:
        console.error(f"error: {line}")
    if report.duplicates:
        console.error("Nothing was sent or deleted after the creates. Keep one conversation of "
                      "each name (delete the others), then run apply again.")
    console.result(_apply_summary(report))
    return EXIT_ERROR if report.failed or report.duplicates else EXIT_OK


def _writing(
    args: argparse.Namespace, client: Client, project_ids: list[int], *, command: str
) -> AbstractContextManager[None]:
    """The locks of the projects a run writes to (none for a dry run)."""
    if getattr(args, "dry_run", False):
        return nullcontext()
    return project_locks(api_target(args, client), project_ids, command=command)


async def _plan_to_apply(
    args: argparse.Namespace,
    console: Console,
    client: Client,
    desired: DesiredState | None,
    saved: Plan | None,
) -> Plan:
    """A fresh plan of `desired`, or the `saved` plan with the apply's guards, checked."""
    if saved is None:
        assert desired is not None
        return await _make_plan(client, console, desired, args)
    _check_target(saved, api_target(args, client))
    plan = with_guards(saved, await _limits_with_credits(client, saved, args))
    if not plan.all_errors:
        await _refuse_stale(client, plan, saved=True)
    return plan


async def _run_apply(
    args: argparse.Namespace, console: Console, client: Client, plan: Plan, report: ApplyReport,
    *, backup_dir: Path | None,
) -> None:
    report.plan_checksum = plan.checksum
    options = ApplyOptions(parallelism=args.parallelism, dry_run=args.dry_run,
                           backup_dir=backup_dir, limits=_guard_limits(args))
    progress = Progress(enabled=console.progress, stream=console.err,
                        description="Applying", unit="operations", total=len(plan.operations))
    eta = _time_left(client, plan)
    progress.note(eta())

    def on_result(result: OperationResult) -> None:
        _show_result(console, progress, result)
        progress.note(eta())

    try:
        await apply_plan(client, plan, options=options, report=report, on_result=on_result)
    except (KeyboardInterrupt, asyncio.CancelledError):
        report.interrupted = True
        raise
    finally:
        progress.close()


def _pace_note(client: Client) -> str:
    rate = client.pacer.rate
    return "" if rate is None else f"at {per_minute(rate)} requests/min"


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


async def _refuse_stale(client: Client, plan: Plan, *, saved: bool) -> None:
    stale = await find_stale(client, plan)
    if stale:
        what, remedy = (("the saved plan", "Make a new plan with `reconciler plan --out`.")
                        if saved else ("the plan", "Run apply again to plan afresh."))
        raise StalePlanError(
            f"{what} is stale; nothing was applied. Stale operations:\n  "
            + "\n  ".join(stale) + f"\n{remedy}"
        )


def _check_target(plan: Plan, target: str) -> None:
    if plan.api != target:
        raise InputError([Problem(
            f"this plan was made against {plan.api or 'an unknown API'}, not {target}: "
            "nothing was applied; make a plan against this API and review it"
        )])


def _confirm(args: argparse.Namespace, console: Console) -> bool:
    """Ask a person to confirm; True when one did (False: no question was needed)."""
    if args.dry_run or args.auto_approve:
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


def _backup_dir(args: argparse.Namespace) -> Path | None:
    if args.no_backup:
        return None
    return Path(args.backup_dir) if args.backup_dir else default_backup_dir()


def _show_result(console: Console, progress: Progress, result: OperationResult) -> None:
    progress.advance()
    mark = {Outcome.DONE: "ok", Outcome.FAILED: "FAILED", Outcome.SKIPPED: "skipped",
            Outcome.PLANNED: "would", Outcome.INTERRUPTED: "interrupted"}[result.outcome]
    op = result.operation
    if result.outcome is Outcome.FAILED or not console.quiet:
        where = f"project {op.project_id}" + (f", {result.session_id}" if result.session_id else "")
        progress.write(console.clean(
            f"  [{mark}] {op.action.value} {op.name!r} ({where}): {result.detail}"))


def _apply_summary(report: ApplyReport) -> str:
    counts = report.counts()
    if report.dry_run:
        return f"Dry run: {counts['planned']} operation(s) would be applied; nothing was changed."
    line = (f"Apply: {counts['done']} done, {counts['failed']} failed, "
            f"{counts['skipped']} skipped.")
    if report.failed:
        line += " Run apply again to retry what failed; it converges."
    return line


def _render(
    plan: Plan, fmt: str, console: Console, *, saved_as: str | None = None,
    rate: float | None = None,
) -> str:
    if fmt == "json":
        return render_json(plan)
    if fmt == "markdown":
        hint = f"The full plan is in `{saved_as}` (`reconciler show {saved_as}`)." \
            if saved_as else "Run `reconciler plan` for the full plan."
        return render_markdown(plan, full_plan_hint=hint)
    return render_text(plan, color=console.color, verbose=console.verbose > 0, rate=rate)


def _save_plan(path: Path, plan: Plan, key: Secret | None) -> None:
    document = plan.to_dict()
    if key is not None:
        document["signature"] = sign(document, key)
    _write_json(path, document)


def _read_signed_plan(args: argparse.Namespace, console: Console) -> Plan:
    """The plan of `apply --plan`, whose signature fits the plan key (or neither is there)."""
    key = read_plan_key(console.env, args.plan_key_file)
    plan, document = read_plan(Path(args.plan))
    check_signature(document, key, source=args.plan)
    return plan


def read_plan(path: Path) -> tuple[Plan, dict[str, Any]]:
    """A saved plan file, and its document; raises InputError if it is unreadable, invalid or
    altered (its signature is checked by the caller that applies it)."""
    from reconciler.desired.schema import validate

    document = read_json_file(path, what="plan")
    if isinstance(document, dict) and document.get("format_version") != PLAN_FORMAT_VERSION:
        raise InputError([Problem(
            f"{path}: not a plan of format {PLAN_FORMAT_VERSION}: it was made by another "
            "version of reconciler; make a new plan with `reconciler plan --out`")])
    problems = [p.message for p in validate(document, "plan")] or _session_id_problems(document)
    if problems:
        raise InputError([Problem(f"{path}: not a valid plan: {p}") for p in problems])
    return Plan.from_dict(document, source=str(path)), document


def _session_id_problems(document: dict[str, Any]) -> list[str]:
    """A session id in a plan file reaches URL paths, backup file names and the terminal: each
    must be one (`is_session_id`)."""
    problems = []
    for index, project in enumerate(document["projects"]):
        holders = [*project["operations"], *(op["precondition"] for op in project["operations"]),
                   *project["unmanaged"]]
        if any(h.get("session_id") is not None and not is_session_id(h["session_id"])
               for h in holders):
            problems.append(f"projects[{index}] holds a session id that is not one")
    return problems


def _write_json(path: Path, document: dict[str, Any]) -> None:
    _write_text(path, pretty(document))


def _write_text(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise InputError([Problem(f"cannot write: {os_reason(error)}", Location(str(path)))]
                         ) from None
