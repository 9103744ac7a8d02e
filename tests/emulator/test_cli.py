"""`reconciler emulator` as a user runs it: prints where it serves, serves, stops on Ctrl-C."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from reconciler.cli.main import main
from reconciler.emulator import Emulator, EmulatorError


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, env={}, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_serves_until_interrupted_and_exits_cleanly(tmp_path: Path) -> None:
    db = tmp_path / "emulator.db"
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "emulator", "--db", str(db), "--enable-admin",
         "--page-size", "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        settings = dict(process.stdout.readline().strip().split("=", 1) for _ in range(2))
        url, key = settings["CUSTOMGPT_BASE_URL"], settings["CUSTOMGPT_API_KEY"]
        assert url.startswith("http://127.0.0.1:")
        created = httpx.post(url + "/_emulator/projects", json={"id": 7, "name": "p"})
        assert created.status_code == 201
        listed = httpx.get(url + "/api/v1/projects/7/conversations",
                           headers={"Authorization": f"Bearer {key}"})
        assert listed.json()["data"]["per_page"] == 3
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=10)
    assert code == 0
    assert "Traceback" not in (process.stderr.read() if process.stderr else "")
    assert db.exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["emulator", "--host", "0.0.0.0"], "not a loopback address"),
    (["emulator", "--host", "192.0.2.10"], "--allow-remote"),
    (["emulator", "--error-rate", "1.5"], "error_rate"),
    (["emulator", "--latency-ms", "-3"], "latency_ms"),
    (["emulator", "--db", "/nonexistent-dir/x/emulator.db"], "cannot open"),
    (["emulator", "--query-credits", "-1"], "--query-credits: expected a whole number from 0 to"),
    (["emulator", "--query-credits", "2.5"], "--query-credits: expected a whole number from 0 to"),
    (["emulator", "--query-credits", "9" * 5000], "--query-credits: expected a whole number"),
    (["emulator", "--seed", "-1"], "--seed: expected a whole number from 0 to"),
    (["emulator", "--rate-limit-per-minute", "1" + "0" * 30],
     "--rate-limit-per-minute: expected a whole number from 0 to 1000000"),
    (["emulator", "--rate-limit", "1e308"], "rate_limit must be at most 1000000"),
    (["emulator", "--rate-limit", "nan"], "rate_limit must be a finite number, 0 or more"),
    (["emulator", "--error-rate", "nan"], "error_rate must be between 0 and 1"),
    (["emulator", "--drop-rate", "-0.1"], "drop_rate must be between 0 and 1"),
    (["emulator", "--commit-then-fail-rate", "inf"], "commit_then_fail_rate must be between"),
    (["emulator", "--latency-jitter-ms", "inf"], "latency_jitter_ms must be a finite number"),
    (["emulator", "--latency-ms", "1e9"], "latency_ms must be at most 600000"),
    (["emulator", "--rate-limit-window", "0"], "rate_limit_window must be from 0.001 to 3600"),
    (["emulator", "--send-delay-ms", "nan"], "--send-delay-ms must be between 0 and 600000"),
    (["emulator", "--port", "65536"], "--port: must be from 0 to 65535"),
    (["emulator", "--api-key", ""], "--api-key must be a key without surrounding spaces"),
    (["emulator", "--api-key", " key "], "--api-key must be a key without surrounding spaces"),
    (["emulator", "--member-key", "m "], "--member-key must be a key without surrounding spaces"),
    (["emulator", "--content", ""], "--content must name a directory"),
], ids=["any-address", "remote-address", "rate-above-one", "negative-latency", "bad-db-path",
        "negative-credits", "fractional-credits", "5000-digit-credits", "negative-seed",
        "huge-budget", "huge-rate-limit", "nan-rate-limit", "nan-error-rate",
        "negative-drop-rate", "infinite-commit-then-fail-rate", "infinite-jitter",
        "huge-latency", "zero-window", "nan-send-delay", "port-too-high", "empty-key",
        "key-with-spaces", "member-key-with-spaces", "empty-content"])
def test_bad_options_give_an_error_not_a_traceback(argv: list[str], message: str) -> None:
    code, out, err = run(argv)
    assert code == 1
    assert message in err
    assert "Traceback" not in err and out == ""
    assert "9" * 100 not in err  # a 5,000-digit value is not echoed back


def test_whole_numbers_in_range_reach_the_emulator() -> None:
    from reconciler.cli.parser import build_parser

    args = build_parser().parse_args(["emulator", "--query-credits", "0", "--seed", "7",
                                      "--rate-limit-per-minute", "1000000"])
    assert (args.query_credits, args.seed, args.rate_limit_per_minute) == (0, 7, 1_000_000)


@pytest.mark.parametrize("credits", [-1, True, 2.5], ids=["negative", "bool", "fraction"])
def test_the_query_credits_of_an_emulator_are_a_whole_number(credits: object) -> None:
    with Emulator(api_key="k") as emulator, pytest.raises(EmulatorError, match="query credits"):
        emulator.query_credits = credits  # type: ignore[assignment]


def test_a_given_key_is_not_printed(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "emulator", "--api-key", "s3cret-value-123"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(2)]
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
    stderr = process.stderr.read() if process.stderr else ""
    assert "s3cret-value-123" not in "".join(lines) + stderr
    assert lines[0].startswith("CUSTOMGPT_BASE_URL=http://127.0.0.1:")


def test_the_key_can_come_from_a_file(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("file-key-456\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "--api-key-file", str(key_file), "emulator"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip().split("=", 1)[1]
        accepted = httpx.get(url + "/api/v1/user", headers={"Authorization": "Bearer file-key-456"})
        refused = httpx.get(url + "/api/v1/user", headers={"Authorization": "Bearer sandbox-key"})
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
    assert (accepted.status_code, refused.status_code) == (200, 401)


@pytest.mark.parametrize(("option", "value"), [
    ("--latency-ms", "inf"), ("--latency-ms", "nan"), ("--latency-jitter-ms", "1e400"),
    ("--rate-limit", "nan")])
def test_a_non_finite_or_negative_rate_is_refused_at_start_up(option: str, value: str) -> None:
    process = subprocess.run(
        [sys.executable, "-m", "reconciler", "emulator", option, value],
        capture_output=True, text=True, timeout=30)  # a refused value ends at once
    assert process.returncode == 1
    assert "must be a finite number, 0 or more" in process.stderr
    assert "Traceback" not in process.stderr and process.stdout == ""
