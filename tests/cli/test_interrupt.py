"""Stopping an apply: SIGINT exits 130, SIGTERM 143, and the report says what was done."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.desired.schema import validate
from reconciler.emulator import Emulator, Faults
from tests.workspace import Workspace

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


COUNTS = re.compile(r"interrupted: (\d+) done, (\d+) failed(?:, (\d+) skipped)?"
                    r"(?:, (\d+) in flight \(applied or not\))?, (\d+) not started; ")


def _interrupted_apply(tmp_path: Path, emulator: Emulator, *source: str,
                       report: Path | None) -> str:
    """Start `reconciler apply SOURCE…` of 200 creates, stop it with SIGINT after 8; its
    stderr."""
    flags = ["--report", str(report)] if report else []
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "apply", *source, "--auto-approve",
         "--parallelism", "4", *flags],
        env=_env(emulator), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=tmp_path)
    _wait_until(lambda: len(emulator.conversations(PROJECT)) >= 8)
    process.send_signal(signal.SIGINT)
    _out, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    return err


def _env(emulator: Emulator) -> dict[str, str]:
    return {**os.environ, "CUSTOMGPT_API_KEY": "k-interrupt",
            "CUSTOMGPT_BASE_URL": emulator.base_url}


def _declare_many(tmp_path: Path) -> Path:
    desired = tmp_path / "c.yaml"
    desired.write_text("version: 1\nprojects:\n  - id: 1001\n    conversations:\n"
                       + "".join(f"      - name: conversation {i:03}\n" for i in range(200)))
    return desired


@pytest.mark.parametrize("with_report", [True, False], ids=["report", "no-report"])
def test_a_stopped_apply_says_what_it_did_and_what_to_run(
    tmp_path: Path, with_report: bool
) -> None:
    with Emulator(api_key="k-interrupt", faults=Faults(latency_ms=40)) as emulator:
        emulator.start()
        emulator.ensure_project(PROJECT)
        desired = _declare_many(tmp_path)
        report = tmp_path / "report.json" if with_report else None
        err = _interrupted_apply(tmp_path, emulator, "-f", str(desired), report=report)
        live = len(emulator.conversations(PROJECT))
    (line,) = [line for line in err.splitlines() if line.startswith("interrupted: ")]
    found = COUNTS.match(line)
    assert found, line
    done, failed, skipped, in_flight, not_started = (int(n or 0) for n in found.groups())
    assert done + failed + skipped + in_flight + not_started == 200
    assert done <= live <= done + in_flight and not_started > 0
    assert line.endswith(f"run `reconciler apply -f {desired}` again to finish (it plans "
                         "afresh; a saved plan is stale once part of it is applied)"
                         + (f"; {report} says what each operation did" if report else ""))
    assert ("--report" in err) is False
    assert "converges" not in err
    if report:
        document = json.loads(report.read_text())
        assert document["summary"]["done"] == done
        assert len(document["not_started"]) == not_started


def test_a_stopped_apply_of_a_saved_plan_says_to_plan_afresh_which_finishes_it(
    tmp_path: Path
) -> None:
    with Emulator(api_key="k-interrupt", faults=Faults(latency_ms=40)) as emulator:
        emulator.start()
        emulator.ensure_project(PROJECT)
        desired = _declare_many(tmp_path)
        saved = tmp_path / "plan.json"
        ws = Workspace(tmp_path, _env(emulator), emulator)
        assert ws.run("plan", "-f", str(desired), "--out", str(saved)).code == 0
        err = _interrupted_apply(tmp_path, emulator, "--plan", str(saved), report=None)
        assert (f"not started; the saved plan {saved} is stale once part of it is applied: "
                "run `reconciler apply -f` with its desired-state files to finish") in err
        emulator.faults.latency_ms = 0
        again = ws.run("apply", "--plan", str(saved), "--auto-approve")
        assert again.code == 1 and "the saved plan is stale" in again.err
        finish = ws.run("apply", "-f", str(desired), "--auto-approve")
        assert finish.code == 0, finish.err
        assert len(emulator.conversations(PROJECT)) == 200
