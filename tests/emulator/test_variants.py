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


# The 2025-2026 service. `userFilter=me` and the "Agent" error texts are in the vendor's OpenAPI
# document of October 2025 (Poll-The-People/customgpt-integrations, commit 230483cb,
# docs/openapi.json); it documents no `per_page` parameter on conversation listings, only the
# `per_page` field of the page. The 2023 stream (`start`, data-only events, string citations):
# Poll-The-People/customgpt-cookbook, commit ab828988,
# examples/Retrieve_messages_for_a_conversation.ipynb.


def owned_by_each(emulator: Emulator) -> None:
    for name, creator in (("mine", "me"), ("teammate's", "teammate"), ("visitor's", "visitor")):
        emulator.add_conversation(PROJECT, name, creator=creator)


def test_user_filter_me_lists_exactly_the_keys_users_conversations() -> None:
    with served() as (emulator, http):
        owned_by_each(emulator)
        create(http, "mine too")
        listed = http.get(CONV, params={"userFilter": "me", "order": "asc"}).json()["data"]
        assert [c["name"] for c in listed["data"]] == ["mine", "mine too"]
        assert listed["total"] == 2


def test_a_service_without_user_filter_me_refuses_it() -> None:
    with served(user_filter_me="unsupported") as (emulator, http):
        owned_by_each(emulator)
        refused = http.get(CONV, params={"userFilter": "me"})
        assert refused.status_code == 400
        assert refused.json()["data"]["message"] == (
            "The userFilter must be one of: all, anonymous, team_member")
        assert http.get(CONV, params={"userFilter": "team_member"}).json()["data"]["total"] == 2


@pytest.mark.parametrize(("asked", "served_per_page"), [
    ("25", 25), ("1", 1), ("100", 100), ("250", 100), (None, 10)],
    ids=["25", "1", "the-maximum", "above-the-maximum", "not-asked"])
def test_a_service_that_honours_per_page_serves_pages_of_that_size(
    asked: str | None, served_per_page: int
) -> None:
    with served(per_page="honoured") as (emulator, http):
        emulator.add_conversations(PROJECT, [f"c{i}" for i in range(130)])
        params = {"order": "asc"} | ({"per_page": asked} if asked else {})
        first = http.get(CONV, params=params).json()["data"]
        assert first["per_page"] == served_per_page == len(first["data"])
        assert first["last_page"] == -(-130 // served_per_page)
        second = http.get(CONV, params={**params, "page": 2}).json()["data"]
        assert second["data"][0]["name"] == f"c{served_per_page}"


def test_the_default_service_ignores_per_page_and_says_its_own() -> None:
    with served() as (emulator, http):
        emulator.add_conversations(PROJECT, [f"c{i}" for i in range(30)])
        page = http.get(CONV, params={"per_page": 25}).json()["data"]
        assert (page["per_page"], len(page["data"]), page["last_page"]) == (10, 10, 3)
        assert http.get(CONV, params={"per_page": "lots"}).status_code == 200


@pytest.mark.parametrize("asked", ["0", "-1", "ten", "9" * 5000], ids=["0", "-1", "ten", "huge"])
def test_a_per_page_that_is_not_a_page_size_is_refused_where_honoured(asked: str) -> None:
    with served(per_page="honoured") as (_, http):
        refused = http.get(CONV, params={"per_page": asked})
        assert refused.status_code == 400 and "per page" in refused.json()["data"]["message"]


@pytest.mark.parametrize(("texts", "word"), [("project", "Project"), ("agent", "Agent")])
def test_error_texts_name_a_project_or_an_agent(texts: str, word: str) -> None:
    with served(error_texts=texts) as (_, http):
        missing = http.get("/api/v1/projects/4040/conversations")
        assert missing.json()["data"]["message"] == f"{word} with id 4040 not found"
        bad = http.get("/api/v1/projects/abc/conversations")
        assert bad.json()["data"]["message"] == f"{word} id must be integer"
        assert (missing.status_code, bad.status_code) == (404, 400)


def sse(text: str) -> list[dict[str, str]]:
    """The events of a `text/event-stream` body, each its fields (`event`, `data`)."""
    events = []
    for block in text.split("\n\n"):
        if block:
            events.append(dict(line.split(": ", 1) for line in block.split("\n")))
    return events


def test_observed_2026_streams_name_each_event_and_cite_integers() -> None:
    with served(wire="observed-2026") as (_, http):
        session = create(http, "Stream")["session_id"]
        answer = send(http, session, "Hello there", params={"stream": 1})
        events = sse(answer.text)
        assert all(set(event) == {"event", "data"} for event in events)
        data = [json.loads(event["data"]) for event in events]
        assert [event["event"] for event in events] == [d["status"] for d in data]
        assert data[0] == {"status": "start", "prompt": "Hello there"}
        assert {d["status"] for d in data[1:-1]} == {"progress"}
        finish = data[-1]
        assert finish["status"] == "finish" and finish["session_id"] == session
        assert finish["citations"] and all(type(c) is int for c in finish["citations"])
        plain = send(http, session, "Hello there").json()["data"]
        assert plain["conversation_id"] and plain["metadata"]["request_source"] == "api"
        assert all(type(c) is int for c in plain["citations"])


@pytest.mark.parametrize("wire", ["spec", "observed-2023"])
def test_other_wires_stream_data_lines_only(wire: str) -> None:
    with served(wire=wire) as (_, http):
        session = create(http, "Stream")["session_id"]
        events = sse(send(http, session, "Hello", params={"stream": 1}).text)
        assert all(set(event) == {"data"} for event in events)


def test_the_new_variants_have_flags_and_are_described() -> None:
    variants = Variants(wire="observed-2026", user_filter_me="unsupported",
                        error_texts="agent", per_page="honoured")
    assert variants.describe() == ("--wire observed-2026 --user-filter-me unsupported "
                                   "--error-texts agent --per-page honoured")
    for settings, fragment in (({"user_filter_me": "maybe"}, "--user-filter-me must be one of"),
                               ({"error_texts": "bot"}, "--error-texts must be one of"),
                               ({"per_page": "always"}, "--per-page must be one of")):
        with pytest.raises(VariantConfigError, match=fragment):
            Variants(**settings)


def test_the_emulator_command_serves_the_new_variants() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "emulator", "--enable-admin", "--wire",
         "observed-2026", "--user-filter-me", "unsupported", "--per-page", "honoured",
         "--error-texts", "agent"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        settings = dict(process.stdout.readline().strip().split("=", 1) for _ in range(2))
        url, key = settings["CUSTOMGPT_BASE_URL"], settings["CUSTOMGPT_API_KEY"]
        httpx.post(url + "/_emulator/projects", json={"id": 7, "name": "p"})
        headers = {"Authorization": f"Bearer {key}"}
        conversations = url + "/api/v1/projects/7/conversations"
        me = httpx.get(conversations, params={"userFilter": "me"}, headers=headers)
        assert me.status_code == 400
        paged = httpx.get(conversations, params={"per_page": 50}, headers=headers)
        assert paged.json()["data"]["per_page"] == 50
        missing = httpx.get(url + "/api/v1/projects/8/conversations", headers=headers)
        assert missing.json()["data"]["message"] == "Agent with id 8 not found"
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=10)
    assert code == 0
    err = process.stderr.read() if process.stderr else ""
    assert ("behaving as --wire observed-2026 --user-filter-me unsupported --error-texts agent "
            "--per-page honoured") in err
