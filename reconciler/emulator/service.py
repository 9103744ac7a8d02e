"""`Emulator`: the emulated CustomGPT.ai API as a Python object that tests, the sandbox and the
`reconciler emulator` command start, seed, inspect and stop."""

from __future__ import annotations

import math
import os
import socket
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from reconciler.api.settings import is_loopback
from reconciler.emulator import wire
from reconciler.emulator.admin import sent_with
from reconciler.emulator.app import Application
from reconciler.emulator.content import Content, ContentError
from reconciler.emulator.faults import Faults
from reconciler.emulator.health import HealthSource
from reconciler.emulator.retention import Retention, RetentionError
from reconciler.emulator.server import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_READ_TIMEOUT,
    DEFAULT_REQUEST_TIMEOUT,
    STOP_WAIT,
    EmulatorServer,
)
from reconciler.emulator.store import CREATORS, ConversationQuery, Store
from reconciler.emulator.variants import Variants
from reconciler.errors import ReconcilerError

DEFAULT_API_KEY = "sandbox-key"


class EmulatorError(ReconcilerError):
    """The emulator cannot start (bad host, port in use, unreadable database)."""


class Emulator:
    """An emulated CustomGPT.ai API backed by SQLite, served over HTTP in a background thread.

    No peer can hold it: a connection silent for `read_timeout` seconds is closed, so is one
    whose request (headers and body) has not arrived whole `request_timeout` seconds after its
    first byte, and at most `max_connections` are served at once (the others wait their turn).
    Raises EmulatorError for limits that are not positive, or a database it cannot open.

    >>> with Emulator(enable_admin=True) as emu:
    ...     url = emu.start()
    ...     emu.ensure_project(1001, "demo-bot")

    With `content`, a directory whose `<project id>/` folders hold text and markdown files,
    answers come from those files, with citations (see `reconciler.emulator.content`);
    without it, they are canned. With `health`, a file of answer checks (the JSON of
    `reconciler check --format json`), the pages show them (see
    `reconciler.emulator.health`).
    """

    def __init__(
        self,
        *,
        db: str = ":memory:",
        api_key: str = DEFAULT_API_KEY,
        faults: Faults | None = None,
        enable_admin: bool = False,
        page_size: int = 10,
        variants: Variants | None = None,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        member_key: str | None = None,
        content: str | os.PathLike[str] | None = None,
        health: str | os.PathLike[str] | None = None,
    ) -> None:
        """Raises EmulatorError for a setting that cannot be: a page size below 1, a read
        timeout that is not a positive number, an empty key, a member key equal to the API
        key, a content directory that is not one, a database that cannot be opened."""
        if page_size < 1:
            raise EmulatorError(f"page size must be at least 1, not {page_size}")
        for name, seconds in (("read", read_timeout), ("request", request_timeout)):
            if not (math.isfinite(seconds) and seconds > 0):
                raise EmulatorError(f"the {name} timeout must be a positive number of seconds, "
                                    f"not {seconds}")
        if isinstance(max_connections, bool) or not isinstance(max_connections, int) \
                or max_connections < 1:
            raise EmulatorError(f"max_connections must be a whole number, 1 or more, "
                                f"not {max_connections!r}")
        self.read_timeout = read_timeout
        self.request_timeout = request_timeout
        self.max_connections = max_connections
        if not api_key:
            raise EmulatorError("the emulator's API key must not be empty")
        if member_key is not None and (not member_key or member_key == api_key):
            raise EmulatorError("the team member's key must be a key of its own, not empty and "
                                "not the API key")
        try:
            documents = None if content is None else Content(content)
        except ContentError as problem:
            raise EmulatorError(str(problem)) from None
        try:
            self.store = Store(db)
        except Exception as problem:  # sqlite3 errors of many kinds: path, permissions, format
            raise EmulatorError(f"cannot open the emulator database {db}: {problem}") from None
        self.api_key = api_key
        self.application = Application(store=self.store, api_key=api_key,
                                       faults=faults or Faults(), enable_admin=enable_admin,
                                       page_size=page_size, variants=variants,
                                       member_key=member_key, content=documents,
                                       health=None if health is None else HealthSource(health))
        self._server: EmulatorServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    def __repr__(self) -> str:
        return f"Emulator(base_url={self.base_url!r})"

    @property
    def faults(self) -> Faults:
        """The fault settings in force; change its fields at any time."""
        return self.application.injector.faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        self.application.injector.faults = faults
        self.application.injector.reseed()

    @property
    def variants(self) -> Variants:
        """The variants of the real service in force (documented behaviour by default)."""
        return self.application.api.variants

    @variants.setter
    def variants(self, variants: Variants) -> None:
        self.application.api.variants = variants

    def start(self, host: str = "127.0.0.1", port: int = 0, *, allow_remote: bool = False) -> str:
        """Serve in a background thread; return the base URL (e.g. "http://127.0.0.1:50123").

        Raises EmulatorError for a non-loopback host (unless allow_remote) or a busy port.
        """
        if self._server is not None:
            return self.base_url
        if not allow_remote and not is_loopback(host):
            raise EmulatorError(f"refusing to serve on {host}: not a loopback address")
        try:
            self._server = EmulatorServer((host, port), self.application,
                                          read_timeout=self.read_timeout,
                                          request_timeout=self.request_timeout,
                                          max_connections=self.max_connections)
        except (OSError, socket.gaierror) as problem:
            raise EmulatorError(f"cannot listen on {host}:{port}: {problem}") from None
        self.base_url = f"http://{self._server.host_and_port}"
        self.application.listening(port=self._server.server_address[1],
                                   loopback=is_loopback(host))
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="reconciler-emulator", daemon=True)
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        """Stop serving, hang up on open connections and close the database. Safe to call
        twice, and returns within seconds whatever the serving thread is doing."""
        if self._server is not None:
            self._server.shutdown()
            self._server.close_connections()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=STOP_WAIT)
            self._thread = None
        self.store.close()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # Seeding and inspection ---------------------------------------------------------------------

    @property
    def query_credits(self) -> int | None:
        """Query credits left (None: unlimited); each sent message spends one."""
        return self.application.api.query_credits

    @query_credits.setter
    def query_credits(self, credits: int | None) -> None:
        if credits is not None and (isinstance(credits, bool) or not isinstance(credits, int)
                                    or not 0 <= credits <= wire.MAX_ID):
            raise EmulatorError(f"query credits must be a whole number from 0 to {wire.MAX_ID} "
                                f"(or None: unlimited), not {credits!r}")
        self.application.api.query_credits = credits

    def ensure_project(self, project_id: int, name: str | None = None) -> dict[str, Any]:
        """Create the project if missing; return it in the API's shape. Raises EmulatorError
        for an id that is not from 1 to 2^63-1."""
        if isinstance(project_id, bool) or not isinstance(project_id, int) \
                or not 1 <= project_id <= wire.MAX_ID:
            raise EmulatorError(f"project ids must be from 1 to {wire.MAX_ID}")
        row = self.store.ensure_project(project_id, name or f"project-{project_id}")
        return wire.project(row)

    def add_conversation(
        self, project_id: int, name: str, *, creator: str = "me"
    ) -> dict[str, Any]:
        """Create a conversation as "me" (the key's user), "teammate" or "visitor" (anonymous).

        Returns it in the API's shape. Raises EmulatorError for an unknown creator or project.
        """
        return self.add_conversations(project_id, [name], creator=creator)[0]

    def add_conversations(
        self, project_id: int, names: Iterable[str], *, creator: str = "me"
    ) -> list[dict[str, Any]]:
        """Create many conversations in one transaction (100k in a second or two)."""
        if creator not in CREATORS:
            raise EmulatorError(f"creator must be one of {', '.join(CREATORS)}, not {creator!r}")
        if self.store.get_project(project_id) is None:
            raise EmulatorError(f"project {project_id} does not exist in the emulator")
        rows = self.store.add_conversations(project_id, names, created_by=CREATORS[creator])
        return [wire.conversation(row) for row in rows]

    def add_message(self, project_id: int, session_id: str, prompt: str) -> dict[str, Any]:
        """Record a prompt and its answer (canned, or from content) in a conversation; return
        the message."""
        found = self.store.get_conversation(project_id, session_id)
        if found is None:
            raise EmulatorError(f"conversation {session_id} not found in project {project_id}")
        reply = self.application.api.reply(project_id, prompt)
        return self.store.add_message(found["id"], user_id=1, prompt=prompt, answer=reply.text,
                                      metadata={}, citations=reply.citations)

    def sends(self, project_id: int, session_id: str) -> list[dict[str, Any]]:
        """Each message of a conversation, oldest first, with what its send carried beyond the
        prompt (`options`: custom_persona, chatbot_model, response_source, custom_context,
        agent_capability, lang, files), which the API does not show. Empty if it does not
        exist."""
        found = self.store.get_conversation(project_id, session_id)
        return [] if found is None else sent_with(self.store, found["id"])

    def age_conversation(self, project_id: int, session_id: str, days: int) -> dict[str, Any]:
        """Move a conversation's created_at and updated_at back by `days`; return it. Raises
        EmulatorError if it does not exist."""
        row = self.store.age_conversation(project_id, session_id, days)
        if row is None:
            raise EmulatorError(f"conversation {session_id} not found in project {project_id}")
        return wire.conversation(row)

    def set_retention(self, project_id: int, period: str, days: int = 0) -> None:
        """Set a project's conversation retention (`custom` with `days`, `year`, `never`).
        Raises EmulatorError for a setting the API would refuse, or an unknown project."""
        if self.store.get_project(project_id) is None:
            raise EmulatorError(f"project {project_id} does not exist in the emulator")
        try:
            retention = Retention(period, days)
        except RetentionError as problem:
            raise EmulatorError(str(problem)) from None
        self.store.set_retention(project_id, retention.period, retention.days)

    def conversations(self, project_id: int) -> list[dict[str, Any]]:
        """Every conversation of a project, oldest first, in the documented shape (whatever
        the `wire` variant)."""
        listing = self.store.list_conversations(
            ConversationQuery(project_id, order="asc"), limit=-1, offset=0)
        return [wire.conversation(row) for row in listing.rows]

    def messages(self, project_id: int, session_id: str) -> list[dict[str, Any]]:
        """Every message of a conversation, oldest first (empty if it does not exist), in the
        documented shape, `metadata` included."""
        found = self.store.get_conversation(project_id, session_id)
        if found is None:
            return []
        return self.store.list_messages(found["id"], order="asc", limit=-1, offset=0).rows

    def stats(self) -> dict[str, Any]:
        """Requests served by method, faults injected by kind, and the per-minute budget's
        counted and refused requests per key (`key_label` of the key)."""
        return {"requests": dict(self.application.requests),
                "faults": self.application.injector.snapshot(),
                "rate_limit": self.application.throttle.snapshot()}

    def refusals(self) -> int:
        """Requests refused by the per-minute budget so far, all keys together."""
        return sum(self.application.throttle.refusals.values())
