"""The emulator's data: projects, conversations and messages in one SQLite database.

One connection guarded by a lock serves every request thread. Rows come back as plain dicts
in the API's wire shape (see `reconciler.emulator.wire`), so the server only wraps them.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

ME = "1"
TEAMMATE = "2"
CREATORS: dict[str, str | None] = {"me": ME, "teammate": TEAMMATE, "visitor": None}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS projects (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS conversations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL UNIQUE,
    project_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    created_by TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS conversations_by_project ON conversations (project_id, id);
CREATE INDEX IF NOT EXISTS conversations_by_created ON conversations (project_id, created_at, id);
CREATE INDEX IF NOT EXISTS conversations_by_name ON conversations (project_id, name);
CREATE INDEX IF NOT EXISTS conversations_by_creator
    ON conversations (project_id, (created_by IS NULL), id);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    user_query TEXT NOT NULL,
    openai_response TEXT NOT NULL,
    citations TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages (conversation_id, id);
CREATE INDEX IF NOT EXISTS conversations_by_user ON conversations (project_id, created_by, id);
CREATE TABLE IF NOT EXISTS feedback (
    message_id INTEGER PRIMARY KEY,
    reaction TEXT,
    user_id INTEGER,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS send_options (
    message_id INTEGER PRIMARY KEY,
    options TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS project_settings (
    project_id INTEGER PRIMARY KEY,
    retention_period TEXT NOT NULL,
    retention_days INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS no_answer_messages (
    project_id INTEGER PRIMARY KEY,
    message TEXT NOT NULL
);
"""

_CONVERSATION_COLUMNS = "id, session_id, project_id, name, created_by, created_at, updated_at"
_MESSAGE_COLUMNS = ("id, user_id, user_query, openai_response, created_at, updated_at, "
                    "conversation_id, citations, metadata")
# A message with its feedback, if any (`response_feedback`): `m` is the message.
_MESSAGE_SELECT = ("SELECT " + ", ".join(f"m.{c.strip()}" for c in _MESSAGE_COLUMNS.split(","))
                   + ", f.message_id AS feedback_for, f.reaction AS feedback_reaction, "
                   "f.user_id AS feedback_user, f.created_at AS feedback_created, "
                   "f.updated_at AS feedback_updated "
                   "FROM messages m LEFT JOIN feedback f ON f.message_id = m.id")
_USER_FILTERS = {"all": "", "anonymous": " AND (created_by IS NULL) = 1",
                 "team_member": " AND (created_by IS NULL) = 0",
                 "me": " AND created_by = ?",
                 "team_member_but_owner": f" AND (created_by IS NULL) = 0 AND created_by != '{ME}'"}
# How the `name` filter matches: the condition and its parameters.
_NAME_MATCHES: dict[str, tuple[str, Callable[[str], list[Any]]]] = {
    "exact": (" AND name = ?", lambda name: [name]),
    "prefix": (" AND substr(name, 1, ?) = ?", lambda name: [len(name), name]),
    "contains": (" AND instr(name, ?) > 0", lambda name: [name]),
    "contains-ci": (" AND name LIKE ? ESCAPE '\\'", lambda name: ["%" + _escape_like(name) + "%"]),
}
_COUNT_CACHE_SIZE = 1024


def now() -> str:
    """The current UTC time in the API's format, e.g. "2023-04-30 16:43:53"."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def iso_now() -> str:
    """The current UTC time as the API writes a feedback's: "2024-08-27T21:07:20.000000Z"."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000000Z")


@dataclass(frozen=True)
class Listing:
    """A page of rows and the total number of rows matching the query."""

    rows: list[dict[str, Any]]
    total: int


@dataclass(frozen=True)
class ConversationQuery:
    """What `list_conversations` selects and in which order."""

    project_id: int
    order: str = "desc"  # asc | desc
    order_by: str = "id"  # id | created_at
    user_filter: str = "all"  # all | anonymous | team_member | team_member_but_owner | me
    user: str = ME  # whose conversations `me` selects: the key's user
    name: str | None = None
    name_match: str = "contains-ci"  # exact | prefix | contains | contains-ci


