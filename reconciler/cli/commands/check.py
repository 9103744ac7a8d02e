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
from reconciler.jsonio import pretty
from reconciler.plan.answers import check_answers
from reconciler.plan.health import ProjectHealth
from reconciler.render.health import as_dict, as_html, as_junit, as_markdown, as_text, tally

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
    text = _rendered(params.format, projects)
    for fmt, path in params.also:
        write_text(Path(path), _rendered(fmt, projects))
        console.info(f"Wrote the answer checks ({fmt}) to {path}.")
    if params.out:
        write_text(Path(params.out), text)
        console.info(f"Wrote the answer checks to {params.out}.")
        if params.format != "text":
            console.info(as_text(projects).splitlines()[-1])
    else:
        console.result(text)
    if any(p.error for p in projects):
        return EXIT_ERROR
    counts = tally(projects)
    if counts.failed == 0:
        return EXIT_OK
    floor = params.min_pass_rate
    return EXIT_OK if floor is not None and counts.pass_rate >= floor else EXIT_CHECKS_FAILED


def _rendered(fmt: CheckFormat, projects: list[ProjectHealth]) -> str:
    """The checks in the format `fmt`."""
    return {"text": as_text, "junit": as_junit, "markdown": as_markdown, "html": _html}.get(
        fmt, _json)(projects)


def _json(projects: list[ProjectHealth]) -> str:
    return pretty(as_dict(projects))


def _html(projects: list[ProjectHealth]) -> str:
    return as_html(projects)


async def _check(params: CheckParams, console: Console,
                 desired: DesiredState) -> list[ProjectHealth]:
    async with open_client(params.connection, console,
                           project_ids=[p.id for p in desired.projects]) as client:
        return await check_answers(client, desired)
