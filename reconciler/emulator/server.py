"""The HTTP/1.1 server: keep-alive connections, one thread each, bytes in and bytes out.

Parsing and writing only; what to answer is decided by `reconciler.emulator.app.Application`.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from reconciler.emulator.app import Application
from reconciler.emulator.wire import Request, Response, bounded_number, error, parse_query

MAX_BODY = 1024 * 1024
DEFAULT_READ_TIMEOUT = 30.0  # seconds a connection may stay silent


class EmulatorServer(ThreadingHTTPServer):
    """A threading HTTP server that knows its Application."""

    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], application: Application, *,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
    ) -> None:
        self.application = application
        self.read_timeout = read_timeout
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, RequestHandler)
        host, port = self.server_address[:2]
        shown = host.decode() if isinstance(host, bytes) else host
        self.host_and_port = f"[{shown}]:{port}" if ":" in shown else f"{shown}:{port}"


    def process_request(self, request: Any, client_address: Any) -> None:
        """Remember the connection (so `close_connections` can end it), then serve it."""
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        """Forget the connection and close it."""
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Hang up on every open keep-alive connection (after `shutdown()`)."""
        with self._open_lock:
            connections = list(self._open)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-request is normal; anything else is reported."""
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


class RequestHandler(BaseHTTPRequestHandler):
    """Reads a request, asks the Application, writes the answer (or drops the connection).

    A connection that sends nothing for `server.read_timeout` seconds, mid-request or between
    requests, is closed: an idle or half-sent request never holds a thread forever.
    """

    protocol_version = "HTTP/1.1"
    server_version = "reconciler-emulator"
    sys_version = ""
    disable_nagle_algorithm = True
    server: EmulatorServer

    def setup(self) -> None:
        """Give the connection its read timeout before anything is read."""
        super().setup()
        self.connection.settimeout(self.server.read_timeout)

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
        self.wfile.write(payload)

    def _drop(self) -> None:
        """Close the connection without any answer, the way a crashed server would."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
