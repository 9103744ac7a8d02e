"""The request budget: plan and apply at a real-service rate limit, with
and without a concurrent production client; a huge prune-off project; chaos at a rate limit.

Everything runs through the `reconciler` command line in its own process, against
`reconciler emulator --rate-limit-per-minute N` in another. The real window is 60 s; with
`window` shorter, the emulator scales time (N requests per `window` seconds, advertised in
`RateLimit-Policy`), so that a benchmark of minutes takes seconds; figures are reported with
the window they were measured at.

The minimum number of requests a plan + apply needs (what `requests <= 1.2 x minimum` is
measured against) is counted as follows, for `reconciler plan -f` then `reconciler apply -f`
(which plans afresh, so every read is needed twice):

- per command: 1 for the key's user; for a prune-on project every page of its listing (of the
  key's own conversations: the emulator serves `userFilter=me`), at the page size the
  emulator answers (10, or 100 where it honours `per_page`); for a prune-off project the
  cheaper of every page and page 1 plus one lookup per declared or `renamed_from` name (plus
  the listing's last page when it creates, to know the newest id); one transcript page per
  conversation whose decision needs it (declares messages, or will be deleted); 1 for the
  project's settings when it creates a conversation that sends (the retention note); 1 for
  the query credits when it sends;
- apply only: 1 per rename, create and send, and 2 per delete (the transcript backed up and
  checked, then the DELETE).

Not counted, though `reconciler` makes them: reading a conversation's newest message before
sending to it (an ideal client could reuse the transcript it read while planning); the one
lookup per command that finds out whether the name filter matches substrings; and one lookup
per created name after the creates, to catch another apply creating it at the same time.

Each run is made against an emulator that ignores `per_page` (its own 10 a page) or honours it
(`--per-page honoured`, up to 100): the listings' share of the requests is what changes.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from reconciler.emulator import Emulator
from tests.benchmarks.emulator_process import API_KEY, RunningEmulator, emulator_process
from tests.reliability.invariants import violations
from tests.reliability.scenario import ProjectExpectation, Scenario

PAGE = 10
HONOURED_PAGE = 100  # the page a service honouring `per_page` serves the client (it asks 100)
PER_PAGE = {"ignored": PAGE, "honoured": HONOURED_PAGE}
SHARE = 0.5  # the default --rate-share
FIRST = 8001


@dataclass(frozen=True)
class BudgetProject:
    """One project of the realistic setup."""

    project_id: int
    prune: bool
    live_mine: int  # the key's user's conversations (in scope)
    live_team: int  # teammates' (in the listing, out of scope "mine")
    kept: int  # declared, already live
    kept_with_sends: int  # of those, how many get one new prompt each
    renames: int
    creates: int
    creates_with_sends: int
    deletes: int  # undeclared in scope (prune on only)

    @property
    def declared(self) -> int:
        return self.kept + self.renames + self.creates

    @property
    def sends(self) -> int:
        return self.kept_with_sends + self.creates_with_sends

    def pages(self, page: int) -> int:
        """The pages of the listing of the key's own conversations, `page` a page."""
        return max(1, math.ceil(self.live_mine / page))

    def reads(self, page: int) -> int:
        """The fewest requests one plan needs for this project (see the module)."""
        if self.prune:
            listing = self.pages(page)
        else:
            lookups = 1 + self.declared + self.renames + (1 if self.creates else 0)
            listing = min(self.pages(page), lookups)
        settings = 1 if self.creates_with_sends else 0
        return listing + self.kept_with_sends + self.deletes + settings

    def writes(self) -> int:
        return self.renames + self.creates + self.sends + 2 * self.deletes


# 3 projects, 600 live, 40 declared, 10 sends, 5 deletes, prune on in one.
SETUP = (
    BudgetProject(FIRST, prune=True, live_mine=20, live_team=180, kept=14, kept_with_sends=2,
                  renames=1, creates=0, creates_with_sends=0, deletes=5),
    BudgetProject(FIRST + 1, prune=False, live_mine=200, live_team=0, kept=10,
                  kept_with_sends=2, renames=1, creates=2, creates_with_sends=2, deletes=0),
    BudgetProject(FIRST + 2, prune=False, live_mine=200, live_team=0, kept=10,
                  kept_with_sends=2, renames=0, creates=2, creates_with_sends=2, deletes=0),
)


