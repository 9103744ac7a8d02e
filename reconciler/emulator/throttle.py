"""The real service's request budget: a fixed window of N requests per key, as Laravel's
`throttle` middleware counts it.

A key's window opens with its first request and lasts `window` seconds (60 on the real
service); every request in it counts, and once N have been counted the rest are refused until
the window ends. Refused requests do not count. Every answer carries `X-RateLimit-Limit` and
`X-RateLimit-Remaining`; a refusal also carries `Retry-After` (seconds) and `X-RateLimit-Reset`
(a Unix time), with `X-RateLimit-Remaining: 0`.

A window shorter than 60 s is a time scale for benchmarks only; it is then also advertised as
`RateLimit-Policy: N;w=SECONDS`, so that a client can pace itself to it.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

REAL_WINDOW = 60.0


@dataclass(frozen=True)
class Verdict:
    """Whether one request may go on, and the headers its answer carries."""

    allowed: bool
    headers: dict[str, str]


@dataclass
class _Window:
    opened: float
    count: int = 0


class FixedWindowThrottle:
    """Counts requests per key in fixed windows; thread-safe.

    `clock` (monotonic seconds) and `wall` (Unix time) are replaceable for tests.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._lock = threading.Lock()
        self._clock, self._wall = clock, wall
        self._windows: dict[str, _Window] = {}
        self.refusals: Counter[str] = Counter()
        self.served: Counter[str] = Counter()

    def hit(self, key: str, *, limit: int, window: float) -> Verdict:
        """Count one request of `key` against `limit` per `window` seconds.

        Returns the verdict with the headers to send; a limit of 0 means no limit (and no
        headers).
        """
        if limit <= 0:
            return Verdict(True, {})
        with self._lock:
            now = self._clock()
            current = self._windows.get(key)
            if current is None or now >= current.opened + window:
                current = self._windows[key] = _Window(opened=now)
            headers = {"X-RateLimit-Limit": str(limit)}
            if window != REAL_WINDOW:
                headers["RateLimit-Policy"] = f"{limit};w={window:g}"
            if current.count >= limit:
                self.refusals[key] += 1
                wait = max(1, math.ceil(current.opened + window - now))
                headers.update({
                    "X-RateLimit-Remaining": "0",
                    "Retry-After": str(wait),
                    "X-RateLimit-Reset": str(math.ceil(self._wall() + wait)),
                })
                return Verdict(False, headers)
            current.count += 1
            self.served[key] += 1
            headers["X-RateLimit-Remaining"] = str(limit - current.count)
            return Verdict(True, headers)

    def snapshot(self) -> dict[str, dict[str, int]]:
        """Requests counted and refused, per key label."""
        with self._lock:
            keys = sorted(set(self.refusals) | set(self.served))
            return {key: {"counted": self.served[key], "refused": self.refusals[key]}
                    for key in keys}

    def reset(self) -> None:
        """Forget every window and count."""
        with self._lock:
            self._windows.clear()
            self.refusals.clear()
            self.served.clear()


def key_label(token: str) -> str:
    """How a key is named in statistics: a short fingerprint, never the key itself."""
    if not token:
        return "no-key"
    return "key-" + hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()[:12]
