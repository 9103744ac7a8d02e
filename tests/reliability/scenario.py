"""A seeded fleet of projects: live conversations of every kind, and the YAML that declares
what should become of them (renames, creates, deletes, sends, and much that must survive)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.emulator import Emulator

FIRST_PROJECT = 7001
PRODUCTION = "Customer chat"  # what the key's other clients create, as the key's own user


@dataclass
class ProjectExpectation:
    """What one project must look like: declared names and prompts, and who must survive."""

    project_id: int
    declared: dict[str, list[str]] = field(default_factory=dict)  # name -> prompts, in order
    survivors: dict[str, str] = field(default_factory=dict)  # session id -> why it must stay
    renamed: dict[str, str] = field(default_factory=dict)  # session id -> declared new name
    kept: dict[str, str] = field(default_factory=dict)  # session id -> declared name
    doomed: set[str] = field(default_factory=set)  # session ids the plan deletes


@dataclass
class Scenario:
    """Every project of the fleet, the desired-state file, and how many operations it plans."""

    desired: Path
    projects: list[ProjectExpectation]
    operations: int


def build_scenario(
    emulator: Emulator, directory: Path, *, projects: int, units: int, seed: int,
    first_project: int = FIRST_PROJECT, padded: bool = False,
) -> Scenario:
    """Seed `projects` projects in `emulator` and write their desired state to `directory`.

    Each project plans about `4 * units` operations: `units` renames, creates, deletes and
    sends. Survivors that the plan must never touch: kept and renamed conversations,
    visitors', teammates', protected ("Legal *"), ignored ("tmp-*") ones, and the key's
    production conversations (the key's own user, in scope, not owned). With `padded`,
    the file declares every name and prompt with surrounding whitespace (as a YAML `|` block
    ends with a newline), which a service may or may not store.
    """
    rng = random.Random(seed)
    expectations = [
        _seed_project(emulator, first_project + index, units=units, rng=rng)
        for index in range(projects)
    ]
    directory.mkdir(parents=True, exist_ok=True)
    desired = directory / "conversations.yaml"
    desired.write_text(_yaml(expectations, padded=padded), encoding="utf-8")
    return Scenario(desired=desired, projects=expectations, operations=4 * units * projects)


def _seed_project(
    emulator: Emulator, project_id: int, *, units: int, rng: random.Random
) -> ProjectExpectation:
    emulator.ensure_project(project_id, f"fleet-{project_id}")
    expect = ProjectExpectation(project_id)
    keep_count = max(1, units // 2)
    tag = rng.randrange(10_000)
    for i in range(keep_count):
        name = f"Kept {tag}-{i}"
        session = _add(emulator, project_id, name)
        emulator.add_message(project_id, session, f"already sent to {name}")
        expect.declared[name] = [f"already sent to {name}", f"follow-up for {name}"]
        expect.kept[session] = name
        expect.survivors[session] = "kept"
    for i in range(units):
        old, new = f"Old name {tag}-{i}", f"New name {tag}-{i}"
        session = _add(emulator, project_id, old)
        expect.declared[new] = []
        expect.renamed[session] = new
        expect.survivors[session] = "renamed"
    new_with_prompt = units - keep_count
    for i in range(units):
        name = f"Created {tag}-{i}"
        expect.declared[name] = [f"hello {name}"] if i < new_with_prompt else []
    for i in range(units):
        session = _add(emulator, project_id, f"Stray {tag}-{i}")
        emulator.add_message(project_id, session, f"stray message {i}")
        expect.doomed.add(session)
    for creator, label in (("visitor", "Visitor"), ("teammate", "Teammate")):
        for i in range(2):
            session = _add(emulator, project_id, f"{label} {tag}-{i}", creator=creator)
            expect.survivors[session] = creator
    expect.survivors[_add(emulator, project_id, f"Legal hold {tag}")] = "protected"
    for i in range(2):
        expect.survivors[_add(emulator, project_id, f"{PRODUCTION} {tag}-{i}")] = "not owned"
    expect.survivors[_add(emulator, project_id, f"tmp-{tag}")] = "ignored"
    return expect


def _add(emulator: Emulator, project_id: int, name: str, *, creator: str = "me") -> str:
    return str(emulator.add_conversation(project_id, name, creator=creator)["session_id"])


def _yaml(expectations: list[ProjectExpectation], *, padded: bool) -> str:
    pad = (lambda text: f" {text}\n") if padded else (lambda text: text)
    lines = ["version: 1", "projects:"]
    for expect in expectations:
        lines += [f"  - id: {expect.project_id}", "    scope: mine", "    prune: true",
                  '    owns: ["Stray *", "Legal *"]', '    ignore: ["tmp-*"]',
                  '    protect: ["Legal *"]', "    conversations:"]
        old_names = {new: old for old, new in _old_names(expect)}
        for name, prompts in expect.declared.items():
            lines.append(f"      - name: {_quote(pad(name))}")
            if name in old_names:
                lines.append(f"        renamed_from: [{_quote(pad(old_names[name]))}]")
            if prompts:
                lines.append("        messages:")
                lines += [f"          - {_quote(pad(p))}" for p in prompts]
    return "\n".join(lines) + "\n"


def _old_names(expect: ProjectExpectation) -> list[tuple[str, str]]:
    return [(new.replace("New name", "Old name", 1), new) for new in expect.renamed.values()]


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '"' + escaped + '"'
