"""Answer checks, on demand: `reconciler test` (50 prompts with expectations asked in
throwaway conversations, an emulator at 120 requests a minute whose model takes 2 s an answer,
default flags) and `reconciler check` on 1,000 stored answers (the transcripts it reads, and
the CPU time of judging them).

    .venv/bin/python -m tests.benchmarks.answers           # 120 a minute: about 3 minutes
    .venv/bin/python -m tests.benchmarks.answers --scaled  # the budget's window scaled to 6 s

`test`'s target: wall ≤ 1.2 x max(requests ÷ the allowed rate (half the limit, the default
--rate-share), 2 s x ceil(50 ÷ parallelism)), no refusal, no throwaway left. `check`'s: only
the transcripts of the conversations with `expect:` are read, and judging the answers takes
under a second of CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from reconciler.api.client import Client
from reconciler.api.protocol import ConversationApi
from reconciler.api.settings import ClientSettings, Secret
from reconciler.desired.loader import load_desired
from reconciler.emulator import Emulator
from reconciler.plan.answers import check_answers
from reconciler.plan.health import Answer, evaluate
from tests.benchmarks.budget import SHARE, cli, counted
from tests.benchmarks.emulator_process import API_KEY, emulator_process

PROJECT = 3003
PROMPTS = 50
LIMIT = 120
SEND_DELAY_MS = 2000
PARALLELISM = 8  # the default
EXPECT = ("{contains: ['emulated answer'], not_contains: ['refund'], "
          "matches: '\\(\\d+ words\\)', max_chars: 400, "
          "similar_to: {text: 'Emulated answer to the question', min: 0.2}}")


@dataclass(frozen=True)
class TestBench:
    """One `reconciler test` run: wall time, requests and refusals, the bound, and what was
    left."""

    wall: float
    requests: int
    refused: int
    bound: float
    left: int
    code: int


def measure_test(directory: Path, *, window: float) -> TestBench:
    """`reconciler test` of `PROMPTS` conversations of one prompt with expectations, default
    flags, against an emulator at `LIMIT` requests per `window` whose answers take
    `SEND_DELAY_MS`."""
    db = directory / "answers-test.db"
    with Emulator(db=str(db), api_key=API_KEY) as emulator:
        emulator.ensure_project(PROJECT, "answers")
    desired = directory / "answers.yaml"
    desired.write_text(f"version: 1\nprojects:\n  - id: {PROJECT}\n    conversations:\n" + "".join(
        f"      - name: QA {i:03}\n        messages:\n"
        f"          - prompt: Question number {i} about the service?\n"
        f"            expect: {EXPECT}\n" for i in range(PROMPTS)), encoding="utf-8")
    extra = ["--rate-limit-per-minute", str(LIMIT), "--rate-limit-window", f"{window:g}",
             "--enable-admin", "--send-delay-ms", str(SEND_DELAY_MS)]
    with emulator_process(db, latency_ms=20, extra=extra) as running:
        before, refused_before = counted(running)
        started = time.monotonic()
        done = cli(running, "test", "-f", str(desired), cwd=directory)
        wall = time.monotonic() - started
        after, refused_after = counted(running)
    with Emulator(db=str(db), api_key=API_KEY) as emulator:
        left = len(emulator.conversations(PROJECT))
    if done.returncode not in (0, 3):
        raise RuntimeError(f"test failed:\n{done.stdout}\n{done.stderr}")
    requests = after - before + (refused_after - refused_before)
    allowed = SHARE * LIMIT / window
    bound = max(requests / allowed, SEND_DELAY_MS / 1000 * math.ceil(PROMPTS / PARALLELISM))
    return TestBench(wall, requests, refused_after - refused_before, bound, left,
                   done.returncode)


class _Counting:
    """A `ConversationApi` that counts the transcripts read through it."""

    def __init__(self, api: ConversationApi) -> None:
        self.api = api
        self.transcripts = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.api, name)

    async def get_transcript(self, project_id: int, session_id: str) -> object:
        self.transcripts += 1
        return await self.api.get_transcript(project_id, session_id)


@dataclass(frozen=True)
class CheckRun:
    stored: int
    live: int
    transcripts: int
    check_cpu: float
    evaluation_cpu: float


def measure_check(directory: Path, *, stored: int = 1000) -> CheckRun:
    """`check` of `stored` declared conversations with an answer and `expect:`, beside as many
    declared without `expect:` and as many undeclared: the transcripts it reads, its CPU
    time, and the CPU time of judging the answers alone."""
    db = directory / "answers-check.db"
    desired = directory / "check.yaml"
    with Emulator(db=str(db), api_key=API_KEY) as emulator:
        emulator.ensure_project(PROJECT, "answers")
        checked = emulator.add_conversations(PROJECT, (f"QA {i:04}" for i in range(stored)))
        for i, conversation in enumerate(checked):
            emulator.add_message(PROJECT, conversation["session_id"],
                                 f"Question number {i} about the service?")
        plain = emulator.add_conversations(PROJECT, (f"Plain {i:04}" for i in range(stored)))
        for i, conversation in enumerate(plain):
            emulator.add_message(PROJECT, conversation["session_id"], f"Hello {i}")
        emulator.add_conversations(PROJECT, (f"Other {i:04}" for i in range(stored)))
    desired.write_text(f"version: 1\nprojects:\n  - id: {PROJECT}\n    conversations:\n" + "".join(
        f"      - name: QA {i:04}\n        messages:\n"
        f"          - prompt: Question number {i} about the service?\n"
        f"            expect: {EXPECT}\n" for i in range(stored)) + "".join(
        f"      - name: Plain {i:04}\n        messages: ['Hello {i}']\n"
        for i in range(stored)), encoding="utf-8")
    state = load_desired([str(desired)], env={})
    with emulator_process(db, latency_ms=0, page_size=100) as running:
        settings = ClientSettings(api_key=Secret(API_KEY), base_url=running.base_url)

        async def go() -> tuple[int, list[object], float]:
            async with Client(settings) as client:
                counting = _Counting(client)
                began = time.process_time()
                health = await check_answers(counting, state)  # type: ignore[arg-type]
                return counting.transcripts, list(health), time.process_time() - began

        transcripts, health, check_cpu = asyncio.run(go())
    spec = state.projects[0]
    expectations = [m.expect for c in spec.conversations for m in c.messages if m.expect]
    answers = [Answer(message.answer or "") for project in health
               for message in project.messages]  # type: ignore[attr-defined]
    began = time.process_time()
    for expect, answer in zip(expectations, answers, strict=True):
        evaluate(expect, answer)
    evaluation_cpu = time.process_time() - began
    return CheckRun(stored, 3 * stored, transcripts, check_cpu, evaluation_cpu)


def report(*, scaled: bool = False) -> str:
    """Both benchmarks run once, a line each with its ratio and whether it meets its target;
    `scaled`: the budget's window 6 s instead of 60."""
    window = 6.0 if scaled else 60.0
    with tempfile.TemporaryDirectory(prefix="reconciler-answers-") as name:
        directory = Path(name)
        run = measure_test(directory, window=window)
        ratio = run.wall / run.bound
        met = ratio <= 1.2 and run.refused == 0 and run.left == 0
        lines = [f"test: {PROMPTS} prompts, {LIMIT} requests per {window:g} s window, model "
                 f"{SEND_DELAY_MS / 1000:g} s, default flags: wall {run.wall:.1f} s, "
                 f"{run.requests} requests, {run.refused} refused, {run.left} throwaway(s) "
                 f"left, exit {run.code}; bound {run.bound:.1f} s; ratio {ratio:.2f} (target "
                 f"≤ 1.2): {'met' if met else 'NOT met'}"]
        checked = measure_check(directory)
    met = checked.evaluation_cpu < 1 and checked.transcripts == checked.stored
    lines.append(f"check: {checked.stored:,} stored answers checked among {checked.live:,} "
                 f"live conversations: {checked.transcripts:,} transcripts read; CPU "
                 f"{checked.check_cpu:.2f} s in all, of which judging "
                 f"{checked.evaluation_cpu:.3f} s (target < 1 s): {'met' if met else 'NOT met'}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.answers",
                                     description=__doc__)
    parser.add_argument("--scaled", action="store_true",
                        help="the emulator's budget window scaled to 6 s (120 requests a "
                             "window), the model's 2 s unchanged: a quick run")
    print(report(scaled=parser.parse_args().scaled))

if __name__ == "__main__":
    main()
