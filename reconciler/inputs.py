"""Input files read whole, the one way: regular files only, without blocking, up to a limit.

Every file the tool reads whole (desired-state YAML, saved plans, backups, key files) is read
by `read_input`, so that a path naming something that is not a file fails the same way for
all of them, with a reason in words: a FIFO (which would wait for a writer forever), a device
such as `/dev/zero` (which never ends), a directory, or a file larger than its kind's limit.

The file is opened without blocking (`O_NONBLOCK`: opening a FIFO with no writer returns at
once) and without becoming the process's terminal (`O_NOCTTY`); what was opened is then
checked with `fstat` on the descriptor, never on the path, so that the file checked is the
file read even if the path is replaced in between. The size is checked before reading, and
reading stops one byte past the limit, so that a file growing while read is refused too.
"""

from __future__ import annotations

import os
import stat
from typing import Final

from reconciler.errors import os_reason

KIB: Final = 1024
MIB: Final = 1024 * KIB

KEY_FILE_LIMIT: Final = 64 * KIB  # an API key or a plan key: a line of text
SAVED_FILE_LIMIT: Final = 256 * MIB  # a saved plan or a backup (a 100,000-operation plan fits)
YAML_FILE_LIMIT: Final = 10 * MIB  # one desired-state file (split a larger one into several)

_CHUNK = 1 * MIB


class UnreadableFile(Exception):
    """A file that `read_input` refuses or cannot read; `reason` says why, in lower-case words
    that never repeat the path ("no such file or directory", "a FIFO, not a regular file");
    `too_large`: the file is over its limit (and may be split, or was not the file meant)."""

    def __init__(self, reason: str, *, too_large: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.too_large = too_large


def read_input(path: str | os.PathLike[str], *, limit: int) -> bytes:
    """The whole content of the regular file at `path`, at most `limit` bytes.

    Raises UnreadableFile when the path cannot be opened (missing, permission denied, a NUL
    byte), names something that is not a regular file (a directory, FIFO, socket or device),
    or holds more than `limit` bytes. Never blocks on a FIFO and never reads past the limit.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except (OSError, ValueError) as error:
        raise UnreadableFile(os_reason(error)) from None
    try:
        return _read_regular(fd, limit)
    finally:
        os.close(fd)


def _read_regular(fd: int, limit: int) -> bytes:
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise UnreadableFile(f"{kind_of(status.st_mode)}, not a regular file")
        if status.st_size > limit:
            raise UnreadableFile(f"file is {status.st_size} bytes, over the {amount(limit)} "
                                 "limit", too_large=True)
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(_CHUNK, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as error:
        raise UnreadableFile(os_reason(error)) from None
    if size > limit:
        raise UnreadableFile(f"file grew past the {amount(limit)} limit while it was read",
                             too_large=True)
    return b"".join(chunks)


def kind_of(mode: int) -> str:
    """What a file of `mode` is, in words: "a directory", "a FIFO", "a device"..."""
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
             (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISLNK, "a symbolic link"))
    return next((name for test, name in kinds if test(mode)), "a special file")


def amount(size: int) -> str:
    """`size` bytes in words: "64 KiB", "10 MiB", "100 bytes"."""
    for unit, name in ((MIB, "MiB"), (KIB, "KiB")):
        if size >= unit and size % unit == 0:
            return f"{size // unit} {name}"
    return f"{size} bytes"
