"""The sandbox: the emulator in-process on a free loopback port, backed by a file that persists.

`--sandbox` on plan/apply/export uses it so that a new user can try the whole workflow with no
account and no network; what they apply is still there on the next run. When `.reconciler/content/`
is a directory, answers come from the documents of its `<project id>/` folders (as the emulator's
`--content`), otherwise they are canned.

`check` and `apply` on the sandbox save the answer checks they judged as
`.reconciler/health.json` (the JSON of `check --format json`, `save_health`); the sandbox's
pages read it and show each conversation's health and the checks beside each message.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from reconciler.apply.outputs import STATE_DIR, make_state_directory, write_output
from reconciler.cli.console import Console
from reconciler.desired.model import MAX_ID
from reconciler.emulator import DEFAULT_API_KEY, Emulator, EmulatorError
from reconciler.errors import os_reason
from reconciler.jsonio import pretty
from reconciler.plan.health import ProjectHealth
from reconciler.render.health import as_dict

SANDBOX_DB = "sandbox.db"
SANDBOX_CONTENT = "content"
SANDBOX_HEALTH = "health.json"


class SandboxHandle:
    """A running sandbox: where it serves (`base_url`), the key it accepts (`api_key`).

    Use it as a context manager, or call `close()`.
    """

    def __init__(self, emulator: Emulator, db_path: Path, health_path: Path) -> None:
        self.emulator = emulator
        self.db_path = db_path
        self.health_path = health_path
        self.base_url = emulator.base_url
        self.api_key = emulator.api_key

    def __repr__(self) -> str:
        return f"SandboxHandle(base_url={self.base_url!r}, db_path={str(self.db_path)!r})"

    def close(self) -> None:
        """Stop the emulator and close its database. Safe to call twice."""
        self.emulator.stop()

    def __enter__(self) -> SandboxHandle:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def start_sandbox(
    project_ids: Iterable[int], *, root: Path = Path(".reconciler")
) -> SandboxHandle:
    """Start the emulator on 127.0.0.1 (free port) backed by `root/sandbox.db`, answering from
    `root/content/` if it is a directory.

    Creates `root` if needed (with its `.gitignore`, see `apply/outputs.py`) and every project
    in `project_ids` that does not exist yet (named "sandbox-project-<id>"). Raises
    EmulatorError (a ReconcilerError) if the directory or the database cannot be used.
    """
    ids = [_project_id(value) for value in project_ids]
    try:
        make_state_directory(root)
    except OSError as problem:
        raise EmulatorError(f"cannot create the sandbox directory {root}: "
                            f"{problem.strerror}") from None
    db_path = root / SANDBOX_DB
    content = root / SANDBOX_CONTENT
    emulator = Emulator(db=str(db_path), api_key=DEFAULT_API_KEY,
                        content=content if content.is_dir() else None,
                        health=root / SANDBOX_HEALTH)
    try:
        for project_id in ids:
            emulator.ensure_project(project_id, f"sandbox-project-{project_id}")
        emulator.start("127.0.0.1", 0)
    except BaseException:
        emulator.stop()
        raise
    return SandboxHandle(emulator, db_path, root / SANDBOX_HEALTH)


def save_health(document: dict[str, Any], *, root: Path = STATE_DIR) -> Path:
    """Write the answer checks `document` (schemas/health.schema.json) as the sandbox's last
    health, `root/health.json`, atomically and never through a symbolic link; return where.
    Raises OSError."""
    make_state_directory(root)
    path = root / SANDBOX_HEALTH
    write_output(path, pretty(document).encode("utf-8"))
    return path


def save_sandbox_health(console: Console, projects: list[ProjectHealth], *,
                        root: Path = STATE_DIR) -> None:
    """Keep `projects` as the sandbox's last health, for its pages (said when there are answer
    checks; with none, the file only replaces an older one); a file that cannot be written is a
    warning (the checks were judged, and shown or reported elsewhere)."""
    try:
        path = save_health(as_dict(projects), root=root)
    except OSError as error:
        console.error(f"warning: cannot write {root / SANDBOX_HEALTH} ({os_reason(error)}): "
                      "the sandbox's pages do not show these answer checks")
        return
    if any(project.messages for project in projects):  # else it only clears an older one
        console.info(f"Sandbox: answer checks kept in {path} for its pages.")


def _project_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise EmulatorError(f"sandbox project ids must be from 1 to {MAX_ID}")
    return value
