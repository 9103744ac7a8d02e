"""The emulator as a separate process (its own GIL), serving a database seeded beforehand."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from reconciler.emulator import Emulator

API_KEY = "benchmark-key"


@dataclass(frozen=True)
class RunningEmulator:
    """Where a started emulator process answers."""

    base_url: str
    api_key: str
    pid: int


def seed(db: Path, projects: dict[int, int]) -> None:
    """Create each project of `projects` (id -> number of conversations) in the file `db`,
    with that many conversations made by the key's user, in one transaction each."""
    with Emulator(db=str(db), api_key=API_KEY) as emulator:
        for project_id, count in projects.items():
            emulator.ensure_project(project_id, f"benchmark-{project_id}")
            if count:
                emulator.add_conversations(
                    project_id, (f"Conversation {i:07d}" for i in range(count))
                )


@contextlib.contextmanager
def emulator_process(
    db: Path, *, latency_ms: float, page_size: int = 10, extra: list[str] | None = None
) -> Iterator[RunningEmulator]:
    """Run `reconciler emulator` on `db` in a child process until the block ends; `extra` are
    more options (a rate limit, faults)."""
    command = [
        sys.executable, "-m", "reconciler", "emulator", "--db", str(db), "--api-key", API_KEY,
        "--latency-ms", str(latency_ms), "--page-size", str(page_size), *(extra or []),
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        base_url = _read_base_url(process)
        yield RunningEmulator(base_url=base_url, api_key=API_KEY, pid=process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _read_base_url(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("CUSTOMGPT_BASE_URL="):
            return line.strip().partition("=")[2]
    raise RuntimeError(f"the emulator exited with {process.wait()} before serving")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / _clock_ticks()


def _clock_ticks() -> int:
    import os

    return os.sysconf("SC_CLK_TCK")
