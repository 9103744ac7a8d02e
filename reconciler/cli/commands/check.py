"""`reconciler check -f …`: judge the stored answers of declared messages against their
`expect:`, sending nothing. Exit 0 when every check passes (or the pass rate reaches
--min-pass-rate), 3 when checks fail, 1 on an error."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from reconciler.apply.outputs import Output, check_outputs
from reconciler.cli.common import (
    EXIT_CHECKS_FAILED,
    EXIT_ERROR,
    EXIT_OK,
    Declared,
    key_files,
    load_declared,
    outputs,
    write_text,
)
from reconciler.cli.connect import Connection, open_client
from reconciler.cli.console import Console
from reconciler.cli.sandbox import save_sandbox_health
from reconciler.desired.model import DesiredState
from reconciler.plan.answers import check_answers
from reconciler.plan.health import Flip, ProjectHealth
from reconciler.render.health import as_text, rendered, tally

CheckFormat = Literal["text", "json", "junit", "markdown", "html"]


@dataclass(frozen=True)
class CheckParams:
    """What `check` reads, how it shows the result and where (None: stdout), the share
    of checks that must pass (None: all), and the files the result is also written to, each
    in its format (`--write FORMAT FILE`)."""

    connection: Connection
    declared: Declared
    format: CheckFormat
    out: str | None
    min_pass_rate: float | None
    also: tuple[tuple[CheckFormat, str], ...] = ()


def run(params: CheckParams, console: Console) -> int:
    """Check every declared project's stored answers; exit 0, 3 (checks failed) or 1."""
    desired = load_declared(params.declared, console)
    written = [Output("--write", Path(path)) for _, path in params.also]
    check_outputs([*outputs(out=params.out), *written],
                  inputs=[*desired.files, *key_files(params.connection)])
    projects = asyncio.run(_check(params, console, desired))
    if params.connection.sandbox:
        save_sandbox_health(console, projects)
    show_checks(console, projects, fmt=params.format, out=params.out, also=params.also)
    return checks_exit_code(projects, min_pass_rate=params.min_pass_rate)


def show_checks(console: Console, projects: list[ProjectHealth], *, fmt: CheckFormat,
                out: str | None, also: tuple[tuple[CheckFormat, str], ...],
                flips: tuple[Flip, ...] = (), compared: bool = False,
                command: str = "check") -> None:
    """The checks in `fmt` on stdout, or in `out` with their summary line on stderr; and in
    each `--write` format and file of `also` (`reconciler.render.health.rendered`)."""
    text = rendered(fmt, projects, flips, compared=compared, command=command)
    for other, path in also:
        write_text(Path(path), rendered(other, projects, flips, compared=compared,
                                        command=command))
        console.info(f"Wrote the answer checks ({other}) to {path}.")
    if out:
        write_text(Path(out), text)
        console.info(f"Wrote the answer checks to {out}.")
        if fmt != "text":
            console.info(as_text(projects, flips).splitlines()[-1])
    else:
        console.result(text)


def checks_exit_code(projects: list[ProjectHealth], *, min_pass_rate: float | None) -> int:
    """1 when a project could not be judged; else 0 when every check passed or at least
    `min_pass_rate` of them did (None: all must), 3 otherwise."""
    if any(p.error for p in projects):
        return EXIT_ERROR
    counts = tally(projects)
    if counts.failed == 0:
        return EXIT_OK
    floor = min_pass_rate
    return EXIT_OK if floor is not None and counts.pass_rate >= floor else EXIT_CHECKS_FAILED


async def _check(params: CheckParams, console: Console,
                 desired: DesiredState) -> list[ProjectHealth]:
    async with open_client(params.connection, console,
                           project_ids=[p.id for p in desired.projects]) as client:
        return await check_answers(client, desired)
