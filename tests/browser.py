"""A real headless Chromium driven over the DevTools protocol, for tests of HTML pages.

The protocol runs over a pipe (`--remote-debugging-pipe`: commands on the browser's fd 3, answers
and events on its fd 4, each message JSON ended by a NUL byte), so it needs no WebSocket library
and no network port. One browser serves a whole test module; each `load` is one navigation.

Everything the page itself does is recorded: JavaScript dialogs (`alert`), console messages,
browser log entries (a Content-Security-Policy violation is logged there) and every request
the page makes (the document's own included).
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
TIMEOUT = 30.0


def find_browser() -> str | None:
    """The Chromium executable on PATH, or None."""
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class PageEvents:
    """What happened while a page loaded, besides drawing it."""

    dialogs: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


class Browser:
    """One headless Chromium with one tab."""

    def __init__(self, executable: str) -> None:
        self._profile = tempfile.mkdtemp(prefix="reconciler-chromium-")
        commands_read, self._commands = os.pipe()
        self._answers, answers_write = os.pipe()

        def as_fd_3_and_4() -> None:  # runs in the child, before exec
            os.dup2(commands_read, 3)
            os.dup2(answers_write, 4)

        self._process = subprocess.Popen(
            [executable, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-extensions", "--disable-background-networking", "--hide-scrollbars",
             "--remote-debugging-pipe", f"--user-data-dir={self._profile}",
             "--window-size=1024,768", "about:blank"],
            preexec_fn=as_fd_3_and_4, pass_fds=(3, 4), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(commands_read)
        os.close(answers_write)
        self._buffer = b""
        self._next_id = 0
        self._pending: list[dict[str, Any]] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self._session = self.call("Target.attachToTarget", targetId=target,
                                  flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", session=True)

    def close(self) -> None:
        """Close the browser and remove its profile."""
        try:
            self.call("Browser.close")
            self._process.wait(timeout=10)
        except (OSError, EOFError, subprocess.TimeoutExpired, TimeoutError):
            self._process.kill()
            self._process.wait(timeout=10)
        finally:
            os.close(self._commands)
            os.close(self._answers)
            shutil.rmtree(self._profile, ignore_errors=True)

    def load(self, url: str) -> PageEvents:
        """Navigate to `url` and wait until it has loaded; return what the page did."""
        self._pending.clear()
        self.call("Page.navigate", session=True, url=url)
        self._next(lambda message: message.get("method") == "Page.loadEventFired")
        self.evaluate("0")  # let events queued during the load arrive first
        events = PageEvents()
        for event in self._pending:
            method, params = event.get("method"), event.get("params", {})
            if method == "Page.javascriptDialogOpening":
                events.dialogs.append(str(params.get("message")))
            elif method == "Runtime.consoleAPICalled":
                events.console.append(json.dumps(params.get("args")))
            elif method == "Log.entryAdded":
                events.log.append(str(params.get("entry", {}).get("text")))
            elif method == "Network.requestWillBeSent":
                events.requests.append(str(params.get("request", {}).get("url")))
        self._pending.clear()
        return events

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (run by the test, not the page)."""
        result = self.call("Runtime.evaluate", session=True, expression=expression,
                           returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path) -> None:
        """Save what the page looks like, as PNG."""
        data = self.call("Page.captureScreenshot", session=True, format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))

    def call(self, method: str, *, session: bool = False, **params: Any) -> dict[str, Any]:
        """Send one protocol command and return its result."""
        number = self._send(method, session=session, **params)
        answer = self._next(lambda message: message.get("id") == number)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        result: dict[str, Any] = answer.get("result", {})
        return result

    def _send(self, method: str, *, session: bool, **params: Any) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self._session
        os.write(self._commands, json.dumps(message).encode("utf-8") + b"\0")
        return self._next_id

    def _next(self, wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The first message (already received, or to come) that is `wanted`. Others are kept
        as events; a dialog the page opens is answered at once, since it blocks the page."""
        for index, message in enumerate(self._pending):
            if wanted(message) and "id" in message:
                return self._pending.pop(index)
            if wanted(message):
                return message
        while True:
            message = self._receive()
            if message.get("method") == "Page.javascriptDialogOpening":
                self._send("Page.handleJavaScriptDialog", session=True, accept=True)
            if wanted(message) and "id" in message:
                return message
            self._pending.append(message)
            if wanted(message):
                return message
    def _receive(self) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._answers], [], [], left)[0]:
                raise TimeoutError("the browser did not answer in time")
            chunk = os.read(self._answers, 1 << 16)
            if not chunk:
                raise EOFError("the browser closed its DevTools pipe")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        decoded: dict[str, Any] = json.loads(message)
        return decoded
