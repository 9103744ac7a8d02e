"""Injected faults as a client sees them: 5xx, commit-then-fail, drops, 429s, targeted rules."""

from __future__ import annotations

import httpx
import pytest

from reconciler.emulator import Emulator, FaultConfigError, FaultRule, Faults

PROJECT = 1001
CONV = f"/api/v1/projects/{PROJECT}/conversations"



def outcome(http: httpx.Client, method: str, path: str, **kwargs: object) -> str:
    """The status code as text, or "dropped" when the connection closed without an answer."""
    try:
        return str(http.request(method, path, **kwargs).status_code)  # type: ignore[arg-type]
    except httpx.TransportError:
        return "dropped"


def test_error_rate_one_fails_everything_and_writes_nothing(
    emulator: Emulator, http: httpx.Client
) -> None:
    emulator.faults.error_rate = 1.0
    statuses = {outcome(http, "POST", CONV, json={"name": f"c{i}"}) for i in range(20)}
    assert statuses <= {"500", "502", "503"}
    response = http.get(CONV)
    assert response.json()["status"] == "error"
    assert response.json()["data"]["code"] == response.status_code
    assert emulator.conversations(PROJECT) == []
    assert emulator.stats()["faults"]["server_error"] == 21


def test_commit_then_fail_writes_then_answers_500_or_drops(
    emulator: Emulator, http: httpx.Client
) -> None:
    emulator.faults = Faults(commit_then_fail_rate=1.0, seed=7)
    results = [outcome(http, "POST", CONV, json={"name": f"c{i}"}) for i in range(20)]
    assert set(results) == {"500", "dropped"}
    assert len(emulator.conversations(PROJECT)) == 20
    assert http.get(CONV).status_code == 200  # reads are not affected
    assert emulator.stats()["faults"]["commit_then_fail"] == 20


def test_drop_rate_one_closes_connections_without_doing_anything(
    emulator: Emulator, http: httpx.Client
) -> None:
    emulator.faults.drop_rate = 1.0
    assert outcome(http, "POST", CONV, json={"name": "x"}) == "dropped"
    emulator.faults.drop_rate = 0.0
    assert http.get(CONV).json()["data"]["total"] == 0


def test_rate_limit_answers_429_with_retry_after(emulator: Emulator, http: httpx.Client) -> None:
    emulator.faults.rate_limit = 1.0
    statuses = [http.get(CONV) for _ in range(3)]
    limited = [r for r in statuses if r.status_code == 429]
    assert statuses[0].status_code == 200 and limited
    assert int(limited[0].headers["Retry-After"]) >= 1
    assert limited[0].json()["data"]["code"] == 429


def test_targeted_rule_fires_exactly_times_times(emulator: Emulator, http: httpx.Client) -> None:
    sids = [http.post(CONV, json={"name": f"c{i}"}).json()["data"]["session_id"]
            for i in range(3)]
    admin = emulator.base_url + "/_emulator/faults"
    rule = {"method": "DELETE", "path": "/conversations/", "status": 503, "times": 2}
    assert httpx.put(admin, json={"rules": [rule]}).status_code == 200
    assert [outcome(http, "DELETE", f"{CONV}/{sid}") for sid in sids] == ["503", "503", "200"]
    assert len(emulator.conversations(PROJECT)) == 2
    assert httpx.get(admin).json()["data"]["rules"][0]["times"] == 0


@pytest.mark.parametrize(("mode", "expected", "deleted"), [
    ("fail", "500", False),
    ("drop", "dropped", False),
    ("commit-then-fail", "500", True),
    ("commit-then-drop", "dropped", True),
], ids=["fail", "drop", "commit-then-fail", "commit-then-drop"])
def test_targeted_rule_modes(
    emulator: Emulator, http: httpx.Client, mode: str, expected: str, deleted: bool
) -> None:
    sid = http.post(CONV, json={"name": "x"}).json()["data"]["session_id"]
    emulator.faults.rules.append(FaultRule(method="DELETE", path=sid, mode=mode))
    assert outcome(http, "DELETE", f"{CONV}/{sid}") == expected
    assert (emulator.conversations(PROJECT) == []) is deleted
    assert http.get(CONV).status_code == 200  # the rule fired once only


def test_the_same_seed_gives_the_same_faults() -> None:
    def run() -> list[str]:
        with Emulator(api_key="k", faults=Faults(error_rate=0.5, seed=42)) as emu:
            emu.start()
            emu.ensure_project(PROJECT)
            with httpx.Client(base_url=emu.base_url, headers={"Authorization": "Bearer k"}) as c:
                return [outcome(c, "GET", CONV) for _ in range(30)]

    first = run()
    assert first == run()
    assert {"200"} < set(first)


@pytest.mark.parametrize("body", [
    {"error_rate": 2},
    {"latency_ms": -1},
    {"error_rate": "high"},
    {"rules": [{"mode": "explode"}]},
    {"rules": [{"path": "("}]},
    {"rules": {"path": "x"}},
    {"volume": 11},
    ["error_rate"],
    {"latency_ms": 1e308},
    {"latency_jitter_ms": 600_001},
], ids=["rate-above-1", "negative-latency", "rate-not-number", "bad-mode", "bad-regex",
        "rules-not-list", "unknown-setting", "not-an-object", "latency-1e308",
        "jitter-over-10-minutes"])
def test_invalid_fault_settings_are_refused_and_change_nothing(
    emulator: Emulator, body: object
) -> None:
    admin = emulator.base_url + "/_emulator/faults"
    before = httpx.get(admin).json()["data"]
    response = httpx.put(admin, json=body)
    assert response.status_code == 400
    assert response.json()["status"] == "error"
    assert httpx.get(admin).json()["data"] == before


def test_fault_settings_round_trip_through_admin(emulator: Emulator) -> None:
    admin = emulator.base_url + "/_emulator/faults"
    changed = httpx.put(admin, json={"latency_ms": 5, "error_rate": 0.25, "seed": 3}).json()
    assert changed["data"]["latency_ms"] == 5.0 and changed["data"]["error_rate"] == 0.25
    assert emulator.faults.seed == 3


def test_faults_validate_their_settings() -> None:
    with pytest.raises(FaultConfigError, match="error_rate"):
        Faults(error_rate=1.5)
    with pytest.raises(FaultConfigError, match="mode"):
        FaultRule(mode="sometimes")


def test_admin_requests_are_never_faulted(emulator: Emulator) -> None:
    emulator.faults.error_rate = 1.0
    emulator.faults.drop_rate = 1.0
    assert httpx.get(emulator.base_url + "/_emulator/stats").status_code == 200
