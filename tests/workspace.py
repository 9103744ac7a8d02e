"""A desired-state file in a temporary directory and the CLI run in-process against the
emulator: what the end-to-end tests drive (the `ws` fixture in conftest gives one); and a
project lock held as another run would hold it."""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from reconciler.cli.main import main
from reconciler.emulator import Emulator

PROJECT = 1001
OTHER = 1002


@dataclass
class Run:
    """How one CLI run ended: exit code, stdout, stderr."""

    code: int
    out: str
    err: str


class Workspace:
    """A temporary directory with a desired-state file and a CLI pointed at the emulator."""

    def __init__(self, path: Path, env: dict[str, str], emulator: Emulator) -> None:
        self.path, self.env, self.emulator = path, env, emulator
        self.file = path / "conversations.yaml"

    def declare(self, yaml_text: str) -> None:
        self.file.write_text(textwrap.dedent(yaml_text), encoding="utf-8")

    def declare_pruned(self, conversations: str = "[]", *, owns: str = '["*"]') -> None:
        """Declare project PROJECT with `conversations` (flow-style YAML), pruning what it
        `owns` (every conversation in scope unless told) and letting a plan delete any share
        of them but all (`max_delete_fraction: 1`)."""
        self.file.write_text(f"version: 1\nprojects:\n  - id: {PROJECT}\n    prune: true\n"
                             f"    owns: {owns}\n    max_delete_fraction: 1\n"
                             f"    conversations: {conversations}\n", encoding="utf-8")

    def run(self, *args: str, stdin: io.StringIO | None = None) -> Run:
        """Run the CLI in the workspace's directory (where `.reconciler/` is kept)."""
        out, err = io.StringIO(), io.StringIO()
        with contextlib.chdir(self.path):
            code = main(list(args), env=self.env, stdout=out, stderr=err,
                        stdin=stdin or io.StringIO())
        assert "Traceback" not in err.getvalue()
        return Run(code, out.getvalue(), err.getvalue())

    def plan(self, *extra: str) -> Run:
        return self.run("plan", "-f", str(self.file), *extra)

    def apply(self, *extra: str) -> Run:
        backups = str(self.path / "backups")
        return self.run("apply", "-f", str(self.file), "--auto-approve",
                        "--backup-dir", backups, *extra)

    def names(self, project: int = PROJECT) -> list[str]:
        return sorted(c["name"] for c in self.emulator.conversations(project))

    def seed(self, name: str, *, creator: str = "me", project: int = PROJECT) -> str:
        return str(self.emulator.add_conversation(project, name, creator=creator)["session_id"])


@contextlib.contextmanager
def content_workspace(path: Path, files: dict[str, str], *,
                      api_key: str) -> Iterator[Workspace]:
    """A workspace under `path` against an emulator (taking `api_key`) answering from `files`
    (name -> text) of project PROJECT's content folder (`--content`), so that its answers
    cite them."""
    content = path / "content"
    (content / str(PROJECT)).mkdir(parents=True)
    for name, text in files.items():
        (content / str(PROJECT) / name).write_text(text, encoding="utf-8")
    with Emulator(api_key=api_key, enable_admin=True, content=content) as emulator:
        emulator.start()
        emulator.ensure_project(PROJECT, "demo")
        env = {"CUSTOMGPT_API_KEY": emulator.api_key, "CUSTOMGPT_BASE_URL": emulator.base_url}
        ws = Workspace(path / "work", env, emulator)
        ws.path.mkdir()
        yield ws


@contextlib.contextmanager
def held_by_another(path: Path, holder: bytes) -> Iterator[None]:
    """The lock held through another open file, as another process would hold it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.write(fd, holder)
        yield
    finally:
        os.close(fd)