def minimum_requests(projects: tuple[BudgetProject, ...], *, page: int = PAGE) -> int:
    """The fewest requests `plan -f` then `apply -f` of `projects` need, listings answering
    `page` conversations a page (see the module)."""
    sends = sum(p.sends for p in projects)
    one_plan = 1 + sum(p.reads(page) for p in projects) + (1 if sends else 0)
    return 2 * one_plan + sum(p.writes() for p in projects)


def seed_setup(db: Path, projects: tuple[BudgetProject, ...]) -> Path:
    """Seed `projects` into the database `db`; return the desired-state file beside it."""
    lines = ["version: 1", "projects:"]
    with Emulator(db=str(db), api_key=API_KEY) as emulator:
        for p in projects:
            emulator.ensure_project(p.project_id, f"budget-{p.project_id}")
            names = [f"Conversation {p.project_id}-{i:04d}" for i in range(p.live_mine)]
            rows = emulator.add_conversations(p.project_id, names)
            emulator.add_conversations(
                p.project_id, (f"Team {i:04d}" for i in range(p.live_team)), creator="teammate")
            lines += [f"  - id: {p.project_id}", f"    prune: {str(p.prune).lower()}",
                      '    owns: ["*"]', "    conversations:"]
            for i in range(p.kept):
                lines.append(f"      - name: {names[i]}")
                if i < p.kept_with_sends:
                    emulator.add_message(p.project_id, rows[i]["session_id"], "earlier prompt")
                    lines.append("        messages: [earlier prompt, a new prompt]")
            for i in range(p.renames):
                lines += [f"      - name: Renamed {p.project_id}-{i}",
                          f"        renamed_from: ['{names[p.kept + i]}']"]
            for i in range(p.creates):
                lines.append(f"      - name: Created {p.project_id}-{i}")
                if i < p.creates_with_sends:
                    lines.append("        messages: [hello]")
            if p.prune:  # keep exactly `deletes` undeclared conversations of ours
                extra = names[p.kept + p.renames + p.deletes:]
                lines += [f"      - name: {name}" for name in extra]
    desired = db.with_suffix(".yaml")
    desired.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return desired


@dataclass
class Production:
    """Another client of the key, sending evenly at `per_minute` (in the scaled window)."""

    emulator: RunningEmulator
    per_window: float
    window: float
    sent: int = 0
    refused: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        interval = self.window / self.per_window
        headers = {"Authorization": f"Bearer {API_KEY}"}
        with httpx.Client(base_url=self.emulator.base_url, headers=headers, timeout=30) as http:
            next_at = time.monotonic()
            while not self._stop.is_set():
                self.sent += 1
                if http.get("/api/v1/user").status_code == 429:
                    self.refused += 1
                next_at += interval
                self._stop.wait(max(0.0, next_at - time.monotonic()))


@dataclass(frozen=True)
class BudgetRun:
    """Plan then apply of the setup at one limit."""

    limit: int
    window: float
    requests: int
    refused: int
    wall: float
    minimum: int
    plan_requests: int
    production_sent: int = 0
    production_refused: int = 0
    converged: bool = False
    per_page: str = "ignored"  # how the emulator took `per_page`: ignored or honoured

    @property
    def allowed_per_second(self) -> float:
        return SHARE * self.limit / self.window

    @property
    def ideal(self) -> float:
        """Requests made ÷ the allowed rate (the share of the limit the run may take)."""
        return self.requests / self.allowed_per_second

    @property
    def real_minutes(self) -> float:
        """The wall time this run takes at the real 60 s window."""
        return self.wall * (60.0 / self.window) / 60.0


