"""Crash trials: a real `python -m reconciler apply` process killed with SIGKILL at a seeded
random moment after its first write, then a normal apply; the invariants checked after both."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.cli.main import main
from reconciler.emulator import Emulator
from tests.reliability.invariants import violations
from tests.reliability.scenario import build_scenario

WRITES = ("POST", "PUT", "DELETE")


@dataclass
class CrashTrial:
    """One kill and recovery: when it was killed, whether mid-apply, what broke."""

    delay: float
    operations: int = 0  # in the first plan
    running_at_kill: bool = False
    writes_before_kill: int = 0
    recovery_code: int = -1
    plan_code: int = -1
    broken_after_kill: list[str] = field(default_factory=list)
    broken_after_recovery: list[str] = field(default_factory=list)
    recovery_stderr: str = ""

    @property
    def killed_mid_apply(self) -> bool:
        """Killed while running, with some of its writes made and some not."""
        return self.running_at_kill and 0 < self.writes_before_kill < self.operations


def crash_trial(
    emulator: Emulator, workdir: Path, *, first_project: int, units: int, delay: float,
    seed: int, parallelism: int = 4,
) -> CrashTrial:
    """Seed one project, start an apply, SIGKILL it `delay` seconds after its first write, then
    apply normally and plan again. Raises AssertionError if the apply never starts writing."""
    scenario = build_scenario(emulator, workdir, projects=1, units=units, seed=seed,
                              first_project=first_project)
    env = {"CUSTOMGPT_API_KEY": emulator.api_key, "CUSTOMGPT_BASE_URL": emulator.base_url}
    args = ["-f", str(scenario.desired), "--allow-mass-delete", "--parallelism", str(parallelism)]
    crashed, recovered = workdir / "backups-crashed", workdir / "backups-recovered"
    trial = CrashTrial(delay=delay, operations=scenario.operations)
    baseline = _writes(emulator)
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "apply", *args, "--auto-approve",
         "--backup-dir", str(crashed)],
        env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_first_write(emulator, process, baseline)
        time.sleep(delay)
        trial.running_at_kill = process.poll() is None
        trial.writes_before_kill = _writes(emulator) - baseline
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=30)
    trial.broken_after_kill = violations(emulator, scenario, [crashed], final=False)
    trial.recovery_code, trial.recovery_stderr = _cli(
        env, "apply", *args, "--auto-approve", "--backup-dir", str(recovered))
    trial.plan_code, _ = _cli(env, "plan", *args, "--detailed-exitcode")
    trial.broken_after_recovery = violations(emulator, scenario, [crashed, recovered], final=True)
    return trial


def _writes(emulator: Emulator) -> int:
    requests = emulator.stats()["requests"]
    return sum(int(requests.get(method, 0)) for method in WRITES)


def _wait_for_first_write(emulator: Emulator, process: subprocess.Popen[bytes],
                          baseline: int) -> None:
    deadline = time.monotonic() + 30
    while _writes(emulator) == baseline:
        if process.poll() is not None:
            raise AssertionError(f"apply ended (exit {process.returncode}) before any write")
        if time.monotonic() > deadline:
            raise AssertionError("apply made no write within 30 s")
        time.sleep(0.002)


def _cli(env: dict[str, str], *args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), env=env, stdout=out, stderr=err, stdin=io.StringIO())
    return code, err.getvalue()
