"""`reconciler test -f …`: ask each declared conversation with `expect:` again, in a throwaway
conversation, judge the new answers and delete the throwaway conversation. Exit 0 when every
check passes (or, without --repeat, the pass rate reaches --min-pass-rate), 3 when checks
fail, 1 on an error (a prompt that got no answer included).

What is sent: for each declared conversation with `expect:`, its messages in order up to and
including its last message with `expect:` (the ones before are its context), with the
conversation's send values and the project's `lang`, into a new conversation named
`reconciler-test <start> until <deadline> <run id> <k>/<N> <declared name>` (see
`reconciler.plan.trials`); with `--repeat N`, N such conversations each. Every run first deletes
the expired throwaway conversations of the API key's user that earlier runs left behind.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path

from reconciler.apply.outputs import Output, check_outputs
from reconciler.apply.trials import TrialReport, TrialRun, sweep, utc_now
from reconciler.cli.commands.check import CheckFormat, checks_exit_code, show_checks
from reconciler.cli.common import (
    EXIT_ERROR,
    Declared,
    key_files,
    load_declared,
    outputs,
)
from reconciler.cli.connect import Connection, open_client
from reconciler.cli.console import Console
from reconciler.desired.model import DesiredState
from reconciler.errors import InputError, Location, PlanRefusedError, Problem
from reconciler.jsonio import read_json_file
from reconciler.plan.credits import credits_left
from reconciler.plan.health import ProjectHealth, flips
from reconciler.plan.trials import Replay, RunStamp, lifetime, replays, sends_needed
from reconciler.render.health import from_dict

log = logging.getLogger("reconciler.test")

BASELINE_LIMIT = 64 * 1024 * 1024  # a report of every check with its answer's 4,000 chars


@dataclass(frozen=True)
class TrialParams:
    """What `test` asks (the declared state), how often (`repeat`), the share of runs (with
    --repeat) or of checks (without) that must pass (None: all), the report it compares with
    (`baseline`, None: none), the most prompts it may send (None: no bound but the credits),
    how it shows the result and where (None: stdout), and the files the result is also
    written to, each in its format (`--write`)."""

    connection: Connection
    declared: Declared
    format: CheckFormat
    out: str | None
    min_pass_rate: float | None
    repeat: int = 1
    baseline: str | None = None
    max_sends: int | None = None
    also: tuple[tuple[CheckFormat, str], ...] = ()


def run(params: TrialParams, console: Console) -> int:
    """Ask, judge, delete; exit 0, 3 (checks failed) or 1. Refuses before anything is sent
    (InputError, PlanRefusedError) a baseline that cannot be read and sends beyond
    --max-sends or the query credits left."""
    desired = load_declared(params.declared, console)
    inputs = [*desired.files, *key_files(params.connection)]
    if params.baseline:
        inputs.append(params.baseline)
    written = [Output("--write", Path(path)) for _, path in params.also]
    check_outputs([*outputs(out=params.out), *written], inputs=inputs)
    before = read_baseline(Path(params.baseline)) if params.baseline else None
    planned = replays(desired, repeat=params.repeat)
    count = sends_needed(planned)
    if params.max_sends is not None and count > params.max_sends:
        raise PlanRefusedError(
            f"the test sends {count} prompts, more than --max-sends {params.max_sends} (each "
            "costs a query credit); nothing was sent; raise --max-sends to proceed")
    report = TrialReport()
    try:
        projects = asyncio.run(_test(params, console, desired, planned, report))
    except KeyboardInterrupt:
        raise KeyboardInterrupt(_interrupted(report)) from None
    changed = flips(before, projects) if before is not None else ()
    show_checks(console, projects, fmt=params.format, out=params.out, also=params.also,
                flips=changed, compared=before is not None, command="test")
    console.info(_cleanup_line(report))
    if report.left:
        return EXIT_ERROR
    return checks_exit_code(projects,
                            min_pass_rate=params.min_pass_rate if params.repeat == 1 else None)


def read_baseline(path: Path) -> list[ProjectHealth]:
    """The checks of a JSON report of `check` or `test` (schemas/health.schema.json), read as
    every input is (`reconciler.inputs.read_input`: a regular file, within a size limit).
    Raises InputError naming the file and what is wrong with it."""
    from reconciler.desired.schema import validate

    document = read_json_file(path, what="baseline report", limit=BASELINE_LIMIT)
    problems = validate(document, "health")
    if problems:
        raise InputError([Problem(
            f"not a report of reconciler check or test (--format json): {problems[0].message}"
            + (f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""),
            Location(str(path)))])
    return from_dict(document)


async def _test(params: TrialParams, console: Console, desired: DesiredState,
                planned: list[Replay], report: TrialReport) -> list[ProjectHealth]:
    connection = params.connection
    ids = [p.id for p in desired.projects]
    async with open_client(connection, console, project_ids=ids) as client:
        await sweep(client, ids, report)
        for failure in report.sweep_failures:
            log.warning("warning: could not sweep the throwaway conversations of earlier runs: "
                        "%s", failure)
        count = sends_needed(planned)
        if count:
            left = await credits_left(client, prompts=count)
            if left is not None and count > left:
                raise PlanRefusedError(
                    f"the test sends {count} prompts but the account has {left} query "
                    "credit(s) left: nothing was sent; wait for the credits to renew, or "
                    "test fewer conversations (--project)")
        start = utc_now().replace(microsecond=0)
        stamp = RunStamp(secrets.token_hex(6), start, start + lifetime(
            planned, parallelism=connection.parallelism, send_timeout=connection.send_timeout,
            rate=client.pacer.rate))
        log.info("sending %d prompt(s) in %d throwaway conversation(s) named %r…, to be "
                 "deleted by %s UTC", count, len(planned), stamp.tag.strip(),
                 stamp.deadline.strftime("%Y-%m-%d %H:%M:%S"))
        trial = TrialRun(client, stamp, report, parallelism=connection.parallelism)
        return await trial.ask(desired.projects, planned, repeat=params.repeat,
                               min_pass_rate=params.min_pass_rate)


def _cleanup_line(report: TrialReport) -> str:
    line = (f"Throwaway conversations: {report.created} made, {report.deleted} deleted"
            + (f", {report.swept} of earlier runs swept" if report.swept else "") + ".")
    if report.left:
        line += (f" Not deleted: {', '.join(report.left)}; the next run deletes them after "
                 "their deadline.")
    return line


def _interrupted(report: TrialReport) -> str:
    """What an interrupted test left (the CLI prints it after "interrupted: ")."""
    left = (f"; not deleted: {', '.join(report.left)} (the next run deletes them after their "
            "deadline)" if report.left else "")
    return (f"{report.sends} prompt(s) sent, {report.created} throwaway conversation(s) made, "
            f"{report.deleted} deleted{left}; nothing was judged")
