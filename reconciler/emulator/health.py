"""The answer checks the pages show beside conversations (`reconciler emulator --health FILE`).

The emulator knows nothing of desired state: `reconciler check` (and `apply`) on the sandbox
judge the answers and save the result, the JSON of `check --format json`, as
`.reconciler/health.json`; the sandbox's emulator, or `reconciler emulator --health FILE`,
reads that file for its pages. It ties checks to what it stores by session id and message id,
never by name, so a file from another database shows nothing wrong, only nothing.

The file is a document from outside, read again whenever it changes (its size or time, or it
changed in the last `FRESH_SECONDS`), and
checked before anything of it is shown: a regular file of at most `MAX_BYTES`, JSON, and every
field the pages use of the type the schema says. One that is not is named on the pages with
why, and no check of it is shown. Values are shown as text (the pages escape them).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.errors import InputError
from reconciler.jsonio import read_json_file

MAX_BYTES = 64 * 1024 * 1024
STATUSES = ("passed", "failed", "not checked")
FRESH_SECONDS = 2.0


@dataclass(frozen=True)
class Check:
    """One expectation judged: its key, the value expected, its status and why."""

    key: str
    expected: str
    status: str
    reason: str


@dataclass(frozen=True)
class MessageHealth:
    """A declared message's checks (None: its prompt was not sent yet), where its answer
    is: the message id (None: not sent)."""

    prompt: str
    message_id: int | None
    checks: tuple[Check, ...] | None


@dataclass(frozen=True)
class Health:
    """What the file says, by conversation (project id, session id); when it was written
    (UTC); or why it cannot be shown (`problem`)."""

    source: str
    written: str = ""
    conversations: dict[tuple[int, str], tuple[MessageHealth, ...]] = field(default_factory=dict)
    problem: str | None = None

    def of(self, project_id: int, session_id: str) -> tuple[MessageHealth, ...]:
        """The checks of one conversation (empty: none)."""
        return self.conversations.get((project_id, session_id), ())


class HealthSource:
    """The health file, read when it changed since the last look."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._seen: tuple[int, int] | None = None
        self._health: Health | None = None

    def read(self) -> Health | None:
        """The file's checks (None: there is no file)."""
        try:
            status = os.stat(self.path)
        except FileNotFoundError:
            return None
        except OSError as error:
            return Health(str(self.path), problem=(error.strerror or "cannot be read").lower())
        stamp = (status.st_mtime_ns, status.st_size)
        # A clock tick may hide an edit of the same size: a file this new is read again.
        recent = time.time() - status.st_mtime < FRESH_SECONDS
        with self._lock:
            if self._seen != stamp or self._health is None or recent:
                written = datetime.fromtimestamp(status.st_mtime, UTC).strftime(
                    "%Y-%m-%d %H:%M:%S")
                self._health = _read(self.path, written)
                self._seen = stamp
            return self._health


def _read(path: Path, written: str) -> Health:
    try:
        document = read_json_file(path, what="health", limit=MAX_BYTES)
        conversations = _conversations(document)
    except InputError as error:
        reason = "; ".join(problem.message for problem in error.problems)
        return Health(str(path), written, problem=reason)
    except _Invalid as error:
        return Health(str(path), written, problem=f"not answer checks: {error}")
    return Health(str(path), written, conversations)


class _Invalid(ValueError):
    """A field that is not what the health schema says."""


def _conversations(document: Any) -> dict[tuple[int, str], tuple[MessageHealth, ...]]:
    if not isinstance(document, dict) or document.get("version") != 1:
        raise _Invalid("not a document of version 1")
    found: dict[tuple[int, str], list[MessageHealth]] = {}
    for p, project in enumerate(_list(document, "projects", "document")):
        where = f"projects[{p}]"
        project_id = _integer(project, "project_id", where, nullable=False)
        for m, message in enumerate(_list(project, "messages", where)):
            at = f"{where}.messages[{m}]"
            session_id = _string(message, "session_id", at, nullable=True)
            message_id = _integer(message, "message_id", at, nullable=True)
            prompt = _string(message, "prompt", at, nullable=False)
            sent = message.get("sent") if isinstance(message, dict) else None
            if not isinstance(sent, bool):
                raise _Invalid(f"{at}.sent is not true or false")
            checks = tuple(_check(check, f"{at}.checks[{c}]")
                           for c, check in enumerate(_list(message, "checks", at)))
            if session_id is not None and project_id is not None:
                found.setdefault((project_id, session_id), []).append(
                    MessageHealth(prompt or "", message_id, checks if sent else None))
    return {key: tuple(messages) for key, messages in found.items()}


def _check(value: Any, where: str) -> Check:
    key, expected, status, reason = (_string(value, name, where, nullable=False) or ""
                                     for name in ("key", "expected", "status", "reason"))
    if status not in STATUSES:
        raise _Invalid(f"{where}.status is not one of {', '.join(STATUSES)}")
    return Check(key, expected, status, reason)


def _list(value: Any, name: str, where: str) -> list[Any]:
    found = value.get(name) if isinstance(value, dict) else None
    if not isinstance(found, list):
        raise _Invalid(f"{where}.{name} is not a list")
    return found


def _string(value: Any, name: str, where: str, *, nullable: bool) -> str | None:
    found = value.get(name) if isinstance(value, dict) else None
    if isinstance(found, str) or (nullable and found is None):
        return found
    raise _Invalid(f"{where}.{name} is not a string" + (" or null" if nullable else ""))


def _integer(value: Any, name: str, where: str, *, nullable: bool) -> int | None:
    found = value.get(name) if isinstance(value, dict) else None
    if (isinstance(found, int) and not isinstance(found, bool) and found >= 1) or (
            nullable and found is None):
        return found
    raise _Invalid(f"{where}.{name} is not a positive whole number"
                   + (" or null" if nullable else ""))