def cli(emulator: RunningEmulator, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CUSTOMGPT_API_KEY": API_KEY, "CUSTOMGPT_BASE_URL": emulator.base_url}
    return subprocess.run([sys.executable, "-m", "reconciler", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, check=False)


def _requests_made(plan_text: str) -> int:
    """The requests a plan says it made (its `Budget:` line)."""
    for line in plan_text.splitlines():
        if line.startswith("Budget: "):
            return int(line.split()[1])
    return -1


def stats(emulator: RunningEmulator) -> dict[str, Any]:
    data: dict[str, Any] = httpx.get(emulator.base_url + "/_emulator/stats").json()["data"]
    return data


def counted(emulator: RunningEmulator) -> tuple[int, int]:
    """Requests counted against the budget and refused, all keys together."""
    per_key = stats(emulator)["rate_limit"].values()
    return sum(k["counted"] for k in per_key), sum(k["refused"] for k in per_key)


def run_setup(
    directory: Path, *, limit: int, window: float, latency_ms: float,
    production_share: float = 0.0, per_page: str = "ignored",
) -> BudgetRun:
    """Seed the setup afresh, then time `plan -f` and `apply -f` at `limit` per `window`,
    against an emulator that takes `per_page` as `per_page` says (ignored, honoured)."""
    db = directory / f"budget-{limit}-{window:g}-{production_share:g}-{per_page}.db"
    desired = seed_setup(db, SETUP)
    extra = ["--rate-limit-per-minute", str(limit), "--rate-limit-window", f"{window:g}",
             "--enable-admin", "--per-page", per_page]
    with emulator_process(db, latency_ms=latency_ms, page_size=PAGE, extra=extra) as emulator:
        production = None
        if production_share:
            production = Production(emulator, per_window=production_share * limit,
                                    window=window)
            production.start()
            time.sleep(window / 4)  # production was there before the run
        before, refused_before = counted(emulator)
        sent_before = production.sent if production else 0
        started = time.monotonic()
        planned = cli(emulator, "plan", "-f", str(desired), cwd=directory)
        applied = cli(emulator, "apply", "-f", str(desired), "--auto-approve", "--no-backup",
                      cwd=directory)
        wall = time.monotonic() - started
        after, refused_after = counted(emulator)
        production_sent = (production.sent - sent_before) if production else 0
        if production:
            production.stop()
        check = cli(emulator, "plan", "-f", str(desired), "--detailed-exitcode", cwd=directory)
    if planned.returncode or applied.returncode:
        raise RuntimeError(f"plan/apply failed:\n{planned.stderr}\n{applied.stdout}"
                           f"\n{applied.stderr}")
    ours = after - before - production_sent + (refused_after - refused_before)
    return BudgetRun(limit=limit, window=window, requests=ours,
                     refused=refused_after - refused_before - (production.refused
                                                               if production else 0),
                     wall=wall, minimum=minimum_requests(SETUP, page=PER_PAGE[per_page]),
                     plan_requests=_requests_made(planned.stdout),
                     production_sent=production_sent,
                     production_refused=production.refused if production else 0,
                     converged=check.returncode == 0, per_page=per_page)


@dataclass(frozen=True)
class HugeRun:
    live: int
    declared: int
    requests: int
    refused: int
    plan_ok: bool
    per_page: str = "ignored"


def huge_prune_off(directory: Path, *, limit: int, window: float, live: int = 100_000,
                   declared: int = 20, per_page: str = "ignored") -> HugeRun:
    """Plan a prune-off project of `live` conversations (10 per page, or 100 where the
    emulator honours `per_page`) declaring `declared`."""
    db = directory / f"huge-{per_page}.db"
    project = FIRST + 10
    with Emulator(db=str(db), api_key=API_KEY) as emulator:
        emulator.ensure_project(project, "huge")
        emulator.add_conversations(project, (f"Conversation {i:06d}" for i in range(live)))
    names = [f"Conversation {i * (live // declared):06d}" for i in range(declared - 2)]
    desired = directory / "huge.yaml"
    desired.write_text(
        f"version: 1\nprojects:\n  - id: {project}\n    conversations:\n"
        + "".join(f"      - name: {n}\n" for n in names)
        + "      - name: Brand new\n      - name: Renamed one\n"
          "        renamed_from: ['Conversation 000001']\n", encoding="utf-8")
    extra = ["--rate-limit-per-minute", str(limit), "--rate-limit-window", f"{window:g}",
             "--enable-admin", "--per-page", per_page]
    with emulator_process(db, latency_ms=20, page_size=PAGE, extra=extra) as emulator:
        before, refused_before = counted(emulator)
        planned = cli(emulator, "plan", "-f", str(desired), "--format", "json", cwd=directory)
        after, refused_after = counted(emulator)
    ok = planned.returncode == 0 and json.loads(planned.stdout)["summary"]["create"] == 1
    return HugeRun(live, declared, after - before + refused_after - refused_before,
                   refused_after - refused_before, ok, per_page)


# -- chaos with a rate limit -------------------------------------------------------------------


@dataclass(frozen=True)
class ChaosApply:
    """One `apply` of the chaos run: its wall time, the requests the emulator served during it
    and how many it refused with 429, its exit code, how its operations ended (the report's
    summary), why those that failed failed, and what `-v` said of lost sends."""

    wall: float
    requests: int
    rate_limited: int
    code: int
    outcomes: dict[str, int]
    failures: list[str]
    watches: list[str]

    def line(self) -> str:
        """The apply in one line for people."""
        ended = ", ".join(f"{count} {outcome}" for outcome, count in self.outcomes.items()
                          if count)
        return (f"{self.wall:.0f} s, {self.requests} requests ({self.rate_limited} answered "
                f"429), exit {self.code}, {ended or 'no report'}; {len(self.watches)} lost "
                "send(s) watched for")


@dataclass(frozen=True)
class ChaosRun:
    applies: int
    converged: bool
    broken: list[str]
    requests: int
    rate_limited: int
    faults: dict[str, int]
    wall: float
    runs: list[ChaosApply] = field(default_factory=list)


def seed_chaos(db: Path, directory: Path) -> Scenario:
    """45 declared conversations (20 kept, 10 renamed, 15 created), 70 prompts to send, 5 to
    delete, and conversations that must survive (visitors', teammates', protected, ignored)."""
    project = FIRST + 20
    expect = ProjectExpectation(project)
    lines = ["version: 1", "projects:", f"  - id: {project}", "    prune: true",
             '    owns: ["*"]', '    ignore: ["tmp-*"]', '    protect: ["Legal *"]',
             "    conversations:"]
    with Emulator(db=str(db), api_key=API_KEY) as emulator:
        emulator.ensure_project(project, "chaos")

        def add(name: str, creator: str = "me") -> str:
            return str(emulator.add_conversation(project, name, creator=creator)["session_id"])

        for i in range(20):
            session = add(f"Kept {i}")
            emulator.add_message(project, session, f"first {i}")
            prompts = [f"first {i}", f"second {i}", f"third {i}"]
            expect.declared[f"Kept {i}"], expect.kept[session] = prompts, f"Kept {i}"
            expect.survivors[session] = "kept"
            lines += [f"      - name: Kept {i}", f"        messages: {json.dumps(prompts)}"]
        for i in range(10):
            session = add(f"Old name {i}")
            expect.declared[f"New name {i}"] = [f"renamed {i}"]
            expect.renamed[session], expect.survivors[session] = f"New name {i}", "renamed"
            lines += [f"      - name: New name {i}", f"        renamed_from: ['Old name {i}']",
                      f"        messages: ['renamed {i}']"]
        for i in range(15):
            prompts = [f"hello {i}", f"again {i}"] if i < 10 else []
            expect.declared[f"Created {i}"] = prompts
            lines.append(f"      - name: Created {i}")
            if prompts:
                lines.append(f"        messages: {json.dumps(prompts)}")
        for i in range(5):
            session = add(f"Stray {i}")
            emulator.add_message(project, session, f"stray {i}")
            expect.doomed.add(session)
        for creator in ("visitor", "teammate"):
            expect.survivors[add(f"{creator} {project}", creator)] = creator
        expect.survivors[add("Legal hold")] = "protected"
        expect.survivors[add("tmp-scratch")] = "ignored"
    desired = directory / "chaos.yaml"
    desired.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Scenario(desired=desired, projects=[expect], operations=10 + 15 + 70 + 5)


def chaos_with_rate_limit(directory: Path, *, max_applies: int = 3, seed: int = 13) -> ChaosRun:
    """Apply the chaos scenario against 30 % 5xx, 20 % commit-then-fail, 10 % dropped
    connections and a 5-per-second token bucket, until the plan is empty."""
    db = directory / "chaos.db"
    scenario = seed_chaos(db, directory)
    extra = ["--error-rate", "0.3", "--commit-then-fail-rate", "0.2", "--drop-rate", "0.1",
             "--rate-limit", "5", "--seed", str(seed), "--enable-admin"]
    applies, broken, converged = 0, [], False
    runs: list[ChaosApply] = []
    backups = [directory / f"chaos-backups-{n}" for n in range(1, max_applies + 1)]
    started = time.monotonic()
    with emulator_process(db, latency_ms=20, page_size=PAGE, extra=extra) as emulator:
        for backup in backups:
            if _plan_code(emulator, scenario, directory) == 0:
                converged = True
                break
            applies += 1
            runs.append(_chaos_apply(emulator, scenario, backup, directory, applies))
            print(f"chaos apply {applies}: {runs[-1].line()}", flush=True)
            for text in runs[-1].failures:
                print(f"  failed: {text}", flush=True)
            with Emulator(db=str(db), api_key=API_KEY) as reader:
                broken += violations(reader, scenario, backups, final=False)
        if not converged:
            converged = _plan_code(emulator, scenario, directory) == 0
        served = stats(emulator)
    with Emulator(db=str(db), api_key=API_KEY) as reader:
        broken += violations(reader, scenario, backups, final=converged)
    faults = served["faults"]
    return ChaosRun(applies=applies, converged=converged, broken=broken,
                    requests=sum(served["requests"].values()),
                    rate_limited=faults.get("rate_limited", 0), faults=faults,
                    wall=time.monotonic() - started, runs=runs)


def _plan_code(emulator: RunningEmulator, scenario: Scenario, directory: Path) -> int:
    """The exit code of `plan --detailed-exitcode` (0: no changes, 2: changes), asked again up
    to twice when the plan failed (1: a read gave up under the faults), so that a failed plan
    does not count as an apply."""
    for _ in range(3):
        check = cli(emulator, "plan", "-f", str(scenario.desired), "--detailed-exitcode",
                    cwd=directory)
        if check.returncode != 1:
            break
        print("chaos: a plan failed; planning again", flush=True)
    return check.returncode


def _chaos_apply(emulator: RunningEmulator, scenario: Scenario, backup: Path, directory: Path,
                 number: int) -> ChaosApply:
    """One `apply` of the chaos scenario with the default flags (and `-v`, whose lines about
    lost sends are kept), timed."""
    report = directory / f"chaos-report-{number}.json"
    before = stats(emulator)
    started = time.monotonic()
    done = cli(emulator, "-v", "apply", "-f", str(scenario.desired), "--auto-approve",
               "--backup-dir", str(backup), "--allow-mass-delete", "--report", str(report),
               cwd=directory)
    wall = time.monotonic() - started
    after = stats(emulator)
    requests = sum(after["requests"].values()) - sum(before["requests"].values())
    refused = (after["faults"].get("rate_limited", 0)
               - before["faults"].get("rate_limited", 0))
    outcomes: dict[str, int] = {}
    failures: list[str] = []
    if report.exists():
        data = json.loads(report.read_text(encoding="utf-8"))
        outcomes = dict(data["summary"])
        failures = [f"{o['action']} {o.get('name', '')!r}: {o['detail']}"
                    for o in data["operations"] if o["outcome"] == "failed"]
    elif done.returncode:  # it stopped before applying (its plan failed)
        failures = [line for line in done.stderr.splitlines() if line.startswith("error")][-3:]
    watches = [line for line in done.stderr.splitlines() if "; watching its transcript" in line]
    return ChaosApply(wall=wall, requests=requests, rate_limited=refused, code=done.returncode,
                      outcomes=outcomes, failures=failures, watches=watches)
