"""What the end-to-end tests of saved plans, guards, backups and restore set up: a declared
state that prunes, a plan saved and applied, a plan edited as a person would edit it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reconciler.jsonio import canonical
from tests.workspace import PROJECT, Workspace

PLAN_KEY = "plan-key-RECOGNISABLE-0123456789"


def prune_all(ws: Workspace, *, extra: str = "") -> None:
    """Declare no conversation in PROJECT, pruning every one in scope (it owns them all):
    deleting every owned conversation needs --allow-mass-delete."""
    ws.declare(f"""
        version: 1
        projects:
          - id: {PROJECT}
            prune: true
            owns: ["*"]
            conversations: []
            {extra}
    """)


def declare_conversations(ws: Workspace, conversations: str) -> None:
    ws.declare(f"version: 1\nprojects: [{{id: {PROJECT}, conversations: {conversations}}}]\n")


def saved_plan(ws: Workspace, *flags: str) -> Path:
    saved = ws.path / "plan.json"
    result = ws.plan("--out", str(saved), *flags)
    assert result.code == 0, result.out + result.err
    return saved


def apply_refused_as_stale(ws: Workspace, saved: Path, *flags: str) -> str:
    result = ws.run("apply", "--plan", str(saved), "--auto-approve", *flags)
    assert result.code == 1
    assert "the saved plan is stale; nothing was applied" in result.err
    return result.err


def applies(ws: Workspace, saved: Path) -> None:
    result = ws.run("apply", "--plan", str(saved), "--auto-approve")
    assert result.code == 0, result.out + result.err


def seed_prune(ws: Workspace, *, keep: int, strays: int, extra: str = "") -> None:
    kept = [f"keep {i}" for i in range(keep)]
    for name in kept:
        ws.seed(name)
    for i in range(strays):
        ws.seed(f"stray {i}")
    ws.declare(f"""
        version: 1
        projects:
          - id: {PROJECT}
            prune: true
            owns: ["*"]
            {extra}
            conversations: {json.dumps([{"name": n} for n in kept])}
    """)


def rewrite_plan(saved: Path, edit: Callable[[dict[str, Any]], object]) -> None:
    """A deliberate edit of a saved plan: `edit` changes its document, the checksum is
    computed again (an unsigned plan has nothing else to stop it)."""
    document = json.loads(saved.read_text())
    edit(document)
    body = {k: v for k, v in document.items() if k not in ("checksum", "signature")}
    document["checksum"] = "sha256:" + hashlib.sha256(canonical(body)).hexdigest()
    saved.write_text(json.dumps(document))


def deleted_with_backup(ws: Workspace, *prompts: str) -> tuple[str, Path]:
    """A conversation 'Demo thread' with `prompts`, deleted by apply: its session and backup."""
    session = ws.seed("Demo thread")
    for prompt in prompts:
        ws.emulator.add_message(PROJECT, session, prompt)
    prune_all(ws)
    assert ws.apply("--allow-mass-delete").code == 0 and ws.names() == []
    (backup,) = (ws.path / "backups").rglob(f"{session}.json")
    return session, backup
