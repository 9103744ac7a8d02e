"""The HTTP/1.1 server: keep-alive connections, one thread each, bytes in and bytes out.

Parsing and writing only; what to answer is decided by `reconciler.emulator.app.Application`.

No peer can hold the server: a connection silent for `read_timeout` seconds is closed, a request
must arrive whole (headers and body) within `request_timeout` seconds of its first byte, at most
`max_connections` are served at once (the others wait in the listening socket's backlog), and
`shutdown` returns within `STOP_WAIT` seconds whatever the serving thread is doing.
"""

from __future__ import annotations

import contextlib
import io
import selectors
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from reconciler.emulator.app import Application
from reconciler.emulator.wire import Request, Response, bounded_number, error, parse_query

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

MAX_BODY = 1024 * 1024
DEFAULT_READ_TIMEOUT = 30.0  # seconds a connection may stay silent
DEFAULT_REQUEST_TIMEOUT = 30.0  # seconds a whole request may take to arrive, from its first byte
DEFAULT_MAX_CONNECTIONS = 512  # connections served at once, one thread each
STOP_WAIT = 5.0  # seconds `shutdown` waits for the serving thread


class EmulatorServer(ThreadingHTTPServer):
    """A threading HTTP server that knows its Application."""

    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], application: Application, *,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        self.application = application
        self.read_timeout = read_timeout
        self.request_timeout = request_timeout
        self.max_connections = max_connections
        self._open: set[socket.socket] = set()
        self._slot_freed = threading.Condition()  # guards `_open`
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()
        super().__init__(address, RequestHandler)
        # accept() never waits: a connection that went away between the readiness of the
        # listening socket and accept() raises BlockingIOError instead of blocking forever.
        self.socket.setblocking(False)
        self._wakeup, self._wake = socket.socketpair()
        host, port = self.server_address[:2]
        shown = host.decode() if isinstance(host, bytes) else host
        self.host_and_port = f"[{shown}]:{port}" if ":" in shown else f"{shown}:{port}"

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Accept connections until `shutdown`, each served by a thread of its own; while
        `max_connections` are open, new ones wait in the backlog."""
        self._stopped.clear()
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self.socket, selectors.EVENT_READ)
                selector.register(self._wakeup, selectors.EVENT_READ)
                while not self._stopping.is_set():
                    if self._free_slot(poll_interval) and self._ready(selector, poll_interval):
                        self._accept()
        finally:
            self._stopped.set()

    def _free_slot(self, timeout: float) -> bool:
        """Wait (at most `timeout`) until fewer than `max_connections` are open."""
        with self._slot_freed:
            return self._slot_freed.wait_for(
                lambda: len(self._open) < self.max_connections or self._stopping.is_set(),
                timeout) and not self._stopping.is_set()

    def _ready(self, selector: selectors.BaseSelector, timeout: float) -> bool:
        """Wait (at most `timeout`) until a connection may be pending; False on `shutdown`."""
        ready = selector.select(timeout)
        return not self._stopping.is_set() and any(
            key.fileobj is self.socket for key, _ in ready)

    def _accept(self) -> None:
        """Take one pending connection, if there still is one, and start its thread."""
        try:
            request, client_address = self.socket.accept()
        except OSError:  # gone already (BlockingIOError), or the socket was closed
            return
        try:
            self.process_request(request, client_address)
        except Exception:  # no thread could be started: hang up on this one, keep serving
            self.handle_error(request, client_address)
            self.shutdown_request(request)

    def shutdown(self) -> None:
        """Stop `serve_forever` and wait for it to return, at most `STOP_WAIT` seconds: the
        serving thread is a daemon, and `server_close` closes the socket under it anyway."""
        self._stopping.set()
        with self._slot_freed:
            self._slot_freed.notify_all()
        with contextlib.suppress(OSError):
            self._wake.send(b"\0")
        self._stopped.wait(STOP_WAIT)

    def server_close(self) -> None:
        """Close the listening socket (waking any thread blocked on it) and the wake-up pair."""
        with contextlib.suppress(OSError):
            self.socket.shutdown(socket.SHUT_RDWR)
        super().server_close()
        self._wakeup.close()
        self._wake.close()

    def process_request(self, request: Any, client_address: Any) -> None:
        """Remember the connection (so `close_connections` can end it), then serve it."""
        with self._slot_freed:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        """Forget the connection, freeing its slot, and close it."""
        with self._slot_freed:
            self._open.discard(request)
            self._slot_freed.notify()
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Hang up on every open keep-alive connection (after `shutdown()`)."""
        with self._slot_freed:
            connections = list(self._open)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-request is normal; anything else is reported."""
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


class RequestReader(io.RawIOBase):
    """A connection's bytes, read against two clocks: at most `silence` seconds waiting for
    any byte, and at most `total` seconds for a whole request from its first byte (so a peer
    that sends one byte just inside the silence cannot hold its thread for ever)."""

    def __init__(self, connection: socket.socket, *, silence: float, total: float) -> None:
        super().__init__()
        self._connection = connection
        self._silence = silence
        self._total = total
        self._deadline: float | None = None

    def readable(self) -> bool:
        """Always: it is the reading side of the connection."""
        return True

    def next_request(self) -> None:
        """Start the clock of the next request at its first byte."""
        self._deadline = None

    def readinto(self, buffer: WriteableBuffer) -> int:
        """Receive into `buffer`; raises TimeoutError past either limit."""
        timeout = self._silence
        if self._deadline is not None:
            left = self._deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the request did not arrive in time")
            timeout = min(timeout, left)
        self._connection.settimeout(timeout)
        count = self._connection.recv_into(buffer)
        if self._deadline is None and count:
            self._deadline = time.monotonic() + self._total
        return count


class RequestHandler(BaseHTTPRequestHandler):
    """Reads a request, asks the Application, writes the answer (or drops the connection).

    A connection that sends nothing for `server.read_timeout` seconds, mid-request or between
    requests, is closed, and so is one whose request (headers and body) has not arrived whole
    `server.request_timeout` seconds after its first byte: no peer holds a thread forever.
    """

    protocol_version = "HTTP/1.1"
    server_version = "reconciler-emulator"
    sys_version = ""
    disable_nagle_algorithm = True
    server: EmulatorServer
    _reader: RequestReader

    def setup(self) -> None:
        """Read the connection through a `RequestReader` (its two clocks) from the first byte."""
        super().setup()
        self.rfile.close()
        self._reader = RequestReader(self.connection, silence=self.server.read_timeout,
                                     total=self.server.request_timeout)
        self.rfile = io.BufferedReader(self._reader)

    def handle_one_request(self) -> None:
        """Serve the next request of the connection, its clock started at its first byte."""
        self._reader.next_request()
        super().handle_one_request()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answer a request that could not be parsed (line too long, bad version, too many
        headers, unknown method) with the API's error envelope, and close the connection."""
        self.close_connection = True
        reason = message or self.responses.get(code, ("The request could not be read",))[0]
        self._write(error(f"http://{self.server.host_and_port}/", code, reason))

    def do_GET(self) -> None:
        """Every method goes through the same path; the Application routes it."""
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the emulator serves hundreds of requests a second."""

    def _handle(self) -> None:
        host = self.headers.get("Host") or self.server.host_and_port
        raw_path, _, raw_query = self.path.partition("?")
        body, problem = self._read_body()
        request = Request(method=self.command, path=unquote(raw_path) or "/",
                          query=parse_query(raw_query),
                          headers={key.lower(): value for key, value in self.headers.items()},
                          body=body, base_url=f"http://{host}", raw_path=raw_path)
        if problem is not None:
            self.close_connection = True
            self._write(error(request.url, problem[0], problem[1]))
            return
        response = self.server.application.handle(request)
        if response is None:
            self._drop()
        else:
            self._write(response)

    def _read_body(self) -> tuple[bytes, tuple[int, str] | None]:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return b"", (411, "A Content-Length is required")
        raw = self.headers.get("Content-Length", "0").strip() or "0"
        if not (raw.isascii() and raw.isdigit()):
            return b"", (400, "The Content-Length header is invalid")
        length = bounded_number(raw, MAX_BODY)
        if length is None:
            return b"", (413, "The request body is too large")
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            raise ConnectionAbortedError("the client closed the connection mid-body")
        return body, None

    def _write(self, response: Response) -> None:
        head = [f"HTTP/1.1 {response.status} {self.responses.get(response.status, ('',))[0]}",
                f"Content-Type: {response.content_type}; charset=utf-8",
                f"Content-Length: {len(response.body)}",
                f"Date: {self.date_time_string()}",
                f"Server: {self.server_version}"]
        head += [f"{name}: {value}" for name, value in response.headers.items()]
        if self.close_connection:
            head.append("Connection: close")
        payload = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        if self.command != "HEAD":
            payload += response.body
        self.connection.settimeout(self.server.read_timeout)  # a peer that does not read
        self.wfile.write(payload)

    def _drop(self) -> None:
        """Close the connection without any answer, the way a crashed server would."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
