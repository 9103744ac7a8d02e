"""The files and directories a command will write: checked before it does anything, written
without following a planted link, and the tool's own state directory.

A plan saved over the desired state it was made from, or a report that cannot be written once
every change was applied, is found out here instead: every output path must be creatable or
writable, none may be one of the command's input files (by any name: a symbolic or a hard
link to an input is the same file), and none may be a symbolic link. Nothing is created or
changed by the check.

Outputs are written outside the working directory too (users pass absolute paths); what is
refused is writing through a symbolic link at the output's own name: a link committed to a
repository (`plan.json -> ~/.bashrc`) would otherwise make a CI job overwrite whatever it
points to. `write_output` replaces a file atomically by renaming a new file over its name,
which replaces a link planted there after the check instead of following it.

`.reconciler/` (`STATE_DIR`) holds backups (full transcripts), locks and the sandbox inside the
working tree: it carries its own `.gitignore` (`*`), so that `git add .` never commits them.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import InputError, Location, Problem, os_reason

STATE_DIR = Path(".reconciler")  # the tool's own files: backups, locks, the sandbox
STATE_GITIGNORE = ("# Made by reconciler: backups (full transcripts), locks and the sandbox "
                   "stay out of\n# version control.\n*\n")
_SYMLINK = "is a symbolic link; reconciler does not write through one"


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
    if os.path.islink(output.path):
        return Problem(f"{output.option}: {_SYMLINK} (a link in a working tree can point "
                       "anywhere); remove it, or give the path it points to", where)
    if stat.S_ISBLK(mode) or stat.S_ISSOCK(mode):
        return Problem(f"{output.option}: is not a regular file", where)
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


def write_output(path: Path, data: bytes, *, replace: bool = True) -> None:
    """Write `data` as the file `path`, never through a symbolic link at `path`.

    A regular file (or a missing one) is replaced atomically: a new file in the same directory
    (with the old file's permissions, else the umask's), flushed and fsynced, renamed over
    `path`; a reader sees the old content or the new, never part of it, and a link planted at
    `path` since the check is replaced, not followed. With `replace` False an existing file
    is kept, even one made while this one was written (FileExistsError). A FIFO or a character
    device given as the output (`/dev/null`) is written in place. Raises OSError (a symbolic
    link: ELOOP).
    """
    try:
        mode: int | None = os.lstat(path).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and stat.S_ISLNK(mode):
        raise OSError(errno.ELOOP, _SYMLINK)
    if mode is not None and (stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)):
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC)
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
        return
    if mode is not None and not stat.S_ISREG(mode):
        raise OSError(errno.EISDIR if stat.S_ISDIR(mode) else errno.EINVAL,
                      "is not a regular file")
    if mode is not None and not replace:
        raise FileExistsError(errno.EEXIST, "the file exists")
    _write_new(path, data, mode=None if mode is None else stat.S_IMODE(mode), replace=replace)


def _write_new(path: Path, data: bytes, *, mode: int | None, replace: bool) -> None:
    directory = path.parent
    fd, temp = _new_file(directory)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        if replace:
            os.replace(temp, path)
        else:
            _link(temp, path)
    finally:
        Path(temp).unlink(missing_ok=True)
    _fsync_directory(directory)


def _link(temp: Path, path: Path) -> None:
    """Give the new file `temp` the name `path` unless a file has it (FileExistsError): a
    hard link is made only where no name is, atomically; on a file system without hard
    links, the name is checked, then the file renamed."""
    try:
        os.link(temp, path)
    except FileExistsError:
        raise
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
            raise
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, "the file exists") from None
        os.replace(temp, path)


def _new_file(directory: Path) -> tuple[int, Path]:
    """A new, empty file in `directory` with a random name, created with the umask's
    permissions (as any written file), never an existing one."""
    while True:
        temp = directory / f".reconciler-{secrets.token_hex(8)}.tmp"
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            return os.open(temp, flags, 0o666), temp
        except FileExistsError:  # pragma: no cover - 64 random bits
            continue


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:  # pragma: no cover - platforms without directory descriptors
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_state_directory(root: Path = STATE_DIR) -> int:
    """An open descriptor of the state directory `root` (`.reconciler/`), made if missing and
    given a `.gitignore` of `*` if it has none and one can be made (so that `git add .` leaves
    backups, locks and the sandbox out). The caller closes it.

    Raises OSError: a `root` that is a symbolic link (ELOOP: the tool's own files are never
    put wherever a planted link points) or not a directory (ENOTDIR).
    """
    root.mkdir(parents=True, exist_ok=True)
    fd = open_directory(root)
    try:
        ignore = os.open(".gitignore", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o644, dir_fd=fd)
    except OSError:  # there already (or a read-only directory, whose files still work)
        return fd
    with os.fdopen(ignore, "w", encoding="utf-8") as stream:
        stream.write(STATE_GITIGNORE)
    return fd


def make_state_directory(root: Path = STATE_DIR) -> None:
    """Make the state directory `root` as `open_state_directory` does. Raises OSError."""
    os.close(open_state_directory(root))


def open_directory(path: Path | str, *, dir_fd: int | None = None) -> int:
    """An open descriptor of the directory `path` (relative to `dir_fd` if given), which must
    not be a symbolic link. Raises OSError: ELOOP for a link, ENOTDIR for a file."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(path, flags, dir_fd=dir_fd)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link(path, dir_fd):
            raise OSError(errno.ELOOP, "is a symbolic link; reconciler does not follow one "
                                       "there") from None
        raise


def _is_link(path: Path | str, dir_fd: int | None) -> bool:
    try:
        return stat.S_ISLNK(os.stat(path, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _same_file(path: Path, source: str) -> bool:
    try:
        return os.path.samefile(path, source)
    except (OSError, ValueError):
        return False

