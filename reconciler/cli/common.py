"""What several commands share, written once: exit codes, output formats, the declared state
with its project selection, the files a command reads and writes, saved plans, planning with
a progress line, the project locks of a writing run, and rendering a plan."""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from reconciler.api.client import Client
from reconciler.api.live import is_session_id
from reconciler.api.pacer import per_minute
from reconciler.apply.locks import project_locks
from reconciler.apply.outputs import Output, write_output
from reconciler.cli.connect import Connection, api_target
from reconciler.cli.console import Console
from reconciler.cli.progress import counting
from reconciler.desired.loader import load_desired
from reconciler.desired.model import DesiredState
from reconciler.errors import InputError, Location, Problem, os_reason
from reconciler.jsonio import pretty, read_json_file
from reconciler.keys import MIN_MASKED_LENGTH
from reconciler.plan.guards import GuardLimits
from reconciler.plan.health import StoredAnswers
from reconciler.plan.make import plan_and_answers
from reconciler.plan.model import PLAN_FORMAT_VERSION, Plan
from reconciler.render.formats import render_json, render_markdown, render_text

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_CHECKS_FAILED = 3  # `check`: answer checks failed
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

# What each exit code means: `reconciler --help` prints it and the documentation's reference
# is generated from it.
EXIT_CODES: dict[int, str] = {
    EXIT_OK: "success; or no changes",
    EXIT_ERROR: "an error: a usage error (an unknown flag, a bad value), invalid input, a "
                "refused or failed API call, a plan with errors, a stale saved plan, a failed "
                "operation, a restore whose name is taken",
    EXIT_CHANGES: "`plan --detailed-exitcode` only: there are changes",
    EXIT_CHECKS_FAILED: "`check` only: answer checks failed (and, with `--min-pass-rate F`, "
                        "fewer than that share passed)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C, SIGINT)",
    EXIT_TERMINATED: "terminated (SIGTERM)",
}

Format = Literal["text", "json", "markdown"]
FORMATS: tuple[Format, ...] = ("text", "json", "markdown")


@dataclass(frozen=True)
class Declared:
    """Desired-state files (or directories), and the declared projects to work on (empty:
    every declared project)."""

    files: tuple[str, ...]
    projects: tuple[int, ...] = ()


def load_declared(declared: Declared, console: Console) -> DesiredState:
    """The desired state of `declared`, restricted to its projects; InputError when one of
    them is not declared in the files, or a path is a stray value (`refuse_stray_values`)."""
    refuse_stray_values(declared.files)
    desired = load_desired(list(declared.files), env=console.env, secrets=console.secrets)
    if declared.projects:
        wanted = set(declared.projects)
        unknown = wanted - {p.id for p in desired.projects}
        if unknown:
            raise InputError([Problem(
                f"--project {', '.join(map(str, sorted(unknown)))}: not declared in the given files"
            )])
        desired = desired.select(wanted)
    return desired


def refuse_stray_values(paths: Sequence[str]) -> None:
    """Raises InputError, without repeating it, for a path that does not exist and looks like
    a key or a token rather than a file name (no `/` or `.`, a digit, 8 characters or more):
    a value typed in the wrong place is read as a desired-state PATH, and may be the key."""
    for path in paths:
        if (len(path) >= MIN_MASKED_LENGTH and not any(c in path for c in "/.")
                and any(c.isdigit() for c in path) and not os.path.lexists(path)):
            raise InputError([Problem(
                "a PATH given does not exist, and looks like a key or a token rather than a "
                "file name: it is not repeated here. Desired-state files and directories are "
                "given as -f PATH or PATH")])


def key_files(connection: Connection, plan_key_file: str | None = None) -> list[str]:
    """The key files given (--api-key-file, --plan-key-file): inputs no output may replace."""
    return [path for path in (connection.api_key_file, plan_key_file) if path]


def outputs(**paths: str | None) -> list[Output]:
    """The output files given, named by their option (`out` is "--out")."""
    return [Output(f"--{option}", Path(path)) for option, path in paths.items() if path]


async def plan_live(
    client: Client, console: Console, desired: DesiredState, *, limits: GuardLimits,
    connection: Connection,
) -> Plan:
    """The plan of `desired` against live state, with a progress line while it reads."""
    plan, _ = await plan_live_with_answers(client, console, desired, limits=limits,
                                           connection=connection)
    return plan


async def plan_live_with_answers(
    client: Client, console: Console, desired: DesiredState, *, limits: GuardLimits,
    connection: Connection,
) -> tuple[Plan, tuple[StoredAnswers, ...]]:
    """`plan_live`, and the stored answers its read found for the declared `expect:`."""
    async with counting(enabled=console.progress, stream=console.err,
                        description="Reading live state", count=lambda: client.stats.requests,
                        note=lambda: _pace_note(client)):
        return await plan_and_answers(client, desired, limits=limits,
                                      api=api_target(connection, client))


def _pace_note(client: Client) -> str:
    rate = client.pacer.rate
    return "" if rate is None else f"at {per_minute(rate)} requests/min"


def writing(
    connection: Connection, client: Client, project_ids: Sequence[int], *, command: str,
    dry_run: bool = False,
) -> AbstractContextManager[None]:
    """The locks of the projects a run writes to (none for a dry run)."""
    if dry_run:
        return nullcontext()
    return project_locks(api_target(connection, client), list(project_ids), command=command)


def render(
    plan: Plan, fmt: Format, console: Console, *, saved_as: str | None = None,
    rate: float | None = None, checks_line: str | None = None,
) -> str:
    """`plan` in the format asked for; `saved_as`: the file it was saved to, for Markdown's
    pointer to the full plan; `rate`: the pace the run ended at, for the text's budget line;
    `checks_line`: the answer checks' line of text and Markdown (JSON has none)."""
    if fmt == "json":
        return render_json(plan)
    if fmt == "markdown":
        hint = f"The full plan is in `{saved_as}` (`reconciler show {saved_as}`)." \
            if saved_as else "Run `reconciler plan` for the full plan."
        return render_markdown(plan, full_plan_hint=hint, checks_line=checks_line)
    return render_text(plan, color=console.color, verbose=console.verbose > 0, rate=rate,
                       checks_line=checks_line)


def show(console: Console, text: str, fmt: Format) -> None:
    """Write a rendered plan as the command's result (coloured text keeps its colours)."""
    console.result(text, painted=fmt == "text" and console.color)


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


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Write `document` as pretty JSON to `path`; InputError naming the file if it cannot."""
    write_text(path, pretty(document))


def write_text(path: Path, text: str, *, replace: bool = True) -> None:
    """Write `text` to `path` (its directory made), replacing a file atomically and never
    through a symbolic link (`outputs.write_output`; with `replace` False, never replacing a
    file either); InputError naming the file if it cannot."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_output(path, text.encode("utf-8"), replace=replace)
    except OSError as error:
        raise InputError([Problem(f"cannot write: {os_reason(error)}", Location(str(path)))]
                         ) from None
