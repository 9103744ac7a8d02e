"""Figure 3: applying N create operations at latency L and parallelism c, against L x ceil(N/c)."""

from __future__ import annotations

import asyncio
import json
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from reconciler.api.client import Client, ClientSettings, Secret
from reconciler.apply.run import ApplyOptions, ApplyReport, Outcome, apply_plan
from reconciler.desired.model import ConversationSpec, DesiredState, ProjectSpec, Scope
from reconciler.plan.guards import GuardLimits
from reconciler.plan.make import make_plan
from tests.benchmarks.emulator_process import RunningEmulator, cpu_seconds, emulator_process, seed

PROJECT, BARE = 2002, 2003


@dataclass(frozen=True)
class ApplyRun:
    """One timed apply."""

    operations: int
    parallelism: int
    done: int
    wall: float
    requests: int
    emulator_cpu: float


def ideal_apply(latency: float, operations: int, parallelism: int) -> float:
    """L x ceil(N/c): the operations c at a time, one request each."""
    return latency * math.ceil(operations / parallelism)


def ideal_apply_checked(
    latency: float, operations: int, parallelism: int, *, page_size: int = 10
) -> float:
    """L x (ceil(N/c) + 1 + ceil((P-1)/c)): the creates, then the check that no other run
    created the same names, one listing of the P pages the N new conversations fill."""
    pages = max(1, math.ceil(operations / page_size))
    return latency * (math.ceil(operations / parallelism) + 1
                      + math.ceil((pages - 1) / parallelism))


def apply_creates(
    emulator: RunningEmulator, project_id: int, *, operations: int, parallelism: int
) -> ApplyRun:
    """Plan `operations` new conversations in an empty project (make_plan), then time
    `apply_plan` of that plan."""
    settings = ClientSettings(
        api_key=Secret(emulator.api_key), base_url=emulator.base_url, parallelism=parallelism
    )
    spec = ProjectSpec(
        id=project_id, scope=Scope.MINE,
        conversations=tuple(ConversationSpec(name=f"Created {i:06d}") for i in range(operations)),
    )

    async def run() -> tuple[ApplyReport, float, int]:
        async with Client(settings) as client:
            plan = await make_plan(client, DesiredState(projects=(spec,)), limits=GuardLimits())
            if len(plan.operations) != operations or plan.all_errors:
                raise RuntimeError(f"unexpected plan: {plan.summary()} {plan.all_errors}")
            before = client.stats.requests
            report = ApplyReport(plan_checksum=plan.checksum)
            started = time.perf_counter()
            await apply_plan(client, plan, options=ApplyOptions(parallelism=parallelism),
                             report=report)
            return report, time.perf_counter() - started, client.stats.requests - before

    cpu_before = cpu_seconds(emulator.pid)
    report, wall, requests = asyncio.run(run())
    done = sum(r.outcome is Outcome.DONE for r in report.results)
    return ApplyRun(operations, parallelism, done, wall, requests,
                    cpu_seconds(emulator.pid) - cpu_before)


def bare_creates(
    emulator: RunningEmulator, project_id: int, *, operations: int, parallelism: int
) -> float:
    """Wall seconds of `operations` creates sent by `parallelism` bare HTTP/1.1 keep-alive
    connections (asyncio streams, no HTTP library, no checks): what the emulator and the
    loopback cost alone, the floor under any client's ratio."""
    where = urlsplit(emulator.base_url)
    host, port = where.hostname or "127.0.0.1", where.port or 80
    counter = iter(range(operations))

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        for number in counter:  # shared: each create is sent once
            body = json.dumps({"name": f"Bare {number:06d}"}).encode()
            writer.write(
                f"POST /api/v1/projects/{project_id}/conversations HTTP/1.1\r\n"
                f"Host: {host}\r\nAuthorization: Bearer {emulator.api_key}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                .encode() + body)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 2"):
                raise RuntimeError(f"a bare create failed: {head[:40]!r}")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            await reader.readexactly(length)
        writer.close()
        await writer.wait_closed()

    async def run() -> float:
        started = time.perf_counter()
        await asyncio.gather(*(connection() for _ in range(parallelism)))
        return time.perf_counter() - started

    return asyncio.run(run())


def main(arguments: list[str]) -> dict[str, float]:
    """`python -m tests.benchmarks.applying [N] [C]`: apply N creates (2,000) at parallelism C
    (8) against a fresh emulator process at 20 ms latency, and the same creates sent bare
    (`bare_creates`); the figures as a dict."""
    operations = int(arguments[0]) if arguments else 2000
    parallelism = int(arguments[1]) if len(arguments) > 1 else 8
    latency = 0.02
    with tempfile.TemporaryDirectory(prefix="reconciler-bench-") as directory:
        db = Path(directory) / "emulator.db"
        seed(db, {PROJECT: 0, BARE: 0})
        with emulator_process(db, latency_ms=latency * 1000) as emulator:
            cpu = time.process_time()
            run = apply_creates(emulator, PROJECT, operations=operations,
                                parallelism=parallelism)
            cpu = time.process_time() - cpu
            bare = bare_creates(emulator, BARE, operations=operations, parallelism=parallelism)
    return {
        "operations": run.operations, "parallelism": parallelism, "done": run.done,
        "wall": round(run.wall, 3), "requests": run.requests,
        "ratio": round(run.wall / ideal_apply(latency, operations, parallelism), 3),
        "ratio_checked": round(
            run.wall / ideal_apply_checked(latency, operations, parallelism), 3),
        "bare_ratio": round(bare / ideal_apply(latency, operations, parallelism), 3),
        "client_cpu_plan_and_apply": round(cpu, 3),
        "emulator_cpu": round(run.emulator_cpu, 3),
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
