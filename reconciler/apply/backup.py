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
from reconciler.text import normal_form

BACKUP_FORMAT_VERSION = 1
DEFAULT_BACKUP_ROOT = STATE_DIR / "backups"
MAX_NAME_LENGTH = 255  # a declared name's bound (conversations.schema.json), the API's on create
# Far beyond what a person types, and well within a request body (the emulator takes 1 MiB).
MAX_PROMPT_LENGTH = 100_000


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


def read_backup(path: Path, *, resend: bool = False) -> Backup:
    """A backup file's content, checked whole before `restore` writes anything: a name it can
    create (not blank, at most `MAX_NAME_LENGTH` characters) and, when its prompts are to be
    sent again (`resend`), prompts it can send (not blank, at most `MAX_PROMPT_LENGTH`
    characters each).

    Raises InputError when the file is missing or not a backup (one whose session id is not
    one, see `is_session_id`, included), naming the file; and for each name or prompt that
    cannot be restored, naming the file and the message.
    """
    document = read_json_file(path, what="backup")
    problems = [p.message for p in validate(document, "backup")]
    if not problems and isinstance(document, dict):
        conversation = document["conversation"]
        if is_session_id(conversation["session_id"]):
            backup = Backup(project_id=document["project_id"],
                            session_id=conversation["session_id"], name=conversation["name"],
                            prompts=tuple(m["user_query"] for m in document["messages"]))
            unusable = _unrestorable(backup, resend=resend)
            if unusable:
                raise InputError(Problem(f"backup {path}: {p}; nothing was restored")
                                 for p in unusable)
            return backup
        problems = ["conversation.session_id is not a session id"]
    raise InputError(Problem(f"{path}: not a reconciler backup file: {p}") for p in problems)


def _unrestorable(backup: Backup, *, resend: bool) -> list[str]:
    """What of `backup` restore could not write: its name, and (`resend`) its prompts."""
    problems = []
    if not normal_form(backup.name):
        problems.append("the conversation's name is empty or blank")
    elif len(backup.name) > MAX_NAME_LENGTH:
        problems.append(f"the conversation's name is {len(backup.name)} characters long; "
                        f"a name has at most {MAX_NAME_LENGTH}")
    if not resend:
        return problems
    for position, prompt in enumerate(backup.prompts, start=1):
        if not normal_form(prompt):
            problems.append(f"message {position} has an empty prompt, which cannot be sent "
                            "again (restore without --resend-prompts brings back the "
                            "conversation alone)")
        elif len(prompt) > MAX_PROMPT_LENGTH:
            problems.append(f"message {position} has a prompt of {len(prompt)} characters; "
                            f"restore sends at most {MAX_PROMPT_LENGTH}")
    return problems


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
