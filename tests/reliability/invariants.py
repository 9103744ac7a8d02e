"""The promises an apply keeps however it ends, checked on the emulator's
own state: no duplicate, no unintended delete, no prompt sent twice, a backup for every delete,
and, once converged, live state equal to the desired state."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from reconciler.emulator import Emulator
from reconciler.emulator.store import ME
from tests.reliability.scenario import PRODUCTION, ProjectExpectation, Scenario


def violations(
    emulator: Emulator, scenario: Scenario, backup_dirs: Iterable[Path], *, final: bool
) -> list[str]:
    """Every broken promise, in words (empty when all hold). With `final`, also compare the
    live state with the desired state exactly."""
    dirs = list(backup_dirs)
    found: list[str] = []
    for expect in scenario.projects:
        live = emulator.conversations(expect.project_id)
        found += _project_violations(emulator, expect, live, dirs)
        if final:
            found += _final_violations(emulator, expect, live)
    return found


def ours(live: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversations created by the API key's own user."""
    return [c for c in live if c["created_by"] == ME]


def _project_violations(
    emulator: Emulator, expect: ProjectExpectation, live: list[dict[str, Any]], dirs: list[Path]
) -> list[str]:
    pid = expect.project_id
    by_session = {c["session_id"]: c for c in live}
    found = [f"project {pid}: {count} conversations named {name!r}"
             for name, count in Counter(c["name"] for c in ours(live)).items() if count > 1]
    for session, why in expect.survivors.items():
        if session not in by_session:
            found.append(f"project {pid}: {why} conversation {session} was deleted")
    for session, name in expect.kept.items():
        if session in by_session and by_session[session]["name"] != name:
            found.append(f"project {pid}: kept {session} renamed to {by_session[session]['name']}")
    for conv in ours(live):
        prompts = Counter(m["user_query"] for m in emulator.messages(pid, conv["session_id"]))
        found += [f"project {pid}: {prompt!r} sent {n} times to {conv['name']!r}"
                  for prompt, n in prompts.items() if n > 1]
        if not _accounted(expect, conv):
            found.append(f"project {pid}: unexpected conversation {conv['name']!r}")
    for session in expect.doomed - set(by_session):
        if not any(_backed_up(d / str(pid) / f"{session}.json", session) for d in dirs):
            found.append(f"project {pid}: {session} was deleted without a backup")
    return found


def _accounted(expect: ProjectExpectation, conv: dict[str, Any]) -> bool:
    session = conv["session_id"]
    return (session in expect.survivors or session in expect.doomed
            or conv["name"] in expect.declared)


def _backed_up(path: Path, session: str) -> bool:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(document["conversation"]["session_id"] == session and document["messages"])


def _final_violations(
    emulator: Emulator, expect: ProjectExpectation, live: list[dict[str, Any]]
) -> list[str]:
    pid = expect.project_id
    managed = [c for c in ours(live)
               if not c["name"].startswith(("Legal ", "tmp-", PRODUCTION))]
    found: list[str] = []
    names = sorted(c["name"] for c in managed)
    if names != sorted(expect.declared):
        missing = sorted(set(expect.declared) - set(names))
        extra = sorted(set(names) - set(expect.declared))
        found.append(f"project {pid}: missing {missing[:5]}, extra {extra[:5]}")
    by_session = {c["session_id"]: c for c in live}
    for session, new in expect.renamed.items():
        if session in by_session and by_session[session]["name"] != new:
            found.append(f"project {pid}: {session} not renamed to {new!r}")
    for conv in managed:
        prompts = [m["user_query"] for m in emulator.messages(pid, conv["session_id"])]
        wanted = expect.declared.get(conv["name"])
        if wanted is not None and prompts != wanted:
            found.append(f"project {pid}: {conv['name']!r} has prompts {prompts}, not {wanted}")
    still = expect.doomed & set(by_session)
    if still:
        found.append(f"project {pid}: {len(still)} undeclared conversations not deleted")
    return found
