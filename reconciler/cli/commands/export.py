"""`reconciler export --project ID…`: write desired-state YAML of what is live."""

from __future__ import annotations

import asyncio
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from reconciler.apply.outputs import check_outputs
from reconciler.cli.common import EXIT_OK, key_files, outputs, write_text
from reconciler.cli.connect import Connection, open_client
from reconciler.cli.console import Console
from reconciler.cli.progress import counting
from reconciler.desired.model import Scope
from reconciler.desired.yamlsource import dump_yaml
from reconciler.errors import InputError, Location, Problem
from reconciler.plan.export import LiveProject, export_document, read_live

EXPORT_HEADER = (
    "# yaml-language-server: $schema=../schemas/conversations.schema.json\n"
    "# Written by `reconciler export`: what is live, as desired state. Review, commit, and\n"
    "# from then on change conversations through this file. `owns` lists exactly the names\n"
    "# exported: with prune on, nothing else (what other clients of the key create) is deleted.\n"
)


@dataclass(frozen=True)
class ExportParams:
    """The projects to export, which of their conversations, what to declare of each, the
    file to write (None: stdout), and whether an existing file may be replaced."""

    connection: Connection
    projects: tuple[int, ...]
    scope: Scope
    pin: bool
    with_messages: bool
    output: str | None
    force: bool = False


def run(params: ExportParams, console: Console) -> int:
    """Read the projects' live state and write it as desired state. Raises InputError, before
    the first request, for an output that cannot be written or that exists (without
    `force`)."""
    check_outputs(outputs(output=params.output), inputs=key_files(params.connection))
    if params.output and not params.force:
        _refuse_existing(Path(params.output))
    projects = asyncio.run(_export(params, console))
    document, notes = export_document(projects, scope=params.scope, pin=params.pin)
    text = EXPORT_HEADER + dump_yaml(document)
    for note in notes:
        console.warning(f"note: {note}")
    if params.output:
        write_text(Path(params.output), text, replace=params.force)
        count = sum(len(p["conversations"]) for p in document["projects"])
        console.info(f"Wrote {count} conversation(s) of {len(projects)} project(s) "
                     f"to {params.output}.")
    else:
        console.result(text)
    return EXIT_OK


def _refuse_existing(path: Path) -> None:
    """An export never replaces a file unasked: a file adopted earlier has since been edited
    (`${VAR}` ids, prune, ignore, protect, renamed_from), and export writes none of that."""
    try:
        regular = stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:  # missing (or unusable: check_outputs has said why)
        return
    if regular:
        raise InputError([Problem(
            "--output: the file exists; export never replaces a file unless asked: what it "
            "writes is live state only, and an edited file's ${VAR} ids, prune, ignore, "
            "protect and renamed_from would be lost. Write to a new file and compare, or add "
            "--force to replace it", Location(str(path)))])


async def _export(params: ExportParams, console: Console) -> list[LiveProject]:
    async with (
        open_client(params.connection, console, project_ids=params.projects) as client,
        counting(enabled=console.progress, stream=console.err,
                 description="Reading live state", count=lambda: client.stats.requests),
    ):
        return await read_live(client, list(params.projects), scope=params.scope,
                               with_messages=params.with_messages)
