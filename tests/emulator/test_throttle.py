"""The emulator's per-minute request budget, as the real service's throttle answers: a fixed
window per key, `X-RateLimit-*` headers on every answer, 429 with `Retry-After` once spent."""

from __future__ import annotations

import io
import time

import httpx
import pytest

from reconciler.cli.main import main
from reconciler.emulator import Emulator, FaultConfigError, Faults
from reconciler.emulator.throttle import FixedWindowThrottle, key_label
from tests.conftest import TEST_API_KEY

PROJECT = 1001
CONV = f"/api/v1/projects/{PROJECT}/conversations"


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_every_answer_carries_the_limit_and_a_falling_remaining(
    emulator: Emulator, http: httpx.Client
) -> None:
    emulator.faults.rate_limit_per_minute = 5
    answers = [http.get(CONV), http.post(CONV, json={"name": "a"}),
               http.get(f"{CONV}/no-such-session/messages")]
    assert [a.status_code for a in answers] == [200, 201, 404]
    assert [a.headers["X-RateLimit-Limit"] for a in answers] == ["5", "5", "5"]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["4", "3", "2"]
    assert "RateLimit-Policy" not in answers[0].headers  # the real window says nothing more


def test_a_spent_budget_is_refused_with_the_error_envelope_and_when_to_retry(
    emulator: Emulator, http: httpx.Client
) -> None:
    emulator.faults.rate_limit_per_minute = 2
    assert [http.get(CONV).status_code for _ in range(2)] == [200, 200]
    before = time.time()
    refused = http.post(CONV, json={"name": "not created"})
    assert refused.status_code == 429
    body = refused.json()
    assert body["status"] == "error" and body["data"] == {"code": 429,
                                                          "message": "Too Many Attempts."}
    assert refused.headers["X-RateLimit-Limit"] == "2"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    reset = int(refused.headers["X-RateLimit-Reset"])
    assert before + retry_after - 1 <= reset <= time.time() + retry_after + 1
    assert emulator.conversations(PROJECT) == []  # a refused request does nothing
    stats = httpx.get(emulator.base_url + "/_emulator/stats").json()["data"]
    assert stats["rate_limit"] == {key_label(TEST_API_KEY): {"counted": 2, "refused": 1}}
    assert TEST_API_KEY not in str(stats)


def test_the_window_opens_with_its_first_request_and_refusals_do_not_count() -> None:
    clock, wall = FakeTime(), FakeTime()
    throttle = FixedWindowThrottle(clock=clock, wall=wall)
    verdicts = [throttle.hit("k", limit=3, window=60) for _ in range(5)]
    assert [v.allowed for v in verdicts] == [True, True, True, False, False]
    clock.now += 45
    late = throttle.hit("k", limit=3, window=60)
    assert not late.allowed and late.headers["Retry-After"] == "15"
    assert late.headers["X-RateLimit-Reset"] == str(int(wall.now) + 15)
    clock.now += 15  # the window has ended: a new one opens with this request
    fresh = throttle.hit("k", limit=3, window=60)
    assert fresh.allowed and fresh.headers["X-RateLimit-Remaining"] == "2"
    assert throttle.hit("other", limit=3, window=60).headers["X-RateLimit-Remaining"] == "2"
    assert throttle.snapshot() == {"k": {"counted": 4, "refused": 3},
                                   "other": {"counted": 1, "refused": 0}}


def test_a_scaled_window_is_advertised_for_benchmarks() -> None:
    throttle = FixedWindowThrottle(clock=FakeTime(), wall=FakeTime())
    verdict = throttle.hit("k", limit=120, window=6)
    assert verdict.headers["RateLimit-Policy"] == "120;w=6"


def test_no_budget_means_no_headers(emulator: Emulator, http: httpx.Client) -> None:
    answer = http.get(CONV)
    assert "X-RateLimit-Limit" not in answer.headers


def test_unauthenticated_requests_are_not_counted(emulator: Emulator) -> None:
    emulator.faults.rate_limit_per_minute = 1
    emulator.ensure_project(PROJECT)
    for _ in range(3):
        answer = httpx.get(emulator.base_url + CONV, headers={"Authorization": "Bearer wrong"})
        assert answer.status_code == 401
    assert emulator.refusals() == 0


def test_the_test_controls_set_the_budget_and_reset_it(emulator: Emulator,
                                                      http: httpx.Client) -> None:
    admin = emulator.base_url + "/_emulator/faults"
    changed = httpx.put(admin, json={"rate_limit_per_minute": 1, "rate_limit_window": 30})
    assert changed.status_code == 200
    assert changed.json()["data"]["rate_limit_per_minute"] == 1
    assert http.get(CONV).headers["X-RateLimit-Limit"] == "1"
    assert http.get(CONV).status_code == 429
    assert httpx.post(emulator.base_url + "/_emulator/reset").status_code == 200
    assert httpx.get(emulator.base_url + "/_emulator/stats").json()["data"]["rate_limit"] == {}


@pytest.mark.parametrize(
    "settings",
    [{"rate_limit_per_minute": -1}, {"rate_limit_per_minute": 1.5},
     {"rate_limit_per_minute": float("nan")}, {"rate_limit_per_minute": 10**7},
     {"rate_limit_window": 0}, {"rate_limit_window": float("inf")}],
    ids=["negative", "fraction", "nan", "huge", "zero-window", "endless-window"],
)
def test_impossible_budgets_are_refused(settings: dict[str, float]) -> None:
    with pytest.raises(FaultConfigError):
        Faults(**settings)  # type: ignore[arg-type]


def test_the_command_line_flag_sets_the_budget() -> None:
    err = io.StringIO()
    code = main(["emulator", "--rate-limit-per-minute", "-5"], env={}, stdout=io.StringIO(),
                stderr=err)
    assert code == 1 and "--rate-limit-per-minute: expected a whole number from 0 to 1000000" \
        in err.getvalue()


def test_the_command_line_flags_reach_the_emulator() -> None:
    from reconciler.cli.parser import build_parser
    from reconciler.emulator.cli import faults_from_args

    args = build_parser().parse_args(
        ["emulator", "--rate-limit-per-minute", "90", "--rate-limit-window", "6"])
    faults = faults_from_args(args)
    assert (faults.rate_limit_per_minute, faults.rate_limit_window) == (90, 6.0)
