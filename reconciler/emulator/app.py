"""One request, start to finish: who may send it, faults, authentication, routing, and the
answer.

`Application.handle` is independent of the socket server, which only parses and writes bytes.
"""

from __future__ import annotations

import hmac
import logging
import threading
from collections import Counter
from dataclasses import replace
from urllib.parse import urlsplit

from reconciler.api.settings import is_loopback
from reconciler.emulator import admin, api, pages, routes, team, wire
from reconciler.emulator.content import Content
from reconciler.emulator.faults import Action, Decision, FaultInjector, Faults
from reconciler.emulator.health import HealthSource
from reconciler.emulator.store import Store
from reconciler.emulator.throttle import FixedWindowThrottle, Verdict, key_label
from reconciler.emulator.variants import Variants
from reconciler.emulator.wire import ApiProblem, Request, Response

logger = logging.getLogger(__name__)

DROP = None  # `handle` returns this when the connection must be closed without an answer

_FAULT_MESSAGES = {
    429: "Too Many Attempts.",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service temporarily unavailable",
}


class Application:
    """The emulated API: routes requests to endpoints, with authentication and faults."""

    def __init__(
        self, *, store: Store, api_key: str, faults: Faults, enable_admin: bool, page_size: int,
        variants: Variants | None = None, member_key: str | None = None,
        content: Content | None = None, health: HealthSource | None = None,
    ) -> None:
        self.api = api.Api(store=store, page_size=page_size, variants=variants or Variants(),
                           content=content)
        self.injector = FaultInjector(faults)
        self.enable_admin = enable_admin
        self.serve_pages = True  # the read-only HTML pages; off when serving beyond loopback
        self.health = health  # the answer checks the pages show
        self.loopback_port: int | None = None  # the port, while serving on a loopback address
        # Each key and the user it belongs to: the owner's, and a team member's if given.
        self._keys = [(api_key.encode("utf-8"), team.OWNER.id)]
        if member_key:
            self._keys.append((member_key.encode("utf-8"), team.MEMBER.id))
        self._counts_lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.throttle = FixedWindowThrottle()
        self.admin = admin.Admin(store=store, injector=self.injector, requests=self.requests,
                                 throttle=self.throttle)

    def listening(self, *, port: int, loopback: bool) -> None:
        """Note where the server listens: on a loopback address, requests must be addressed to
        it, pages are served; beyond loopback, no pages (they need no key)."""
        self.serve_pages = loopback
        self.loopback_port = port if loopback else None

    def handle(self, request: Request) -> Response | None:
        """The response to send, or DROP (None) to close the connection without one."""
        try:
            refused = self._refusal(request)
            if self.serve_pages and pages.is_page(request.path):  # no key, no faults
                if refused is not None:
                    return pages.error_page(refused)
                return pages.handle(self.api.store, self.api.page_size, request, self.health)
            if refused is not None:
                raise refused
            if request.path.startswith(admin.PREFIX):
                if not self.enable_admin:
                    raise ApiProblem(404, "The requested resource was not found")
                return admin.handle(self.admin, request)
            with self._counts_lock:
                self.requests[request.method] += 1
            return self._serve(request)
        except ApiProblem as problem:
            return wire.error(request.url, problem.status, problem.message, problem.headers)
        except Exception:  # a bug, or the database closed under us: answer, do not hang up
            logger.exception("emulator failed on %s %s", request.method, request.path)
            return wire.error(request.url, 500, "Internal server error")

    def _serve(self, request: Request) -> Response | None:
        is_write = request.method in routes.WRITES
        decision = self.injector.before(request.method, request.path, is_write=is_write)
        if decision.action is Action.DROP:
            return DROP
        if decision.action is Action.FAIL:
            return self._fault_response(request, decision.status, decision.retry_after)
        endpoint, params = routes.route(request.method, request.path)
        request = replace(request, user=self._authenticate(request))
        verdict = self._budget(request)
        if not verdict.allowed:
            return wire.error(request.url, 429, _FAULT_MESSAGES[429], verdict.headers)
        try:
            response = endpoint(self.api, request, params)
        except ApiProblem as problem:
            problem.headers.update(verdict.headers)
            raise
        response.headers.update(verdict.headers)
        return self._after(request, response, decision)

    def _budget(self, request: Request) -> Verdict:
        """Count the request against its key's per-minute budget (after authentication, as
        the real service's throttle runs)."""
        faults = self.injector.faults
        token = request.headers.get("authorization", "").partition(" ")[2].strip()
        return self.throttle.hit(key_label(token), limit=faults.rate_limit_per_minute,
                                 window=faults.rate_limit_window)

    def _after(self, request: Request, response: Response, decision: Decision) -> Response | None:
        if decision.after is Action.PROCEED or response.status >= 300:
            return response
        self.injector.count_committed_fault()
        if decision.after is Action.DROP:
            return DROP
        return self._fault_response(request, decision.after_status, None)

    def _fault_response(self, request: Request, status: int, retry_after: int | None) -> Response:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        message = _FAULT_MESSAGES.get(status, "The request failed")
        return wire.error(request.url, status, message, headers)

    def _refusal(self, request: Request) -> ApiProblem | None:
        """The 403 for what a web page in the user's browser could send, None for anything
        else: a request addressed by a name that is not a loopback one (DNS rebinding: a site
        whose name now points at 127.0.0.1) or to another port, or one whose Origin is not the
        emulator itself (a form or script of any site posting to http://127.0.0.1:PORT).
        Programs send no Origin."""
        host = request.headers.get("host")
        port = self.loopback_port
        if port is not None and host is not None and not _addressed_to(host, port):
            return ApiProblem(403, f"Refused: the request is addressed to {_shown(host)}, not "
                                   f"to this emulator (localhost:{port} or 127.0.0.1:{port}); "
                                   "a web page may have been sent here under another name")
        origin = request.headers.get("origin")
        if origin is not None and (host is None or origin.lower() != f"http://{host}".lower()):
            return ApiProblem(403, f"Refused: the request comes from the web page of "
                                   f"{_shown(origin)}; the emulator answers only programs and "
                                   "its own pages")
        return None

    def _authenticate(self, request: Request) -> str:
        """The id of the user the request's bearer token belongs to; raises ApiProblem(401)."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        given = token.strip().encode("utf-8")
        # Every key is compared, so the time taken does not tell which one nearly matched.
        users = [user for key, user in self._keys if hmac.compare_digest(given, key)]
        if scheme.lower() != "bearer" or not users:
            raise ApiProblem(401, "API Token is either missing or invalid")
        return users[0]


def _addressed_to(host: str, port: int) -> bool:
    """True when a Host header names a loopback address or localhost, and `port` or none."""
    try:
        parts = urlsplit("//" + host)
        named_port = parts.port
    except ValueError:
        return False
    return (parts.hostname is not None and is_loopback(parts.hostname)
            and named_port in (None, port) and parts.netloc == host and "@" not in host)


def _shown(value: str) -> str:
    """An untrusted header value as an error message quotes it: in quotes, at most 100
    characters, escapes for anything unprintable."""
    shortened = value if len(value) <= 100 else value[:100] + "…"
    return ascii(shortened) if not shortened.isprintable() else f"'{shortened}'"
