"""The files and directories a command will write, checked before it does anything.

A plan saved over the desired state it was made from, or a report that cannot be written once
every change was applied, is found out here instead: every output path must be creatable or
writable, and none may be one of the command's input files (by any name: a symbolic or a hard
link to an input is the same file). Nothing is created or changed by the check.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import InputError, Location, Problem, os_reason

STATE_DIR = Path(".reconciler")  # the tool's own files: backups, locks, the sandbox


@dataclass(frozen=True)
class Output:
    """A path a command will write: `option` names it in messages ("--out")."""

    option: str
    path: Path
    directory: bool = False


def check_outputs(outputs: Iterable[Output], *, inputs: Sequence[str]) -> None:
    """Raise InputError, with one located problem per output, unless each can be written and
    none is one of `inputs`."""
    problems = [problem for output in outputs if (problem := _problem(output, inputs))]
    if problems:
        raise InputError(problems)


def _problem(output: Output, inputs: Sequence[str]) -> Problem | None:
    where = Location(str(output.path))
    try:
        mode: int | None = os.stat(output.path).st_mode
    except (FileNotFoundError, NotADirectoryError):  # missing, or under a file
        mode = None
    except (OSError, ValueError) as error:
        return Problem(f"{output.option}: cannot be written: {os_reason(error)}", where)
    if mode is None:
        return _creatable(output, where)
    if output.directory:
        if not stat.S_ISDIR(mode):
            return Problem(f"{output.option}: exists and is not a directory", where)
        return _probe(output, output.path, where)
    if stat.S_ISDIR(mode):
        return Problem(f"{output.option}: is a directory, not a file", where)
    for source in inputs:
        if _same_file(output.path, source):
            return Problem(f"{output.option}: is the input file {source}; refusing to "
                           "overwrite it", where)
    try:
        with open(output.path, "r+b"):  # opens for writing without truncating
            return None
    except OSError as error:
        return Problem(f"{output.option}: cannot be written: {os_reason(error)}", where)


def _creatable(output: Output, where: Location) -> Problem | None:
    """A missing path can be created when its nearest existing ancestor is a directory in
    which a file can be created."""
    ancestor = output.path.absolute().parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return Problem(f"{output.option}: cannot be created: {ancestor} is not a directory",
                       where)
    return _probe(output, ancestor, where)


def _probe(output: Output, directory: Path, where: Location) -> Problem | None:
    """Create and remove a temporary file in `directory`: the only sure test of writing."""
    try:
        fd, name = tempfile.mkstemp(dir=directory, prefix=".reconciler-probe-")
    except OSError as error:
        return Problem(f"{output.option}: cannot be written: {os_reason(error)}", where)
    os.close(fd)
    os.unlink(name)
    return None


def _same_file(path: Path, source: str) -> bool:
    try:
        return os.path.samefile(path, source)
    except (OSError, ValueError):
        return False

