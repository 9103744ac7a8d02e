"""Figure 1: listing a project of P pages at latency L, our client at parallelism c against
a sequential page loop written the way the official SDK is used."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Any

from reconciler.api.client import Client, ClientSettings, Secret
from tests.benchmarks.emulator_process import RunningEmulator, cpu_seconds


@dataclass(frozen=True)
class ListingRun:
    """One timed listing."""

    label: str
    parallelism: int
    pages: int
    items: int
    wall: float
    emulator_cpu: float
    requests: int


def critical_path(latency: float, pages: int, parallelism: int) -> float:
    """L x (1 + ceil((P-1)/c)): page 1, then the other pages c at a time."""
    return latency * (1 + math.ceil((pages - 1) / parallelism))


def list_with_client(
    emulator: RunningEmulator, project_id: int, *, parallelism: int
) -> ListingRun:
    """Time `Client.list_conversations` (every page) at `parallelism`."""
    settings = ClientSettings(
        api_key=Secret(emulator.api_key), base_url=emulator.base_url, parallelism=parallelism
    )

    async def run() -> tuple[int, float, int]:
        async with Client(settings) as client:
            started = time.perf_counter()
            found = await client.list_conversations(project_id)
            return len(found), time.perf_counter() - started, client.stats.requests

    cpu_before = cpu_seconds(emulator.pid)
    items, wall, requests = asyncio.run(run())
    return ListingRun(
        label=f"reconciler c={parallelism}", parallelism=parallelism, pages=requests,
        items=items, wall=wall, emulator_cpu=cpu_seconds(emulator.pid) - cpu_before,
        requests=requests,
    )


def list_with_sdk(emulator: RunningEmulator, project_id: int) -> ListingRun:
    """Time the SDK's documented use: `CustomGPT.Conversation.get(page=n)` until last_page."""
    from customgpt_client import CustomGPT  # the test extra; imported only when measured

    sdk: Any = CustomGPT
    sdk.base_url, sdk.api_key, sdk.timeout = emulator.base_url, emulator.api_key, 30.0
    cpu_before = cpu_seconds(emulator.pid)
    started = time.perf_counter()
    items: list[Any] = []
    page = 1
    while True:
        response = sdk.Conversation.get(project_id=project_id, page=page, order="asc")
        if response.status_code != 200:
            raise RuntimeError(f"the SDK listing failed on page {page}: {response.status_code}")
        data = response.parsed.data
        items.extend(data.data)
        if page >= data.last_page:
            break
        page += 1
    wall = time.perf_counter() - started
    return ListingRun(
        label="SDK sequential loop", parallelism=1, pages=page, items=len(items), wall=wall,
        emulator_cpu=cpu_seconds(emulator.pid) - cpu_before, requests=page,
    )
