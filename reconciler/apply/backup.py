"""Transcript backups written before every delete, and reading them back.

A backup is one JSON file per conversation, written atomically: a temporary file in the same
directory, flushed and fsynced, renamed over the final name, then the directory fsynced.
"""

from __future__ import annotations

import errno
import os
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from reconciler.api.live import Transcript, is_session_id
from reconciler.apply.outputs import STATE_DIR
from reconciler.desired.model import MAX_ID
from reconciler.desired.schema import validate
from reconciler.errors import InputError, Problem
from reconciler.jsonio import pretty, read_json_file

BACKUP_FORMAT_VERSION = 1
DEFAULT_BACKUP_ROOT = STATE_DIR / "backups"


def default_backup_dir(now: datetime | None = None) -> Path:
    """`.reconciler/backups/<UTC time>`: one directory per apply run."""
    moment = now or datetime.now(UTC)
    return DEFAULT_BACKUP_ROOT / moment.strftime("%Y%m%dT%H%M%SZ")


def write_backup(directory: Path, project_id: int, transcript: Transcript) -> Path:
    """Write `transcript` to `<directory>/<project>/<session_id>.json`; return the path.

    Raises OSError when it cannot be written completely; nothing partial is left behind. A
    session id that is not one (see `is_session_id`: it could name a path outside
    `directory`) or a project id out of range is refused with an OSError before anything is
    written.
    """
    session_id = transcript.conversation.session_id
    if not is_session_id(session_id) or not 1 <= project_id <= MAX_ID:
        raise OSError(errno.EINVAL, "the conversation's session id or project id cannot be "
                                    "used in a file name")
    target_dir = directory / str(project_id)
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{session_id}.json"
    document = {
        "format_version": BACKUP_FORMAT_VERSION,
        "backed_up_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "project_id": project_id,
        "conversation": asdict(transcript.conversation),
        "messages": [asdict(m) for m in transcript.messages],
    }
    data = pretty(document).encode("utf-8")
    fd, temp = tempfile.mkstemp(dir=target_dir, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    _fsync_directory(target_dir)
    return target


@dataclass(frozen=True)
class Backup:
    """What `restore` needs of a backup file: where the conversation was, and its prompts in
    order (its answers stay in the file: the API cannot write them back)."""

    project_id: int
    session_id: str
    name: str
    prompts: tuple[str, ...]


def read_backup(path: Path) -> Backup:
    """A backup file's content; raises InputError when it is missing or not a backup (one
    whose session id is not one, see `is_session_id`, included)."""
    document = read_json_file(path, what="backup")
    problems = [p.message for p in validate(document, "backup")]
    if not problems and isinstance(document, dict):
        conversation = document["conversation"]
        if is_session_id(conversation["session_id"]):
            return Backup(project_id=document["project_id"],
                          session_id=conversation["session_id"], name=conversation["name"],
                          prompts=tuple(m["user_query"] for m in document["messages"]))
        problems = ["conversation.session_id is not a session id"]
    raise InputError(Problem(f"{path}: not a reconciler backup file: {p}") for p in problems)


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
