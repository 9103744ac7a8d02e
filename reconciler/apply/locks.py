"""One writing run at a time per project on one machine: a lock file per project.

`apply` and `restore` hold an exclusive `flock` on `.reconciler/locks/<api>-<project>.lock`
for every project they may write to, from before they read live state until they end. The
kernel releases the lock when the process ends, however it ends (SIGKILL included), so a lock
is never left behind. A run that finds a project locked stops at once and names the holder,
which each holder writes into its lock file. Runs on other machines, or from another working
directory, do not see each other's locks (CI pipelines use a concurrency group instead).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import socket
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

from reconciler.apply.outputs import STATE_DIR
from reconciler.errors import InputError, Problem, ReconcilerError
from reconciler.jsonio import JsonError
from reconciler.jsonio import parse as parse_json

LOCK_ROOT = STATE_DIR / "locks"
_HOLDER_FIELD_LIMIT = 200


class LockedError(ReconcilerError):
    """Another run holds the lock of a project this run would write to; nothing was done."""


@contextmanager
def project_locks(
    api: str, project_ids: Iterable[int], *, command: str, root: Path = LOCK_ROOT
) -> Iterator[None]:
    """Hold the locks of `project_ids` on `api` for the block (taken in order, all or none).

    Raises LockedError naming the holder when one is held by another run, InputError when a
    lock file cannot be opened.
    """
    with ExitStack() as held:
        for project_id in sorted(set(project_ids)):
            held.enter_context(_project_lock(lock_path(root, api, project_id), project_id,
                                             command=command))
        yield


def lock_path(root: Path, api: str, project_id: int) -> Path:
    """The lock file of one project of one API."""
    digest = hashlib.sha256(api.encode("utf-8")).hexdigest()[:12]
    return root / f"{digest}-{int(project_id)}.lock"


@contextmanager
def _project_lock(path: Path, project_id: int, *, command: str) -> Iterator[None]:
    fd = _open(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise InputError([Problem(f"cannot lock {path}: {error.strerror}")]) from None
            raise LockedError(
                f"project {project_id} is being changed by another run ({_holder(fd)}; lock "
                f"file {path}): nothing was done; wait for it to end, then run again"
            ) from None
        _write_holder(fd, command)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _open(path: Path) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError([Problem(
            f"cannot make the lock directory {path.parent}: {error.strerror}")]) from None
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as error:
        raise InputError([Problem(f"cannot open the lock file {path}: {error.strerror}")]) \
            from None


def _write_holder(fd: int, command: str) -> None:
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
              "since": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(holder).encode("utf-8"), 0)


def _holder(fd: int) -> str:
    """Who holds the lock, from what it wrote (a file: checked, never trusted)."""
    try:
        holder = parse_json(os.pread(fd, 4096, 0))
    except (OSError, JsonError):
        return "holder unknown"
    if not isinstance(holder, dict):
        return "holder unknown"
    pid = holder.get("pid")
    parts = [f"pid {pid}" if isinstance(pid, int) and not isinstance(pid, bool) else "pid ?"]
    for key, label in (("host", "on"), ("command", "running"), ("since", "since")):
        value = holder.get(key)
        if isinstance(value, str) and value.isprintable() and len(value) <= _HOLDER_FIELD_LIMIT:
            parts.append(f"{label} {value}")
    return " ".join(parts)