class Store:
    """Thread-safe access to the emulator's SQLite database (`:memory:` or a file path)."""

    def __init__(self, path: str = ":memory:") -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        if path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._generation = 0  # bumped by every write; counts cached for one generation
        self._counts: dict[tuple[str, tuple[Any, ...]], tuple[tuple[int, int], int]] = {}

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            self._generation += 1

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def reset(self) -> None:
        """Delete every project, conversation and message, and what belongs to them."""
        with self._transaction() as db:
            for table in ("feedback", "send_options", "project_settings", "no_answer_messages"):
                db.execute(f"DELETE FROM {table}")
            db.execute("DELETE FROM messages")
            db.execute("DELETE FROM conversations")
            db.execute("DELETE FROM projects")

    # Projects ---------------------------------------------------------------------------------

    def ensure_project(self, project_id: int, name: str) -> dict[str, Any]:
        """Create the project if it does not exist; return its row."""
        stamp = now()
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO projects VALUES (?, ?, ?, ?)",
                       (project_id, name, stamp, stamp))
            row = db.execute("SELECT * FROM projects WHERE id = ?", (project_id,)).fetchone()
        return dict(row)

    def create_project(self, name: str) -> dict[str, Any]:
        """Create a project with the next free id."""
        stamp = now()
        with self._transaction() as db:
            cursor = db.execute("INSERT INTO projects (name, created_at, updated_at) "
                                "VALUES (?, ?, ?)", (name, stamp, stamp))
            row = db.execute("SELECT * FROM projects WHERE id = ?", (cursor.lastrowid,)).fetchone()
        return dict(row)

    def get_project(self, project_id: int) -> dict[str, Any] | None:
        """The project's row, or None."""
        with self._lock:
            row = self._db.execute("SELECT * FROM projects WHERE id = ?", (project_id,)).fetchone()
        return None if row is None else dict(row)

    def list_projects(self, *, order: str, limit: int, offset: int) -> Listing:
        """A page of projects by id."""
        direction = "ASC" if order == "asc" else "DESC"
        with self._lock:
            total = self._db.execute("SELECT COUNT(*) FROM projects").fetchone()[0]
            rows = self._db.execute(f"SELECT * FROM projects ORDER BY id {direction} "
                                    "LIMIT ? OFFSET ?", (limit, offset)).fetchall()
        return Listing([dict(row) for row in rows], total)

    # Conversations ----------------------------------------------------------------------------

    def add_conversations(
        self, project_id: int, names: Iterable[str], *, created_by: str | None
    ) -> list[dict[str, Any]]:
        """Create conversations in one transaction; return them in creation order."""
        stamp = now()
        rows = [(str(uuid.uuid4()), project_id, name, created_by, stamp, stamp) for name in names]
        with self._transaction() as db:
            first = db.execute("SELECT COALESCE(MAX(id), 0) FROM conversations").fetchone()[0]
            db.executemany("INSERT INTO conversations (session_id, project_id, name, created_by, "
                           "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)", rows)
            found = db.execute(f"SELECT {_CONVERSATION_COLUMNS} FROM conversations "
                               "WHERE id > ? AND project_id = ? ORDER BY id",
                               (first, project_id)).fetchall()
        return [dict(row) for row in found]

    def create_conversation(
        self, project_id: int, name: str, *, created_by: str | None
    ) -> dict[str, Any]:
        """Create one conversation and return its row."""
        stamp = now()
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO conversations (session_id, project_id, name, created_by, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                (str(uuid.uuid4()), project_id, name, created_by, stamp, stamp))
            row = db.execute(f"SELECT {_CONVERSATION_COLUMNS} FROM conversations WHERE id = ?",
                             (cursor.lastrowid,)).fetchone()
        return dict(row)

    def get_conversation(self, project_id: int, session_id: str) -> dict[str, Any] | None:
        """The conversation's row, or None if it is not in that project."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {_CONVERSATION_COLUMNS} FROM conversations "
                "WHERE session_id = ? AND project_id = ?", (session_id, project_id)).fetchone()
        return None if row is None else dict(row)

    def list_conversations(self, query: ConversationQuery, *, limit: int, offset: int) -> Listing:
        """A page of a project's conversations (efficient for 100k rows: indexed, LIMIT/OFFSET)."""
        where = "project_id = ?" + _USER_FILTERS[query.user_filter]
        params: list[Any] = [query.project_id]
        if query.user_filter == "me":
            params.append(query.user)
        if query.name is not None:
            condition, name_params = _NAME_MATCHES[query.name_match]
            where += condition
            params += name_params(query.name)
        direction = "ASC" if query.order == "asc" else "DESC"
        order = f"id {direction}" if query.order_by == "id" else (
            f"created_at {direction}, id {direction}")
        with self._lock:
            total = self._count(where, tuple(params))
            # Skipping rows in the (covering) index first keeps deep pages cheap.
            rows = self._db.execute(
                f"SELECT {_CONVERSATION_COLUMNS} FROM conversations WHERE id IN ("
                f"SELECT id FROM conversations WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?) "
                f"ORDER BY {order}", [*params, limit, offset]).fetchall()
        return Listing([dict(row) for row in rows], total)

    def _count(self, where: str, params: tuple[Any, ...]) -> int:
        """COUNT(*) of conversations, cached until the next write (caller holds the lock)."""
        # data_version changes when another process commits to the same database file.
        version = (self._generation, self._db.execute("PRAGMA data_version").fetchone()[0])
        cached = self._counts.get((where, params))
        if cached is not None and cached[0] == version:
            return cached[1]
        total: int = self._db.execute(
            f"SELECT COUNT(*) FROM conversations WHERE {where}", params).fetchone()[0]
        if len(self._counts) >= _COUNT_CACHE_SIZE:
            self._counts.clear()
        self._counts[(where, params)] = (version, total)
        return total

    def rename_conversation(
        self, project_id: int, session_id: str, name: str
    ) -> dict[str, Any] | None:
        """Rename a conversation; None if it does not exist."""
        with self._transaction() as db:
            db.execute("UPDATE conversations SET name = ?, updated_at = ? "
                       "WHERE session_id = ? AND project_id = ?",
                       (name, now(), session_id, project_id))
            row = db.execute(f"SELECT {_CONVERSATION_COLUMNS} FROM conversations "
                             "WHERE session_id = ? AND project_id = ?",
                             (session_id, project_id)).fetchone()
        return None if row is None else dict(row)

    def delete_conversation(self, project_id: int, session_id: str) -> bool:
        """Delete a conversation and all its messages; False if it did not exist."""
        with self._transaction() as db:
            row = db.execute("SELECT id FROM conversations WHERE session_id = ? AND project_id = ?",
                             (session_id, project_id)).fetchone()
            if row is None:
                return False
            _delete_conversations(db, "id = ?", (row["id"],))
        return True

    def expire(self, project_id: int, before: str) -> int:
        """Delete for good the project's conversations created before `before` (the API's
        time format), with their messages; return how many there were. Cheap when there are
        none (one indexed look-up, no write)."""
        condition, params = "project_id = ? AND created_at < ?", (project_id, before)
        with self._lock:
            found = self._db.execute(f"SELECT 1 FROM conversations WHERE {condition} LIMIT 1",
                                     params).fetchone()
        if found is None:
            return 0
        with self._transaction() as db:
            return _delete_conversations(db, condition, params)

    def age_conversation(
        self, project_id: int, session_id: str, days: int
    ) -> dict[str, Any] | None:
        """Move a conversation's created_at and updated_at back by `days`; None if it does not
        exist."""
        shift = f"-{int(days)} days"
        with self._transaction() as db:
            db.execute("UPDATE conversations SET created_at = datetime(created_at, ?), "
                       "updated_at = datetime(updated_at, ?) "
                       "WHERE session_id = ? AND project_id = ?",
                       (shift, shift, session_id, project_id))
            row = db.execute(f"SELECT {_CONVERSATION_COLUMNS} FROM conversations "
                             "WHERE session_id = ? AND project_id = ?",
                             (session_id, project_id)).fetchone()
        return None if row is None else dict(row)

    # Project settings -------------------------------------------------------------------------

    def retention(self, project_id: int) -> tuple[str, int] | None:
        """The project's conversation retention (period, days), None when never set."""
        with self._lock:
            row = self._db.execute("SELECT retention_period, retention_days FROM "
                                   "project_settings WHERE project_id = ?",
                                   (project_id,)).fetchone()
        return None if row is None else (row[0], row[1])

    def set_retention(self, project_id: int, period: str, days: int) -> None:
        """Set the project's conversation retention."""
        with self._transaction() as db:
            db.execute("INSERT INTO project_settings VALUES (?, ?, ?) ON CONFLICT(project_id) "
                       "DO UPDATE SET retention_period = excluded.retention_period, "
                       "retention_days = excluded.retention_days", (project_id, period, days))

    def no_answer_message(self, project_id: int) -> str | None:
        """The project's "I don't know" message, None when never set."""
        with self._lock:
            row = self._db.execute("SELECT message FROM no_answer_messages WHERE project_id = ?",
                                   (project_id,)).fetchone()
        return None if row is None else str(row[0])

    def set_no_answer_message(self, project_id: int, message: str | None) -> None:
        """Set the project's "I don't know" message (None: back to the default)."""
        with self._transaction() as db:
            db.execute("DELETE FROM no_answer_messages WHERE project_id = ?", (project_id,))
            if message is not None:
                db.execute("INSERT INTO no_answer_messages VALUES (?, ?)", (project_id, message))

    def count_projects(self) -> int:
        """How many projects there are."""
        with self._lock:
            count: int = self._db.execute("SELECT COUNT(*) FROM projects").fetchone()[0]
        return count

    # Messages ---------------------------------------------------------------------------------

    def add_message(
        self, conversation_id: int, *, user_id: int, prompt: str, answer: str,
        metadata: dict[str, Any], options: dict[str, Any] | None = None,
        citations: Iterable[int] = (),
    ) -> dict[str, Any]:
        """Store one exchange with the ids of the documents its answer cites (and the
        `options` its send carried, which the API does not show) and touch the conversation's
        updated_at; return the message row."""
        stamp = now()
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO messages (conversation_id, user_id, user_query, openai_response, "
                "citations, metadata, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (conversation_id, user_id, prompt, answer, json.dumps(list(citations)),
                 json.dumps(metadata), stamp, stamp))
            if options:
                db.execute("INSERT INTO send_options VALUES (?, ?)",
                           (cursor.lastrowid, json.dumps(options)))
            db.execute("UPDATE conversations SET updated_at = ? WHERE id = ?",
                       (stamp, conversation_id))
            row = db.execute(f"{_MESSAGE_SELECT} WHERE m.id = ?", (cursor.lastrowid,)).fetchone()
        return _message(row)

    def get_message(self, conversation_id: int, message_id: int) -> dict[str, Any] | None:
        """A message of the conversation, or None."""
        with self._lock:
            row = self._db.execute(f"{_MESSAGE_SELECT} WHERE m.id = ? AND m.conversation_id = ?",
                                   (message_id, conversation_id)).fetchone()
        return None if row is None else _message(row)

    def set_feedback(
        self, conversation_id: int, message_id: int, *, reaction: str | None, user_id: int | None
    ) -> dict[str, Any] | None:
        """Record (or replace) the reaction to a message (None clears it); return the message,
        or None if the conversation has no such message."""
        stamp = iso_now()
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM messages WHERE id = ? AND conversation_id = ?",
                          (message_id, conversation_id)).fetchone() is None:
                return None
            db.execute("INSERT INTO feedback VALUES (?, ?, ?, ?, ?) ON CONFLICT(message_id) "
                       "DO UPDATE SET reaction = excluded.reaction, user_id = excluded.user_id, "
                       "updated_at = excluded.updated_at",
                       (message_id, reaction, user_id, stamp, stamp))
            row = db.execute(f"{_MESSAGE_SELECT} WHERE m.id = ?", (message_id,)).fetchone()
        return _message(row)

    def send_options(self, conversation_id: int) -> dict[int, dict[str, Any]]:
        """What each send to the conversation carried beyond its prompt, by message id."""
        with self._lock:
            rows = self._db.execute(
                "SELECT o.message_id, o.options FROM send_options o JOIN messages m "
                "ON m.id = o.message_id WHERE m.conversation_id = ?",
                (conversation_id,)).fetchall()
        return {row[0]: json.loads(row[1]) for row in rows}

    def find_prompt(self, project_id: int, prompt: str) -> dict[str, Any] | None:
        """The first message of the project with exactly this prompt, or None."""
        with self._lock:
            row = self._db.execute(
                f"{_MESSAGE_SELECT} JOIN conversations c ON m.conversation_id = c.id "
                "WHERE c.project_id = ? AND m.user_query = ? ORDER BY m.id LIMIT 1",
                (project_id, prompt)).fetchone()
        return None if row is None else _message(row)

    def list_messages(
        self, conversation_id: int, *, order: str, limit: int, offset: int
    ) -> Listing:
        """A page of a conversation's messages by id."""
        direction = "ASC" if order == "asc" else "DESC"
        with self._lock:
            total = self._db.execute("SELECT COUNT(*) FROM messages WHERE conversation_id = ?",
                                     (conversation_id,)).fetchone()[0]
            rows = self._db.execute(
                f"{_MESSAGE_SELECT} WHERE m.conversation_id = ? "
                f"ORDER BY m.id {direction} LIMIT ? OFFSET ?",
                (conversation_id, limit, offset)).fetchall()
        return Listing([_message(row) for row in rows], total)


