"""Stopping an apply: SIGINT exits 130, SIGTERM 143, and the report says what was done."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.desired.schema import validate
from reconciler.emulator import Emulator, Faults

PROJECT = 1001


def _ignore_sigint() -> None:
    """What a non-interactive shell does to a background job (`reconciler apply … &`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize(("sig", "code", "inherited"), [
    (signal.SIGINT, 130, None), (signal.SIGTERM, 143, None),
    (signal.SIGINT, 130, _ignore_sigint), (signal.SIGTERM, 143, _ignore_sigint),
], ids=["sigint", "sigterm", "sigint-inherited-ignored", "sigterm-with-sigint-ignored"])
def test_a_stopped_apply_reports_what_was_done(
    tmp_path: Path, sig: int, code: int, inherited: Callable[[], None] | None
) -> None:
    with Emulator(api_key="k-interrupt", faults=Faults(latency_ms=40)) as emulator:
        emulator.start()
        emulator.ensure_project(PROJECT)
        desired = tmp_path / "c.yaml"
        names = [f"conversation {i:03}" for i in range(200)]
        desired.write_text("version: 1\nprojects:\n  - id: 1001\n    conversations:\n"
                           + "".join(f"      - name: {n}\n" for n in names))
        report = tmp_path / "report.json"
        env = {**os.environ, "CUSTOMGPT_API_KEY": "k-interrupt",
               "CUSTOMGPT_BASE_URL": emulator.base_url}
        process = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "apply", "-f", str(desired), "--auto-approve",
             "--parallelism", "4", "--report", str(report)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=inherited,
        )
        _wait_until(lambda: len(emulator.conversations(PROJECT)) >= 8)
        process.send_signal(sig)
        _out, err = process.communicate(timeout=30)
        assert process.returncode == code, err
        assert "Traceback" not in err
        assert "interrupted" in err
        live = {c["name"] for c in emulator.conversations(PROJECT)}
    document = json.loads(report.read_text())
    assert validate(document, "report") == []
    assert document["interrupted"] is True
    done = {op["name"] for op in document["operations"] if op["outcome"] == "done"}
    assert done and done <= live
    assert len(done) < len(names)
    accounted = len(document["operations"]) + len(document["not_started"])
    assert accounted == len(names)
    in_flight = [op for op in document["operations"] if op["outcome"] == "interrupted"]
    assert all(op["name"] not in done for op in in_flight)


def _wait_until(condition: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("the condition did not become true in time")
