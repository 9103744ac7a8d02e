"""Figure 2: planning CPU and peak memory, with live state built in memory (no network).

Each size runs in a fresh process (`python -m tests.benchmarks.planning LIVE DECLARED PRUNE`)
so that its peak RSS (ru_maxrss) is its own. The scenario is one project of scope `team`: a
tenth of the live conversations are visitors' (out of scope), some are ignored (`tmp *`) or
protected (`keep *`); of the declared ones, 90 % keep a live name, 5 % rename one
(`renamed_from`), 5 % are new, and one in ten declares two messages, one of them already sent.
With prune off, every other in-scope conversation is listed as left alone; with prune on it is
deleted (`allow_mass_delete`): a plan of 7 operations per declared conversation.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from dataclasses import dataclass

from reconciler.api.live import Conversation, Message
from reconciler.desired.model import ConversationSpec, ProjectSpec, Scope
from reconciler.plan.build import build_project_plan
from reconciler.plan.match import match_project
from reconciler.plan.model import Plan
from reconciler.render.formats import render_json, render_text

PROJECT = 4242
USER = "1"


@dataclass(frozen=True)
class PlanningRun:
    """CPU seconds of match + build + render, and the process's peak RSS."""

    live: int
    declared: int
    prune: bool
    operations: int
    cpu: float
    peak_rss_mb: float
    baseline_rss_mb: float


def live_state(count: int) -> list[Conversation]:
    """`count` live conversations as the client would have parsed them."""
    conversations = []
    for i in range(count):
        kind = i % 20
        creator = None if kind in (0, 1) else ("2" if kind == 2 else USER)
        prefix = "tmp" if kind == 3 else ("keep" if kind == 4 else "Conversation")
        stamp = f"2024-{1 + i % 12:02d}-{1 + i % 28:02d} 10:{i % 60:02d}:{i % 59:02d}"
        conversations.append(Conversation(
            id=i + 1, session_id=f"{i:08x}-7e57-4c0e-9a1b-{i * 7919 % 10**12:012d}",
            name=f"{prefix} {i:07d}", project_id=PROJECT, created_by=creator,
            created_at=stamp, updated_at=stamp,
        ))
    return conversations


def desired_project(declared: int, live: list[Conversation], *, prune: bool) -> ProjectSpec:
    """`declared` conversations: kept, renamed and new ones (see the module docstring)."""
    managed = [c for c in live if c.created_by is not None and c.name.startswith("Conv")]
    specs = []
    for i in range(declared):
        messages = ("What changed?", f"Summarise item {i}") if i % 10 == 0 else ()
        if i % 20 == 18:
            spec = ConversationSpec(name=f"New {i:07d}", messages=messages)
        elif i % 20 == 19:
            spec = ConversationSpec(name=f"Renamed {i:07d}",
                                    renamed_from=(managed[i % len(managed)].name,))
        else:
            spec = ConversationSpec(name=managed[i % len(managed)].name, messages=messages)
        specs.append(spec)
    return ProjectSpec(id=PROJECT, label="support-bot", scope=Scope.TEAM, prune=prune,
                       ignore=("tmp-*", "tmp *"), protect=("keep *",),
                       conversations=tuple(specs))


# What the conversations with messages already hold: the first declared prompt.
SENT = (Message(id=1, user_query="What changed?", openai_response="It did.",
                created_at="2024-01-01 00:00:00", reaction_shown=True),)


def plan_once(spec: ProjectSpec, live: list[Conversation]) -> tuple[Plan, str, str]:
    """Match, build, and render as text and JSON: what `reconciler plan` does after reading."""
    matching = match_project(spec, live, user_id=USER)
    sent = {m.live.session_id: SENT for m in matching.matches if m.spec.messages}
    project = build_project_plan(spec, matching, sent)
    plan = Plan(projects=(project,))
    return plan, render_text(plan), render_json(plan)


def _measure(live_count: int, declared: int, prune: bool) -> dict[str, float]:
    live = live_state(live_count)
    spec = desired_project(declared, live, prune=prune)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.process_time()
    plan, text, document = plan_once(spec, live)
    cpu = time.process_time() - started
    assert text and document
    return {"live": live_count, "declared": declared, "prune": prune,
            "operations": len(plan.operations), "cpu": cpu, "baseline_rss_mb": baseline,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def measure_in_subprocess(live: int, declared: int, *, prune: bool) -> PlanningRun:
    """Run one size in a fresh interpreter and read back its figures."""
    command = [sys.executable, "-m", "tests.benchmarks.planning", str(live), str(declared),
               "prune" if prune else "keep"]
    output = subprocess.run(
        command,
        check=True, capture_output=True, text=True,
    ).stdout
    data = json.loads(output)
    return PlanningRun(live=int(data["live"]), declared=int(data["declared"]),
                       prune=bool(data["prune"]),
                       operations=int(data["operations"]), cpu=data["cpu"],
                       peak_rss_mb=data["peak_rss_mb"], baseline_rss_mb=data["baseline_rss_mb"])


if __name__ == "__main__":
    print(json.dumps(_measure(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "prune")))