def _delete_conversations(db: sqlite3.Connection, condition: str, params: tuple[Any, ...]) -> int:
    """Delete the conversations matching `condition`, their messages and what belongs to them
    (inside a transaction); return how many conversations there were."""
    ids = [row[0] for row in db.execute(f"SELECT id FROM conversations WHERE {condition}",
                                        params).fetchall()]
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ", ".join("?" * len(chunk))
        messages = f"SELECT id FROM messages WHERE conversation_id IN ({marks})"
        db.execute(f"DELETE FROM feedback WHERE message_id IN ({messages})", chunk)
        db.execute(f"DELETE FROM send_options WHERE message_id IN ({messages})", chunk)
        db.execute(f"DELETE FROM messages WHERE conversation_id IN ({marks})", chunk)
        db.execute(f"DELETE FROM conversations WHERE id IN ({marks})", chunk)
    return len(ids)


def _message(row: sqlite3.Row) -> dict[str, Any]:
    """A message row in the documented shape, its feedback (or None) as `response_feedback`."""
    message = dict(row)
    feedback = {key: message.pop(f"feedback_{key}") for key in (
        "for", "created", "updated", "user", "reaction")}
    message["citations"] = json.loads(message["citations"])
    message["metadata"] = json.loads(message["metadata"])
    message["response_feedback"] = None if feedback["for"] is None else {
        "created_at": feedback["created"], "updated_at": feedback["updated"],
        "user_id": feedback["user"], "reaction": feedback["reaction"]}
    return message


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
