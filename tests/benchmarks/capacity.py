"""Figure 4: the emulator's own capacity, with a load generator light enough not to be the
bottleneck itself: raw keep-alive HTTP/1.1 GETs of one listing page over `parallelism`
asyncio connections."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from tests.benchmarks.emulator_process import RunningEmulator, cpu_seconds


@dataclass(frozen=True)
class CapacityRun:
    """Requests per second the emulator served."""

    parallelism: int
    requests: int
    wall: float
    emulator_cpu: float

    @property
    def rate(self) -> float:
        """Requests per second."""
        return self.requests / self.wall


def measure_capacity(
    emulator: RunningEmulator, project_id: int, *, parallelism: int, seconds: float
) -> CapacityRun:
    """Hammer `GET .../conversations?page=1` for about `seconds` at `parallelism`."""
    parts = urlsplit(emulator.base_url)
    request = (
        f"GET /api/v1/projects/{project_id}/conversations?page=1&order=asc HTTP/1.1\r\n"
        f"Host: {parts.netloc}\r\nAuthorization: Bearer {emulator.api_key}\r\n"
        "Accept: application/json\r\n\r\n"
    ).encode("ascii")

    async def connection(deadline: float) -> int:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        served = 0
        while time.perf_counter() < deadline:
            writer.write(request)
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            served += 1
        writer.close()
        return served

    async def run() -> int:
        deadline = time.perf_counter() + seconds
        return sum(await asyncio.gather(*(connection(deadline) for _ in range(parallelism))))

    cpu_before = cpu_seconds(emulator.pid)
    started = time.perf_counter()
    served = asyncio.run(run())
    wall = time.perf_counter() - started
    return CapacityRun(parallelism, served, wall, cpu_seconds(emulator.pid) - cpu_before)
