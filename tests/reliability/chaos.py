"""Chaos apply: plan and apply a scenario against a faulty emulator until the plan is empty,
checking the invariants after every run, and counting runs, retries and faults."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from reconciler.api.client import Client, ClientSettings, Secret
from reconciler.apply.run import ApplyOptions, ApplyReport, apply_plan
from reconciler.desired.loader import load_desired
from reconciler.emulator import Emulator, Faults
from reconciler.plan.guards import GuardLimits
from reconciler.plan.make import make_plan
from tests.reliability.invariants import violations
from tests.reliability.scenario import Scenario


def chaos_faults(*, seed: int, latency_ms: float = 5.0, jitter_ms: float = 20.0,
                 rate_limit: float = 0.0) -> Faults:
    """The long chaos: 10 % plain 5xx and 10 % of writes committed then failed (half 500,
    half a dropped connection), 5 % dropped connections, jittered latency, and a request rate
    limit answering 429 with Retry-After."""
    return Faults(latency_ms=latency_ms, latency_jitter_ms=jitter_ms, error_rate=0.10,
                  commit_then_fail_rate=0.10, drop_rate=0.05, rate_limit=rate_limit, seed=seed)


class RateLimitingTransport(httpx.AsyncBaseTransport):
    """The network to the emulator, with a seeded share of requests refused with 429 and
    `Retry-After: 1` before they reach it (the emulator's own limiter is a token bucket, which
    refuses bursts rather than a steady share), and a seeded share `lose_sends` of sends whose
    answer is lost: the connection breaks after `lose_after` seconds while the emulator goes
    on answering (a proxy that gives up on a slow model), and stores the message when it has
    answered."""

    def __init__(self, *, rate: float, seed: int, parallelism: int, lose_sends: float = 0.0,
                 lose_after: float = 0.0) -> None:
        self.rate, self.lose_sends, self.lose_after = rate, lose_sends, lose_after
        self.refused = self.lost = 0
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._abandoned: set[asyncio.Future[None]] = set()
        limits = httpx.Limits(max_connections=parallelism,
                              max_keepalive_connections=parallelism)
        self._inner = httpx.AsyncHTTPTransport(limits=limits)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        is_send = request.method == "POST" and request.url.path.endswith("/messages")
        with self._lock:
            refuse = self._random.random() < self.rate
            lose = not refuse and is_send and self._random.random() < self.lose_sends
            self.refused += refuse
            self.lost += lose
        if refuse:
            body = {"status": "error", "url": str(request.url),
                    "data": {"code": 429, "message": "Too many requests"}}
            return httpx.Response(429, json=body, headers={"Retry-After": "1"})
        if lose:
            answering = asyncio.ensure_future(self._answered_to_nobody(request))
            self._abandoned.add(answering)
            answering.add_done_callback(self._abandoned.discard)
            await asyncio.wait({answering}, timeout=self.lose_after)
            raise httpx.ReadError("the connection broke while the model was answering")
        return await self._inner.handle_async_request(request)

    async def _answered_to_nobody(self, request: httpx.Request) -> None:
        """The request carried on to its end, its answer read and dropped."""
        try:
            response = await self._inner.handle_async_request(request)
            await response.aread()
            await response.aclose()
        except httpx.HTTPError:
            pass

    async def aclose(self) -> None:
        await asyncio.gather(*self._abandoned, return_exceptions=True)
        await self._inner.aclose()


@dataclass
class RunRecord:
    """One plan + apply: what the plan held and how its operations ended."""

    planned: int
    plan_errors: list[str]
    outcomes: dict[str, int]
    broken: list[str]


@dataclass
class ChaosResult:
    """The whole chaos apply: every run, the client's and the emulator's counters, the time."""

    runs: list[RunRecord] = field(default_factory=list)
    converged: bool = False
    requests: int = 0
    retries: int = 0
    relists: int = 0
    rate_limited: int = 0
    lost_answers: int = 0  # sends whose connection broke while the model was answering
    emulator: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def applies(self) -> int:
        """Runs whose plan had changes (and so were applied)."""
        return sum(1 for run in self.runs if run.planned)

    def summary(self) -> str:
        """One paragraph of figures for people."""
        faults = self.emulator.get("faults", {})
        served = sum(self.emulator.get("requests", {}).values())
        first = next((run.planned for run in self.runs if run.planned), 0)
        failed_plans = sum(1 for run in self.runs if run.plan_errors)
        return (f"converged={self.converged} after {self.applies} apply run(s) "
                f"(first plan: {first} operations; {failed_plans} plan(s) failed); "
                f"{self.requests} requests ({self.rate_limited} answered 429, "
                f"{self.lost_answers} sends' answers lost while answering), "
                f"{self.retries} retried, {self.relists} relists; "
                f"emulator served {served} requests, injected {faults}; "
                f"{self.seconds:.1f} s")


def run_chaos(
    emulator: Emulator, scenario: Scenario, workdir: Path, *, max_runs: int = 3,
    parallelism: int = 8, rate_limited: float = 0.10, seed: int = 0,
    lose_sends: float = 0.0, lose_after: float = 0.0,
) -> ChaosResult:
    """Plan and apply `scenario` until its plan is empty (at most `max_runs` applies and one
    final plan), with a `rate_limited` share of requests answered 429 and a `lose_sends`
    share of sends whose answer is lost after `lose_after` seconds while the emulator goes on
    (see `RateLimitingTransport`); after every run, record the broken invariants. The client
    has the default settings a user gets (the send timeout, and after a lost answer a watch
    as long as the run's answer times say). Raises nothing of its own."""
    result = ChaosResult()
    started = time.monotonic()
    desired = load_desired([str(scenario.desired)], env={})
    settings = ClientSettings(api_key=Secret(emulator.api_key), base_url=emulator.base_url,
                              parallelism=parallelism)
    backup_dirs: list[Path] = []
    for number in range(1, max_runs + 3):  # a failed plan (listing gave up) may cost a run
        backup_dir = workdir / "backups" / f"run-{number}"
        backup_dirs.append(backup_dir)
        transport = RateLimitingTransport(rate=rate_limited, seed=seed + number,
                                          parallelism=parallelism, lose_sends=lose_sends,
                                          lose_after=lose_after)
        record = asyncio.run(_one_run(settings, transport, desired, backup_dir, result))
        result.rate_limited += transport.refused
        result.lost_answers += transport.lost
        final = not record.planned and not record.plan_errors
        record.broken = violations(emulator, scenario, backup_dirs, final=final)
        result.runs.append(record)
        if final:
            result.converged = True
            break
        if result.applies >= max_runs and record.planned:
            break
    result.emulator = emulator.stats()
    result.seconds = time.monotonic() - started
    return result


async def _one_run(
    settings: ClientSettings, transport: httpx.AsyncBaseTransport, desired: Any,
    backup_dir: Path, result: ChaosResult,
) -> RunRecord:
    parallelism = settings.parallelism
    async with Client(settings, transport=transport) as client:
        try:
            limits = GuardLimits(allow_mass_delete=True)
            plan = await make_plan(client, desired, limits=limits)
            if plan.all_errors or not plan.has_changes:
                return RunRecord(0, list(plan.all_errors), {}, [])
            report = ApplyReport(plan_checksum=plan.checksum)
            options = ApplyOptions(parallelism=parallelism, backup_dir=backup_dir, limits=limits)
            await apply_plan(client, plan, options=options, report=report)
            return RunRecord(len(plan.operations), [], report.counts(), [])
        finally:
            result.requests += client.stats.requests
            result.retries += client.stats.retries
            result.relists += client.stats.relists
