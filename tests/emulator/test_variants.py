"""The emulator's variants of the real service, each seen over real sockets, and their flags."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from reconciler.cli.main import main
from reconciler.emulator import Emulator, VariantConfigError, Variants
from tests.conftest import TEST_API_KEY

PROJECT = 1001
CONV = f"/api/v1/projects/{PROJECT}/conversations"


@contextmanager
def served(**variants: Any) -> Iterator[tuple[Emulator, httpx.Client]]:
    """An emulator behaving as `variants`, with project 1001, and a client for it."""
    with Emulator(api_key=TEST_API_KEY, variants=Variants(**variants)) as emulator:
        emulator.start()
        emulator.ensure_project(PROJECT, "demo-bot")
        headers = {"Authorization": f"Bearer {TEST_API_KEY}"}
        with httpx.Client(base_url=emulator.base_url, headers=headers, timeout=10) as http:
            yield emulator, http


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, env={}, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def create(http: httpx.Client, name: str) -> dict[str, Any]:
    response = http.post(CONV, json={"name": name})
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def send(http: httpx.Client, session: str, prompt: str, **options: Any) -> httpx.Response:
    return http.post(f"{CONV}/{session}/messages", json={"prompt": prompt}, **options)


def test_spec_wire_is_the_documented_shape() -> None:
    with served() as (_, http):
        created = create(http, "Billing")
        assert (created["project_id"], created["created_by"]) == ("1001", "1")
        assert len(created["created_at"]) == 19 and created["created_at"][10] == " "
        message = send(http, created["session_id"], "Hi").json()["data"]
        assert message["conversation_id"] == created["id"] and message["citations"] == []


def test_observed_wire_is_what_the_real_service_answered() -> None:
    with served(wire="observed-2023") as (emulator, http):
        emulator.add_conversation(PROJECT, "visitor's", creator="visitor")
        created = create(http, "Who is Tom")
        assert (created["project_id"], created["created_by"]) == (PROJECT, 1)
        assert created["created_at"].endswith(".000000Z") and created["created_at"][10] == "T"
        assert created["project"]["id"] == PROJECT and "deleted_at" not in created
        listed = http.get(CONV).json()["data"]["data"]
        assert [c["created_by"] for c in listed] == [1, None]

        sent = send(http, created["session_id"], "Who is Tom").json()["data"]
        assert "conversation_id" not in sent and "metadata" not in sent
        assert sent["citations"] and all(isinstance(c, str) and c.endswith(".0")
                                         for c in sent["citations"])
        assert sent["created_at"].endswith("Z")
        for number in range(24):
            send(http, created["session_id"], f"question {number}")
        page = http.get(f"{CONV}/{created['session_id']}/messages").json()["data"]
        assert page["messages"]["per_page"] == 20 and len(page["messages"]["data"]) == 20
        assert page["conversation"]["project_id"] == PROJECT
        stamp = page["messages"]["data"][0]["created_at"]
        assert time.strptime(stamp, "%d %b %Y %I:%M:%S")  # "25 Jun 2023 05:01:11"


def test_observed_stream_starts_with_the_prompt_and_finishes_without_text() -> None:
    with served(wire="observed-2023") as (_, http):
        session = create(http, "Stream")["session_id"]
        answer = send(http, session, "Hello there", params={"stream": 1})
        assert answer.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(line[6:]) for line in answer.text.split("\n\n") if line]
        assert events[0] == {"status": "start", "prompt": "Hello there"}
        assert {e["status"] for e in events[1:-1]} == {"progress"}
        finish = events[-1]
        assert finish["status"] == "finish" and "message" not in finish
        assert finish["session_id"] == session and finish["created_at"].endswith("Z")


@pytest.mark.parametrize("stream", [1, True, "1", "true"], ids=["1", "true", "'1'", "'true'"])
def test_stream_in_the_json_body_streams(stream: object) -> None:
    with served() as (_, http):
        session = create(http, "Stream")["session_id"]
        answer = http.post(f"{CONV}/{session}/messages",
                           json={"prompt": "Hello", "stream": stream})
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")


def test_a_bad_stream_in_the_body_is_refused() -> None:
    with served() as (emulator, http):
        session = create(http, "Stream")["session_id"]
        answer = http.post(f"{CONV}/{session}/messages", json={"prompt": "Hi", "stream": [1]})
        assert answer.status_code == 400 and "stream" in answer.json()["data"]["message"]
        assert emulator.messages(PROJECT, session) == []


def test_team_filter_may_leave_out_the_owner() -> None:
    for excludes, expected in ((False, ["mine", "teammate's"]), (True, ["teammate's"])):
        with served(team_filter_excludes_owner=excludes) as (emulator, http):
            emulator.add_conversation(PROJECT, "mine", creator="me")
            emulator.add_conversation(PROJECT, "teammate's", creator="teammate")
            emulator.add_conversation(PROJECT, "visitor's", creator="visitor")
            listed = http.get(CONV, params={"userFilter": "team_member", "order": "asc"})
            assert [c["name"] for c in listed.json()["data"]["data"]] == expected
            assert listed.json()["data"]["total"] == len(expected)
            everything = http.get(CONV, params={"userFilter": "all"}).json()["data"]["total"]
            assert everything == 3


def test_trim_text_stores_names_and_prompts_stripped() -> None:
    with served(trim_text=True) as (emulator, http):
        created = create(http, "  Billing\n")
        assert created["name"] == "Billing"
        renamed = http.put(f"{CONV}/{created['session_id']}", json={"name": "\tRefunds "})
        assert renamed.json()["data"]["name"] == "Refunds"
        sent = send(http, created["session_id"], "What is the policy?\n").json()["data"]
        assert sent["user_query"] == "What is the policy?"
        assert [m["user_query"] for m in emulator.messages(PROJECT, created["session_id"])] == [
            "What is the policy?"]


NAMES = ["Billing", "billing", "Billing questions", "Old Billing", "Refunds"]


@pytest.mark.parametrize(("mode", "expected"), [
    ("exact", ["Billing"]),
    ("prefix", ["Billing", "Billing questions"]),
    ("contains", ["Billing", "Billing questions", "Old Billing"]),
    ("contains-ci", ["Billing", "billing", "Billing questions", "Old Billing"]),
], ids=["exact", "prefix", "contains", "contains-ci"])
def test_name_filter_modes(mode: str, expected: list[str]) -> None:
    with served(name_filter=mode) as (emulator, http):
        emulator.add_conversations(PROJECT, NAMES)
        listed = http.get(CONV, params={"name": "Billing", "order": "asc"}).json()["data"]
        assert [c["name"] for c in listed["data"]] == expected
        assert listed["total"] == len(expected)


def test_name_filter_takes_wildcards_literally() -> None:
    with served(name_filter="prefix") as (emulator, http):
        emulator.add_conversations(PROJECT, ["50% off", "50 percent", "5_0"])
        listed = http.get(CONV, params={"name": "50%"}).json()["data"]["data"]
        assert [c["name"] for c in listed] == ["50% off"]


def test_cached_repeat_stores_nothing_unless_no_cache() -> None:
    with served(cache_repeated_prompts=True) as (emulator, http):
        first = create(http, "First")["session_id"]
        second = create(http, "Second")["session_id"]
        original = send(http, first, "Hello").json()["data"]
        cached = send(http, second, "Hello").json()["data"]
        assert cached["id"] == original["id"]
        assert emulator.messages(PROJECT, second) == []
        fresh = send(http, second, "Hello", headers={"Cache-Control": "no-cache"}).json()["data"]
        assert fresh["id"] != original["id"]
        assert [m["user_query"] for m in emulator.messages(PROJECT, second)] == ["Hello"]


@pytest.mark.parametrize("commits", ["start", "end"])
def test_a_slow_model_stores_the_message_at_the_start_or_the_end(commits: str) -> None:
    with served(send_delay_ms=600, send_commits=commits) as (emulator, http):
        session = create(http, "Slow")["session_id"]
        seen_during: list[int] = []

        def watch() -> None:
            time.sleep(0.3)
            seen_during.append(len(emulator.messages(PROJECT, session)))

        watcher = threading.Thread(target=watch)
        watcher.start()
        started = time.monotonic()
        answer = send(http, session, "Take your time")
        took = time.monotonic() - started
        watcher.join()
        assert answer.status_code == 200 and took >= 0.6
        assert seen_during == [1 if commits == "start" else 0]
        assert len(emulator.messages(PROJECT, session)) == 1


def test_a_late_commit_happens_even_when_the_client_gave_up() -> None:
    with served(send_delay_ms=400, send_commits="end") as (emulator, http):
        session = create(http, "Slow")["session_id"]
        with pytest.raises(httpx.ReadTimeout):
            send(http, session, "Anyone there?", timeout=0.1)
        assert emulator.messages(PROJECT, session) == []
        deadline = time.monotonic() + 5
        while not emulator.messages(PROJECT, session) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [m["user_query"] for m in emulator.messages(PROJECT, session)] == ["Anyone there?"]


@pytest.mark.parametrize(("settings", "fragment"), [
    ({"wire": "openapi"}, "--wire must be one of spec, observed-2023"),
    ({"name_filter": "regex"}, "--name-filter must be one of"),
    ({"send_commits": "middle"}, "--send-commits must be one of start, end"),
    ({"send_delay_ms": float("inf")}, "--send-delay-ms must be between 0"),
    ({"send_delay_ms": -1.0}, "--send-delay-ms must be between 0"),
], ids=["wire", "name-filter", "send-commits", "delay-inf", "delay-negative"])
def test_invalid_variants_are_refused(settings: dict[str, Any], fragment: str) -> None:
    with pytest.raises(VariantConfigError, match=fragment):
        Variants(**settings)


def test_variants_can_change_while_serving() -> None:
    with served() as (emulator, http):
        emulator.variants = Variants(wire="observed-2023")
        assert create(http, "Now observed")["project_id"] == PROJECT


def test_the_emulator_command_refuses_a_bad_variant() -> None:
    code, _, err = run(["emulator", "--send-delay-ms", "nan"])
    assert code == 1 and "--send-delay-ms must be between 0" in err
    assert "Traceback" not in err
    code, _, _ = run(["emulator", "--name-filter", "regex"])
    assert code == 1  # a usage error


def test_the_emulator_command_serves_the_variants_it_is_given() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "emulator", "--enable-admin", "--wire",
         "observed-2023", "--trim-text", "--name-filter", "exact"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        settings = dict(process.stdout.readline().strip().split("=", 1) for _ in range(2))
        url, key = settings["CUSTOMGPT_BASE_URL"], settings["CUSTOMGPT_API_KEY"]
        httpx.post(url + "/_emulator/projects", json={"id": 7, "name": "p"})
        headers = {"Authorization": f"Bearer {key}"}
        conversations = url + "/api/v1/projects/7/conversations"
        created = httpx.post(conversations, json={"name": " Billing "}, headers=headers)
        assert created.json()["data"]["project_id"] == 7
        assert created.json()["data"]["name"] == "Billing"
        listed = httpx.get(conversations, params={"name": "Bill"}, headers=headers)
        assert listed.json()["data"]["total"] == 0
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=10)
    assert code == 0
    err = process.stderr.read() if process.stderr else ""
    assert "behaving as --wire observed-2023 --trim-text --name-filter exact" in err


def test_describe_names_the_flags_that_differ() -> None:
    assert Variants().describe() == ""
    variants = Variants(wire="observed-2023", trim_text=True, send_delay_ms=1500,
                        send_commits="end", name_filter="exact")
    assert variants.describe() == ("--wire observed-2023 --trim-text --send-delay-ms 1500 "
                                   "--send-commits end --name-filter exact")


def test_escape_prompts_stores_them_html_escaped() -> None:
    with served(escape_prompts=True) as (emulator, http):
        session = create(http, "Escaped")["session_id"]
        sent = send(http, session, "Q&A <please>").json()["data"]
        assert sent["user_query"] == "Q&amp;A &lt;please&gt;"
        assert emulator.messages(PROJECT, session)[0]["user_query"] == "Q&amp;A &lt;please&gt;"
