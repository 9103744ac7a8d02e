"""Two `reconciler apply` processes on one project at once: the lock stops the second on one
machine, and without the lock the run that finds a name created twice says so and stops.

A gate in front of the emulator (an HTTP proxy in this file) holds the creates, so that the
runs overlap exactly where a race would hurt, every time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from reconciler.emulator import Emulator
from tests.workspace import PROJECT

WAIT = 60.0  # seconds: generous, for a loaded machine; a passing run takes a few seconds
HOP_BY_HOP = {"host", "content-length", "connection", "transfer-encoding", "keep-alive"}


@dataclass
class Gate:
    """Holds each create (POST …/conversations) until `release` allows it; with `together`,
    also holds its answer until every create of the round was done by the emulator."""

    upstream: str
    release: threading.Event | threading.Barrier
    together: threading.Barrier | None = None
    held: threading.Event = field(default_factory=threading.Event)
    arrived: int = 0

    def create(self, send: httpx.Request) -> httpx.Response:
        self.arrived += 1
        self.held.set()
        if isinstance(self.release, threading.Event):
            if self.arrived > 1:  # a second run got this far: nothing stopped it, let both go
                self.release.set()
            assert self.release.wait(WAIT), "the gate was never opened"
        else:
            self.release.wait(WAIT)
        with httpx.Client() as http:
            answer = http.send(send)
        if self.together is not None:
            self.together.wait(WAIT)
        return answer


class _Forward(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _GateServer

    def _forward(self) -> None:
        gate = self.server.gate
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        request = httpx.Request(self.command, gate.upstream + self.path, headers=headers,
                                content=body)
        if self.command == "POST" and urlsplit(self.path).path.endswith("/conversations"):
            answer = gate.create(request)
        else:
            with httpx.Client() as http:
                answer = http.send(request)
        self.send_response(answer.status_code)
        for name, value in answer.headers.items():
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    do_GET = do_POST = do_PUT = do_DELETE = _forward

    def log_message(self, format: str, *args: object) -> None:
        pass


class _GateServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, gate: Gate) -> None:
        super().__init__(("127.0.0.1", 0), _Forward)
        self.gate = gate


@pytest.fixture
def gated(emulator: Emulator) -> Iterator[tuple[Gate, str]]:
    """A gate in front of the emulator, and its URL; creates wait until a test opens it."""
    emulator.ensure_project(PROJECT, "demo")
    gate = Gate(emulator.base_url, threading.Event())
    server = _GateServer(gate)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield gate, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _apply(where: Path, desired: Path, base_url: str, api_key: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CUSTOMGPT_", "RECONCILER_"))}
    env.update(CUSTOMGPT_BASE_URL=base_url, CUSTOMGPT_API_KEY=api_key)
    return subprocess.Popen(
        [sys.executable, "-m", "reconciler", "apply", "-f", str(desired), "--auto-approve",
         "--backup-dir", str(where / "backups"), "--allow-mass-delete"],
        cwd=where, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _declare(tmp_path: Path) -> Path:
    desired = tmp_path / "conversations.yaml"
    desired.write_text(f"""version: 1
projects:
  - id: {PROJECT}
    prune: true
    owns: ["*"]
    conversations: [{{name: Fresh, messages: [hello]}}]
""")
    return desired


def _ended(process: subprocess.Popen[str]) -> tuple[int, str]:
    _, err = process.communicate(timeout=WAIT * 2)
    assert "Traceback" not in err
    return process.returncode, err


def test_a_second_apply_on_one_machine_is_stopped_by_the_lock(
    gated: tuple[Gate, str], emulator: Emulator, tmp_path: Path
) -> None:
    gate, url = gated
    desired = _declare(tmp_path)
    first = _apply(tmp_path, desired, url, emulator.api_key)
    try:
        assert gate.held.wait(WAIT), "the first apply never reached its create"
        second_code, second_err = _ended(_apply(tmp_path, desired, url, emulator.api_key))
    finally:
        assert isinstance(gate.release, threading.Event)
        gate.release.set()
    first_code, first_err = _ended(first)
    assert (first_code, second_code) == (0, 1), first_err + second_err
    assert f"project {PROJECT} is being changed by another run (pid {first.pid} on " \
        in second_err
    assert "running apply" in second_err and ".reconciler/locks/" in second_err
    assert [c["name"] for c in emulator.conversations(PROJECT)] == ["Fresh"]


def test_the_run_that_finds_a_name_created_twice_reports_it_and_deletes_nothing(
    gated: tuple[Gate, str], emulator: Emulator, tmp_path: Path
) -> None:
    """Two working directories (so no shared lock), both planned before either created."""
    gate, url = gated
    gate.release, gate.together = threading.Barrier(2), threading.Barrier(2)
    stray = emulator.add_conversation(PROJECT, "Stray")["session_id"]
    desired = _declare(tmp_path)
    runs = []
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        runs.append(_apply(tmp_path / name, desired, url, emulator.api_key))
    ended = [_ended(run) for run in runs]
    fresh = [c["session_id"] for c in emulator.conversations(PROJECT) if c["name"] == "Fresh"]
    assert len(fresh) == 2, "both runs created 'Fresh': the race the check is for"
    for code, err in ended:
        assert code == 1, err
        assert f"project {PROJECT}: 2 conversations are now named 'Fresh'" in err
        assert all(session in err for session in fresh)
        assert "Nothing was sent or deleted after the creates" in err
    assert stray in [c["session_id"] for c in emulator.conversations(PROJECT)]
    assert all(emulator.messages(PROJECT, session) == [] for session in fresh)
