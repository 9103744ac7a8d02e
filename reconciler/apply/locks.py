"""One writing run at a time per project on one machine: a lock file per project.

`apply` and `restore` hold an exclusive `flock` on `.reconciler/locks/<api>-<project>.lock`
for every project they may write to, from before they read live state until they end. The
kernel releases the lock when the process ends, however it ends (SIGKILL included), so a lock
is never left behind. A run that finds a project locked stops at once and names the holder,
which each holder writes into its lock file. Runs on other machines, or from another working
directory, do not see each other's locks (CI pipelines use a concurrency group instead).

`<api>` is the server's identity, not its spelling: `http://localhost:8765`,
`http://127.0.0.1:8765/` and `http://[::1]:8765` are one server and share one lock
(`server_identity`). Neither `.reconciler`, `.reconciler/locks` nor a lock file is followed
when it is a symbolic link, and a lock file that is not a regular file (a FIFO) is refused:
each is opened without following a link, relative to the directory opened before it.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import ipaddress
import json
import os
import socket
import stat
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from reconciler.api.settings import is_loopback
from reconciler.apply.outputs import STATE_DIR, open_directory, open_state_directory
from reconciler.errors import InputError, Problem, ReconcilerError
from reconciler.inputs import kind_of
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

    `root` is the lock directory, inside the state directory (`.reconciler/locks`): neither
    may be a symbolic link. Raises LockedError naming the holder when one is held by another
    run, InputError when a lock file cannot be opened or is not a regular file.
    """
    with ExitStack() as held:
        for project_id in sorted(set(project_ids)):
            held.enter_context(_project_lock(lock_path(root, api, project_id), project_id,
                                             command=command))
        yield


def lock_path(root: Path, api: str, project_id: int) -> Path:
    """The lock file of one project of one API (by its `server_identity`)."""
    digest = hashlib.sha256(server_identity(api).encode("utf-8")).hexdigest()[:12]
    return root / f"{digest}-{int(project_id)}.lock"


_DEFAULT_PORTS = {"http": 80, "https": 443}


def server_identity(api: str) -> str:
    """One spelling of the server a base URL names: scheme and host in lower case, the host
    without its trailing dot, every loopback host (`localhost`, 127.0.0.0/8, `::1`, and
    `::ffff:127.0.0.1`) as `loopback`, the port always written (80, 443 by default), the path
    without a trailing slash. Anything else (`sandbox`) is its own identity.

    Two spellings of one server must share a lock; two servers sharing one (the loopback
    addresses of IPv4 and IPv6 on one port) only make a run wait for the other.
    """
    try:
        parts = urlsplit(api.strip())
        host, port = parts.hostname, parts.port
    except ValueError:
        return api
    scheme = parts.scheme.lower()
    if host is None or scheme not in _DEFAULT_PORTS:
        return api
    host = host.rstrip(".")
    if _is_loopback(host):
        host = "loopback"
    port = _DEFAULT_PORTS[scheme] if port is None else port
    return f"{scheme}://{host}:{port}{parts.path.rstrip('/')}"


def _is_loopback(host: str) -> bool:
    try:
        mapped = ipaddress.ip_address(host)
    except ValueError:
        return is_loopback(host)
    if isinstance(mapped, ipaddress.IPv6Address) and mapped.ipv4_mapped is not None:
        return mapped.ipv4_mapped.is_loopback
    return mapped.is_loopback


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
    """The lock file at `path`, created if missing, opened without following a symbolic link
    at any of its last three names (the state directory, the lock directory, the file)."""
    try:
        state = open_state_directory(path.parent.parent)
    except OSError as error:
        raise _unusable(path.parent.parent, "the state directory", error) from None
    try:
        locks = _lock_directory(state, path.parent)
    finally:
        os.close(state)
    try:
        fd = os.open(path.name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
                     | os.O_NOCTTY | os.O_CLOEXEC, 0o644, dir_fd=locks)
    except OSError as error:
        raise _unusable(path, "the lock file", error) from None
    finally:
        os.close(locks)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise InputError([Problem(f"the lock file {path} is {kind_of(mode)}, not a regular "
                                  "file: remove it, then run again")])
    return fd


def _lock_directory(state: int, path: Path) -> int:
    try:
        os.mkdir(path.name, 0o755, dir_fd=state)
    except FileExistsError:
        pass
    except OSError as error:
        raise _unusable(path, "the lock directory", error) from None
    try:
        return open_directory(path.name, dir_fd=state)
    except OSError as error:
        raise _unusable(path, "the lock directory", error) from None


def _unusable(path: Path, what: str, error: OSError) -> InputError:
    if error.errno == errno.ELOOP:
        return InputError([Problem(f"{what} {path} is a symbolic link; reconciler does not "
                                   "follow one there: remove it, then run again")])
    verb = "open" if what == "the lock file" else "make"
    return InputError([Problem(f"cannot {verb} {what} {path}: {error.strerror}")])


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
