"""The emulator's HTTP server against hostile peers: it stops when told, whatever the listening
socket is doing, and no slow or silent peer holds a thread or every slot for ever."""

from __future__ import annotations

import json
import select
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from reconciler.emulator import Emulator, EmulatorError
from reconciler.emulator.server import STOP_WAIT, EmulatorServer

KEY = "server-key"
USER = b"GET /api/v1/user HTTP/1.1\r\nAuthorization: Bearer " + KEY.encode() + b"\r\n"

# Another process sharing the listening socket, taking every connection it can: the serving
# thread is woken for connections that are gone by the time it calls accept().
ACCEPTER = """
import select, socket, sys
listener = socket.socket(fileno=int(sys.argv[1]))
print("ready", flush=True)
while True:
    select.select([listener], [], [])
    try:
        listener.accept()[0].close()
    except BlockingIOError:
        pass
"""


def _waits_in_accept(thread: threading.Thread) -> bool:
    """True when `thread` is inside socket.accept(), and still is 50 ms later."""
    def inside() -> bool:
        frame = sys._current_frames().get(thread.ident or 0)
        while frame is not None:
            if frame.f_code.co_name == "accept":
                return True
            frame = frame.f_back
        return False

    time.sleep(0.02)
    if not inside():
        return False
    time.sleep(0.05)
    return inside()


def _hold_the_interpreter(seconds: float) -> None:
    """Keep this thread running Python (so no other thread of this process runs it)."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        pass


@pytest.mark.timeout(30)
def test_shutdown_returns_when_the_pending_connection_is_gone_before_accept() -> None:
    server = EmulatorServer(("127.0.0.1", 0), Emulator(api_key=KEY).application)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    listener = server.socket.fileno()
    other = subprocess.Popen([sys.executable, "-c", ACCEPTER, str(listener)],
                             pass_fds=(listener,), stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout is not None and other.stdout.readline() == "ready\n"
        for _ in range(150):  # until the serving thread was woken for a connection taken away
            socket.create_connection(server.server_address[:2]).close()
            _hold_the_interpreter(0.002)
            if _waits_in_accept(serving):
                break
    finally:
        other.kill()
        other.wait()
    server.shutdown()
    server.server_close()
    serving.join(STOP_WAIT)
    assert not serving.is_alive()


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(api_key=KEY, request_timeout=1.0) as emulator:
        emulator.start()
        yield emulator


def _address(emulator: Emulator) -> tuple[str, int]:
    host, port = emulator.base_url.removeprefix("http://").split(":")
    return host, int(port)


def test_connections_reset_before_they_are_accepted_do_not_stop_the_server(
    emu: Emulator, capfd: pytest.CaptureFixture[str]
) -> None:
    for _ in range(200):
        client = socket.create_connection(_address(emu))
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()  # RST at once
    answer = httpx.get(emu.base_url + "/api/v1/user", headers={"Authorization": f"Bearer {KEY}"})
    assert answer.status_code == 200
    emu.stop()
    assert "Traceback" not in capfd.readouterr().err


def _drip_until_hung_up(address: tuple[str, int], sent: bytes, dripped: bytes) -> bool:
    """Send `sent` at once, then `dripped` a byte every 0.2 s; True if the server hung up
    before all of it was sent."""
    with socket.create_connection(address, timeout=10) as peer:
        peer.sendall(sent)
        for byte in dripped:
            try:
                peer.sendall(bytes([byte]))
            except OSError:  # reset by the server
                return True
            readable, _, _ = select.select([peer], [], [], 0.2)
            if readable:
                try:
                    if peer.recv(65536) == b"":
                        return True
                except OSError:
                    return True
    return False


SLOW_HEADERS = USER + b"X-Padding: " + b"a" * 200 + b"\r\n\r\n"


@pytest.mark.parametrize(("sent", "dripped"), [
    (b"", SLOW_HEADERS),
    (b"POST /api/v1/projects HTTP/1.1\r\nContent-Length: 300\r\n\r\n", b"{" * 300),
], ids=["headers", "body"])
def test_a_peer_dripping_a_byte_inside_the_read_timeout_is_hung_up_on(
    emu: Emulator, sent: bytes, dripped: bytes, capfd: pytest.CaptureFixture[str]
) -> None:
    # read_timeout is 30 s and each byte comes 0.2 s after the last: only the deadline of the
    # whole request (request_timeout=1) ends it, long before the minute it would take to send.
    assert _drip_until_hung_up(_address(emu), sent, dripped)
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.timeout(60)
def test_slow_peers_cannot_take_every_connection_for_ever() -> None:
    with Emulator(api_key=KEY, request_timeout=1.0, max_connections=2) as emulator:
        emulator.start()
        hung_up: list[bool] = []
        peers = [threading.Thread(target=lambda: hung_up.append(
            _drip_until_hung_up(_address(emulator), b"", SLOW_HEADERS))) for _ in range(4)]
        for peer in peers:
            peer.start()
        answer = httpx.get(emulator.base_url + "/api/v1/user", timeout=30,
                           headers={"Authorization": f"Bearer {KEY}"})
        for peer in peers:
            peer.join()
    assert answer.status_code == 200
    assert hung_up == [True] * 4


def test_a_connection_waits_for_a_free_slot_and_is_then_served() -> None:
    with Emulator(api_key=KEY, read_timeout=30.0, request_timeout=1.0,
                  max_connections=1) as emulator:
        emulator.start()
        with socket.create_connection(_address(emulator), timeout=30) as first:
            first.sendall(b"GET /api/v1/user HTTP/1.1\r\n")  # and nothing more
            with socket.create_connection(_address(emulator), timeout=30) as second:
                second.sendall(USER + b"\r\n")
                answer = second.recv(65536)
                # The only slot was held by the first until its request ran out of time.
                first.setblocking(False)
                assert first.recv(1) == b""
    assert answer.startswith(b"HTTP/1.1 200 ")


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"GET /" + b"a" * (65_537 - 5), 414),  # read whole: no reset before the answer
    (b"BREW /api/v1/user HTTP/1.1\r\n\r\n", 501),
    (b"GET /api/v1/user HTTP/1.1\r\n" + b"X-A: b\r\n" * 101 + b"\r\n", 431),
    (b"GET /api/v1/user HTTP/7.1\r\n\r\n", 505),
], ids=["line-too-long", "unknown-method", "too-many-headers", "unknown-version"])
def test_a_request_that_cannot_be_parsed_gets_the_error_envelope(
    emu: Emulator, request_bytes: bytes, status: int
) -> None:
    with socket.create_connection(_address(emu), timeout=10) as raw:
        raw.sendall(request_bytes)
        answer = b""
        while chunk := raw.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} ".encode())
    assert b"Content-Type: application/json" in head
    envelope = json.loads(body)
    assert envelope["status"] == "error" and envelope["data"]["code"] == status


@pytest.mark.parametrize("options", [
    {"request_timeout": 0.0}, {"request_timeout": float("nan")}, {"max_connections": 0},
    {"max_connections": 2.5}, {"max_connections": True},
], ids=["zero-deadline", "nan-deadline", "no-connections", "fraction", "bool"])
def test_the_limits_must_be_positive(options: dict[str, float]) -> None:
    with pytest.raises(EmulatorError, match=r"request timeout|max_connections"):
        Emulator(**options)  # type: ignore[arg-type]
