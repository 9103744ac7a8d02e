"""TLS verification is never switched off: a server whose certificate is not trusted is refused."""

from __future__ import annotations

import io
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme

from reconciler.cli.main import main


class _Anything(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"status": "success", "data": {"id": 1, "name": "x", "email": "x@y"}}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def untrusted_https() -> Iterator[str]:
    """An HTTPS server on loopback whose certificate no system CA vouches for."""
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(context)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Anything)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_untrusted_certificate_is_refused(untrusted_https: str, tmp_path: Path) -> None:
    desired = tmp_path / "c.yaml"
    desired.write_text("version: 1\nprojects: [{id: 1}]\n")
    out, err = io.StringIO(), io.StringIO()
    env = {"CUSTOMGPT_API_KEY": "tls-test-key-0123", "CUSTOMGPT_BASE_URL": untrusted_https}
    code = main(["plan", "-f", str(desired), "--timeout", "5"], env=env, stdout=out, stderr=err)
    assert code == 1
    message = err.getvalue()
    assert "the TLS certificate of 127.0.0.1 could not be verified" in message
    assert "attempts" not in message, "a refused certificate is final, not retried"
    assert "Traceback" not in message
