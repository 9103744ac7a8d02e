"""Fault injection for the emulator: latency, 5xx, dropped connections, 429s and targeted rules.

`Faults` is the configuration (mutable at run time); `FaultInjector` turns it into a decision
for each request, using one seeded random generator so that a run can be reproduced.
"""

from __future__ import annotations

import math
import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

RULE_MODES = ("fail", "drop", "commit-then-fail", "commit-then-drop")
SERVER_ERRORS = (500, 502, 503)


MAX_LATENCY_MS = 600_000
MAX_RATE_LIMIT = 1_000_000.0  # requests per second
MAX_PER_MINUTE = 1_000_000


class FaultConfigError(ValueError):
    """A fault setting or rule is invalid; the message says which and why."""


@dataclass
class FaultRule:
    """Make matching requests fail, `times` times (None: every time).

    `mode`: `fail` answers `status` without doing anything; `drop` closes the connection without
    doing anything; `commit-then-fail` does the work then answers `status`; `commit-then-drop`
    does the work then closes the connection without an answer.
    """

    path: str = ".*"
    method: str | None = None
    status: int = 500
    mode: str = "fail"
    times: int | None = 1
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.mode not in RULE_MODES:
            modes = ", ".join(RULE_MODES)
            raise FaultConfigError(f"mode must be one of {modes}, not {self.mode!r}")
        if not 400 <= self.status <= 599:
            raise FaultConfigError(f"status must be between 400 and 599, not {self.status}")
        if self.times is not None and self.times < 0:
            raise FaultConfigError(f"times must be 0 or more, not {self.times}")
        try:
            self._pattern = re.compile(self.path)
        except re.error as error:
            raise FaultConfigError(f"path is not a valid regular expression: {error}") from None

    def matches(self, method: str, path: str) -> bool:
        """True if this rule applies to a request and has not used up its `times`."""
        if self.times == 0:
            return False
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self._pattern.search(path) is not None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, as accepted by `PUT /_emulator/faults`."""
        return {"method": self.method, "path": self.path, "status": self.status,
                "mode": self.mode, "times": self.times}

    @classmethod
    def from_dict(cls, data: Any) -> FaultRule:
        """Build a rule from its JSON form; raises FaultConfigError on a bad field."""
        if not isinstance(data, dict):
            raise FaultConfigError("each rule must be an object")
        unknown = set(data) - {"method", "path", "status", "mode", "times"}
        if unknown:
            raise FaultConfigError(f"unknown rule fields: {', '.join(sorted(unknown))}")
        method = _optional(data, "method", str)
        times = data.get("times", 1)
        if times is not None and (not isinstance(times, int) or isinstance(times, bool)):
            raise FaultConfigError("times must be an integer or null")
        return cls(path=_optional(data, "path", str) or ".*", method=method,
                   status=_optional(data, "status", int) or 500,
                   mode=_optional(data, "mode", str) or "fail", times=times)


def _optional(data: dict[str, Any], key: str, kind: type) -> Any:
    value = data.get(key)
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        raise FaultConfigError(f"{key} must be a {kind.__name__}")
    return value


@dataclass
class Faults:
    """What goes wrong, and how often. Rates are probabilities from 0 to 1.

    `rate_limit` is requests per second, a token bucket for fault tests (0: unlimited).
    `rate_limit_per_minute` is the real service's budget: that many requests per key in a fixed
    window of `rate_limit_window` seconds (60 unless time is scaled for a benchmark), with the
    `X-RateLimit-*` headers (0: unlimited). `seed` makes the randomness reproducible.
    """

    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    error_rate: float = 0.0
    commit_then_fail_rate: float = 0.0
    drop_rate: float = 0.0
    rate_limit: float = 0.0
    rate_limit_per_minute: int = 0
    rate_limit_window: float = 60.0
    seed: int | None = None
    rules: list[FaultRule] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise FaultConfigError if a setting is out of range."""
        for name in ("error_rate", "commit_then_fail_rate", "drop_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise FaultConfigError(f"{name} must be between 0 and 1, not {value}")
        for name in ("latency_ms", "latency_jitter_ms", "rate_limit"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise FaultConfigError(f"{name} must be a finite number, 0 or more, not {value}")
        for name in ("latency_ms", "latency_jitter_ms"):
            if getattr(self, name) > MAX_LATENCY_MS:
                raise FaultConfigError(f"{name} must be at most {MAX_LATENCY_MS} (10 minutes)")
        if self.rate_limit > MAX_RATE_LIMIT:
            raise FaultConfigError(f"rate_limit must be at most {MAX_RATE_LIMIT:.0f} requests "
                                   f"per second, not {self.rate_limit:g}")
        per_minute = self.rate_limit_per_minute
        if not 0 <= per_minute <= MAX_PER_MINUTE or per_minute != int(per_minute):
            raise FaultConfigError("rate_limit_per_minute must be a whole number from 0 to "
                                   f"{MAX_PER_MINUTE}, not {per_minute}")
        self.rate_limit_per_minute = int(per_minute)
        if not 0.001 <= self.rate_limit_window <= 3600:
            raise FaultConfigError("rate_limit_window must be from 0.001 to 3600 seconds, "
                                   f"not {self.rate_limit_window}")

    def to_dict(self) -> dict[str, Any]:
        """The JSON form served by `GET /_emulator/faults`."""
        return {"latency_ms": self.latency_ms, "latency_jitter_ms": self.latency_jitter_ms,
                "error_rate": self.error_rate, "commit_then_fail_rate": self.commit_then_fail_rate,
                "drop_rate": self.drop_rate, "rate_limit": self.rate_limit,
                "rate_limit_per_minute": self.rate_limit_per_minute,
                "rate_limit_window": self.rate_limit_window, "seed": self.seed,
                "rules": [rule.to_dict() for rule in self.rules]}

    def update(self, data: Any) -> None:
        """Apply a partial JSON update; raises FaultConfigError and changes nothing if invalid."""
        if not isinstance(data, dict):
            raise FaultConfigError("the body must be a JSON object")
        numbers = set(self.to_dict()) - {"rules", "seed"}
        unknown = set(data) - numbers - {"rules", "seed"}
        if unknown:
            raise FaultConfigError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        changes: dict[str, Any] = {}
        for key in numbers & set(data):
            value = data[key]
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise FaultConfigError(f"{key} must be a number")
            changes[key] = float(value)
        if "seed" in data:
            seed = data["seed"]
            if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
                raise FaultConfigError("seed must be an integer or null")
            changes["seed"] = seed
        if "rules" in data:
            if not isinstance(data["rules"], list):
                raise FaultConfigError("rules must be a list")
            changes["rules"] = [FaultRule.from_dict(rule) for rule in data["rules"]]
        candidate = Faults(**{**self._settings(), **changes})
        for key, value in candidate._settings().items():
            setattr(self, key, value)

    def _settings(self) -> dict[str, Any]:
        return {"latency_ms": self.latency_ms, "latency_jitter_ms": self.latency_jitter_ms,
                "error_rate": self.error_rate, "commit_then_fail_rate": self.commit_then_fail_rate,
                "drop_rate": self.drop_rate, "rate_limit": self.rate_limit,
                "rate_limit_per_minute": self.rate_limit_per_minute,
                "rate_limit_window": self.rate_limit_window, "seed": self.seed,
                "rules": self.rules}


class Action(Enum):
    """What the server does with a request."""

    PROCEED = "proceed"
    FAIL = "fail"
    DROP = "drop"


@dataclass(frozen=True)
class Decision:
    """What to do with a request: proceed, fail or drop now, and what to do after a write."""

    action: Action = Action.PROCEED
    status: int = 0
    retry_after: int | None = None
    after: Action = Action.PROCEED  # for a successful write: FAIL (answer after_status) or DROP
    after_status: int = 500


class FaultInjector:
    """Decides, request by request, which fault (if any) to inject, and counts them."""

    def __init__(self, faults: Faults) -> None:
        self._lock = threading.Lock()
        self.faults = faults
        self._random = random.Random(faults.seed)
        self._tokens = math.inf  # the bucket starts full
        self._refilled = time.monotonic()
        self.counts: Counter[str] = Counter()

    def reseed(self) -> None:
        """Restart the random sequence from `faults.seed`."""
        with self._lock:
            self._random = random.Random(self.faults.seed)

    def before(self, method: str, path: str, *, is_write: bool) -> Decision:
        """Decide what happens to a request before it is handled; sleeps for the latency."""
        with self._lock:
            decision = self._decide(method, path, is_write=is_write)
            delay = self._delay()
        if delay > 0:
            time.sleep(delay)
        return decision

    def _decide(self, method: str, path: str, *, is_write: bool) -> Decision:
        faults = self.faults
        wait = self._take_token()
        if wait is not None:
            self.counts["rate_limited"] += 1
            return Decision(Action.FAIL, 429, retry_after=max(1, math.ceil(wait)))
        rule = self._take_rule(method, path)
        if rule is not None:
            return self._rule_decision(rule)
        if faults.drop_rate and self._random.random() < faults.drop_rate:
            self.counts["dropped"] += 1
            return Decision(Action.DROP)
        if faults.error_rate and self._random.random() < faults.error_rate:
            self.counts["server_error"] += 1
            return Decision(Action.FAIL, self._random.choice(SERVER_ERRORS))
        if is_write and faults.commit_then_fail_rate and (
            self._random.random() < faults.commit_then_fail_rate
        ):
            after = Action.FAIL if self._random.random() < 0.5 else Action.DROP
            return Decision(after=after, after_status=500)
        return Decision()

    def _rule_decision(self, rule: FaultRule) -> Decision:
        self.counts["rule"] += 1
        retry_after = 1 if rule.status == 429 else None
        if rule.mode == "fail":
            return Decision(Action.FAIL, rule.status, retry_after=retry_after)
        if rule.mode == "drop":
            return Decision(Action.DROP)
        after = Action.FAIL if rule.mode == "commit-then-fail" else Action.DROP
        return Decision(after=after, after_status=rule.status)

    def count_committed_fault(self) -> None:
        """Count a commit-then-fail that was carried out (the write succeeded)."""
        with self._lock:
            self.counts["commit_then_fail"] += 1

    def _take_rule(self, method: str, path: str) -> FaultRule | None:
        for rule in self.faults.rules:
            if rule.matches(method, path):
                if rule.times is not None:
                    rule.times -= 1
                return rule
        return None

    def _take_token(self) -> float | None:
        """Token bucket; None if a token was taken, else the seconds until one is available."""
        rate = self.faults.rate_limit
        now = time.monotonic()
        if rate <= 0:
            self._tokens = math.inf
            self._refilled = now
            return None
        capacity = max(1.0, rate)
        self._tokens = min(capacity, self._tokens + (now - self._refilled) * rate)
        self._refilled = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return None
        return (1.0 - self._tokens) / rate

    def _delay(self) -> float:
        faults = self.faults
        jitter = 0.0
        if faults.latency_jitter_ms:
            jitter = self._random.uniform(0, faults.latency_jitter_ms)
        return (faults.latency_ms + jitter) / 1000.0

    def snapshot(self) -> dict[str, int]:
        """Faults injected so far, by kind."""
        with self._lock:
            return dict(self.counts)

    def reset_counts(self) -> None:
        """Forget the counts (rules and settings stay)."""
        with self._lock:
            self.counts.clear()
