"""The attempt engine (`reconciler/api/engine.py`), through the client's calls, when things go
wrong: retries, ambiguous writes (their result looked for before trying again), shifting
listings, malformed answers, and the token staying secret through all of it.

The emulator's fault rules produce what a real server can do; an injected
httpx.MockTransport produces only what the emulator cannot (malformed bodies, inconsistent
pages, network exceptions).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, TypeVar

import httpx
import pytest

from reconciler.api.client import Client, ClientSettings, ClientStats, RetryPolicy, Secret
from reconciler.emulator import Emulator, FaultRule
from reconciler.errors import (
    ApiError,
    AuthError,
    CreditsExhaustedError,
    ListingError,
    NotFoundError,
)

KEY = "test-key-0123456789"
PROJECT = 4242
LIST_PATH = f"/api/v1/projects/{PROJECT}/conversations"
T = TypeVar("T")
Handler = Callable[[httpx.Request], httpx.Response]


class RecordedSleep:
    """Stands in for asyncio.sleep: remembers the delays and advances a fake clock."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.now = 0.0

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def settings(
    base_url: str = "http://127.0.0.1:9", *, policy: RetryPolicy | None = None, key: str = KEY
) -> ClientSettings:
    return ClientSettings(
        api_key=Secret(key), base_url=base_url, parallelism=4, retry=policy or RetryPolicy()
    )


def run(
    config: ClientSettings,
    action: Callable[[Client], Awaitable[T]],
    *,
    handler: Handler | None = None,
    sleep: RecordedSleep | None = None,
    uniform: Callable[[float, float], float] = lambda low, high: high,
) -> tuple[T, ClientStats]:
    """Run `action` with a fresh client whose waits are recorded, not waited."""
    sleeper = sleep or RecordedSleep()
    transport = httpx.MockTransport(handler) if handler is not None else None

    async def main() -> tuple[T, ClientStats]:
        async with Client(
            config, transport=transport, sleep=sleeper, uniform=uniform, clock=sleeper.clock
        ) as client:
            return await action(client), client.stats

    return asyncio.run(main())


def requests_by_method(emulator: Emulator, method: str) -> int:
    return int(emulator.stats()["requests"].get(method, 0))


# -- wire helpers for MockTransport ------------------------------------------------------------


def conversation(number: int, name: str | None = None) -> dict[str, Any]:
    return {
        "id": number, "session_id": f"session-{number}", "name": name or f"c{number}",
        "project_id": str(PROJECT), "created_by": "1",
        "created_at": "2024-01-01 00:00:00", "updated_at": "2024-01-01 00:00:00",
    }


def page(number: int, items: list[Any], *, total: int, per_page: int = 2) -> dict[str, Any]:
    return {
        "current_page": number, "data": items, "per_page": per_page, "total": total,
        "last_page": max(1, math.ceil(total / per_page)),
    }


def success(data: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json={"status": "success", "data": data})


def failure(status: int, message: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"status": "error", "url": "x", "data": {"code": status, "message": message}}
    return httpx.Response(status, json=body, headers=headers)


def scripted_listing(rounds: list[dict[int, dict[str, Any]]]) -> tuple[Handler, list[int]]:
    """A handler that serves round r's pages; each request for page 1 starts the next round
    (the last round repeats). Also returns the list of page numbers requested."""
    requested: list[int] = []

    def handle(request: httpx.Request) -> httpx.Response:
        number = int(request.url.params["page"])
        requested.append(number)
        current = min(requested.count(1), len(rounds)) - 1
        return success(rounds[current][number])

    return handle, requested


# -- retries of idempotent calls -------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504], ids=str)
def test_listing_recovers_from_server_errors(paged: Emulator, status: int) -> None:
    paged.add_conversations(PROJECT, [f"c{n}" for n in range(7)])
    paged.faults.rules.append(
        FaultRule(path="conversations$", method="GET", status=status, times=2))
    sleep = RecordedSleep()
    listing, stats = run(settings(paged.base_url), lambda c: c.list_conversations(PROJECT),
                         sleep=sleep)
    assert [c.name for c in listing] == [f"c{n}" for n in range(7)]
    assert stats.retries == 2
    assert sleep.delays == [0.5, 1.0]  # capped exponential backoff at its upper bound


def test_backoff_is_jittered_between_zero_and_the_cap(paged: Emulator) -> None:
    paged.faults.rules.append(FaultRule(path="user$", status=503, times=5))
    sleep = RecordedSleep()
    bounds: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        bounds.append((low, high))
        return (low + high) / 2

    policy = RetryPolicy(backoff_base=1.0, backoff_cap=5.0)
    run(settings(paged.base_url, policy=policy), lambda c: c.current_user(), sleep=sleep,
        uniform=uniform)
    assert bounds == [(0.0, 1.0), (0.0, 2.0), (0.0, 4.0), (0.0, 5.0), (0.0, 5.0)]
    assert sleep.delays == [0.5, 1.0, 2.0, 2.5, 2.5]


def test_rate_limit_honours_retry_after(paged: Emulator) -> None:
    paged.faults.rules.append(FaultRule(path="user$", status=429, times=1))  # Retry-After: 1
    sleep = RecordedSleep()
    user, stats = run(settings(paged.base_url), lambda c: c.current_user(), sleep=sleep)
    assert user.id
    assert sleep.delays == [1.0]
    assert stats.retries == 1


@pytest.mark.parametrize(
    ("header", "low", "high"),
    [
        ("7", 7.0, 7.0),
        ("2.5", 2.5, 2.5),
        ("3600", 60.0, 60.0),
        ("HTTP-DATE+30", 25.0, 30.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0, 0.0),
        ("soon", 1.0, 1.0),
    ],
    ids=["seconds", "fraction", "capped", "http-date", "date-in-past", "unreadable-uses-backoff"],
)
def test_retry_after_forms(header: str, low: float, high: float) -> None:
    if header == "HTTP-DATE+30":
        header = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    answers = iter([failure(429, "Too Many Requests", {"Retry-After": header})])

    def handle(request: httpx.Request) -> httpx.Response:
        return next(answers, success({"id": 1, "name": "n", "email": "e@x"}))

    sleep = RecordedSleep()
    policy = RetryPolicy(backoff_base=1.0)
    _, stats = run(settings(policy=policy), lambda c: c.current_user(), handler=handle,
                   sleep=sleep)
    assert stats.requests == 2
    assert low <= sum(sleep.delays) <= high  # the wait before the second request


def test_gives_up_after_max_attempts_with_a_clear_message(paged: Emulator) -> None:
    paged.faults.rules.append(
        FaultRule(path="conversations$", method="GET", status=503, times=None))
    with pytest.raises(ApiError) as caught:
        run(settings(paged.base_url), lambda c: c.list_conversations(PROJECT))
    assert str(caught.value) == (
        "listing conversations of project 4242 failed: HTTP 503 (Service Unavailable) "
        "after 6 attempts"
    )
    assert caught.value.status == 503 and caught.value.retryable
    assert requests_by_method(paged, "GET") == 6


def test_gives_up_at_the_deadline() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return failure(500, "oops")

    sleep = RecordedSleep()
    policy = RetryPolicy(max_attempts=100, backoff_base=4.0, backoff_cap=4.0, deadline=10.0)
    with pytest.raises(ApiError, match="after 3 attempts"):
        run(settings(policy=policy), lambda c: c.current_user(), handler=handle, sleep=sleep)
    assert sleep.delays == [4.0, 4.0]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (httpx.ConnectError, "could not connect to 127.0.0.1:9 (ConnectError)"),
        (httpx.ConnectTimeout, "no answer within 30 s (ConnectTimeout)"),
        (httpx.ReadTimeout, "no answer within 30 s (ReadTimeout)"),
        (httpx.RemoteProtocolError, "the connection broke (RemoteProtocolError)"),
        (httpx.ReadError, "the connection broke (ReadError)"),
    ],
    ids=["connect", "connect-timeout", "read-timeout", "protocol", "read"],
)
def test_network_errors_are_retried_then_reported(
    error: type[httpx.TransportError], expected: str
) -> None:
    calls: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        # an exception whose text carries the header must not leak it
        raise error(f"failed with {request.headers['Authorization']}", request=request)

    with pytest.raises(ApiError) as caught:
        run(settings(), lambda c: c.current_user(), handler=handle)
    assert str(caught.value) == f"reading the API key's user failed: {expected} after 6 attempts"
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    assert len(calls) == 6


def test_dropped_connection_is_retried(paged: Emulator) -> None:
    paged.faults.rules.append(FaultRule(path="user$", mode="drop", times=1))
    user, stats = run(settings(paged.base_url), lambda c: c.current_user())
    assert user.id and stats.retries == 1


def test_rename_is_retried(paged: Emulator) -> None:
    session = paged.add_conversation(PROJECT, "Old")["session_id"]
    paged.faults.rules.append(FaultRule(path=session, method="PUT", mode="commit-then-fail"))
    renamed, stats = run(settings(paged.base_url),
                         lambda c: c.rename_conversation(PROJECT, session, "New"))
    assert renamed.name == "New" and stats.retries == 1
    assert [c["name"] for c in paged.conversations(PROJECT)] == ["New"]


def test_delete_answered_404_on_a_retry_is_success(paged: Emulator) -> None:
    session = paged.add_conversation(PROJECT, "Doomed")["session_id"]
    paged.faults.rules.append(FaultRule(path=session, method="DELETE", mode="commit-then-fail"))
    _, stats = run(settings(paged.base_url), lambda c: c.delete_conversation(PROJECT, session))
    assert paged.conversations(PROJECT) == []
    assert requests_by_method(paged, "DELETE") == 2 and stats.retries == 1


def test_delete_answered_404_at_once_is_not_found(paged: Emulator) -> None:
    with pytest.raises(NotFoundError):
        run(settings(paged.base_url), lambda c: c.delete_conversation(PROJECT, "gone"))
    assert requests_by_method(paged, "DELETE") == 1


@pytest.mark.parametrize("status", [401, 403], ids=str)
def test_auth_errors_are_never_retried(status: int) -> None:
    calls: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return failure(status, "API Token is either missing or invalid")

    with pytest.raises(AuthError, match=rf"rejected the key \(HTTP {status} "):
        run(settings(), lambda c: c.list_conversations(PROJECT), handler=handle)
    assert len(calls) == 1


def test_client_errors_are_not_retried_and_quote_the_server() -> None:
    calls: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return failure(400, "Name is too long")

    with pytest.raises(ApiError) as caught:
        run(settings(), lambda c: c.rename_conversation(PROJECT, "s-1", "x" * 300),
            handler=handle)
    assert "HTTP 400 (Bad Request): Name is too long" in str(caught.value)
    assert len(calls) == 1


# -- writes that may or may not have happened ------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "posts"),
    [("fail", 2), ("drop", 2), ("commit-then-fail", 1), ("commit-then-drop", 1)],
    ids=["refused", "dropped", "committed-then-500", "committed-then-dropped"],
)
@pytest.mark.parametrize("listed_before", [True, False], ids=["after-listing", "cold"])
def test_create_after_an_ambiguous_failure_makes_exactly_one(
    paged: Emulator, mode: str, posts: int, listed_before: bool
) -> None:
    older = paged.add_conversation(PROJECT, "Billing")  # same name, already there: not ours
    paged.faults.rules.append(FaultRule(path="conversations$", method="POST", mode=mode))

    async def create(client: Client) -> Any:
        if listed_before:
            await client.list_conversations(PROJECT)
        return await client.create_conversation(PROJECT, "Billing")

    created, _ = run(settings(paged.base_url), create)
    billing = [c for c in paged.conversations(PROJECT) if c["name"] == "Billing"]
    assert len(billing) == 2
    assert created.session_id == billing[1]["session_id"] != older["session_id"]
    assert requests_by_method(paged, "POST") == posts


def test_create_refused_with_429_is_retried_without_checking(paged: Emulator) -> None:
    paged.faults.rules.append(FaultRule(path="conversations$", method="POST", status=429))

    async def create(client: Client) -> Any:
        await client.list_conversations(PROJECT)
        return await client.create_conversation(PROJECT, "Billing")

    created, _ = run(settings(paged.base_url), create)
    assert [c["session_id"] for c in paged.conversations(PROJECT)] == [created.session_id]
    assert requests_by_method(paged, "GET") == 1  # the listing; no check after a refusal


def test_create_ignores_a_same_named_conversation_of_another_user(paged: Emulator) -> None:
    paged.faults.rules.append(FaultRule(path="conversations$", method="POST", mode="fail"))

    async def create(client: Client) -> Any:
        await client.list_conversations(PROJECT)
        paged.add_conversation(PROJECT, "Billing", creator="teammate")  # lands before the check
        return await client.create_conversation(PROJECT, "Billing")

    created, _ = run(settings(paged.base_url), create)
    owners = sorted(str(c["created_by"]) for c in paged.conversations(PROJECT))
    assert created.created_by in owners and len(owners) == 2
    assert requests_by_method(paged, "POST") == 2


@pytest.mark.parametrize(
    ("mode", "posts"),
    [("fail", 2), ("drop", 2), ("commit-then-fail", 1), ("commit-then-drop", 1)],
    ids=["refused", "dropped", "committed-then-500", "committed-then-dropped"],
)
def test_send_after_an_ambiguous_failure_sends_exactly_once(
    paged: Emulator, mode: str, posts: int
) -> None:
    session = paged.add_conversation(PROJECT, "Thread")["session_id"]
    paged.add_message(PROJECT, session, "Same question")  # an earlier identical prompt
    paged.faults.rules.append(FaultRule(path="messages$", method="POST", mode=mode))
    message, _ = run(settings(paged.base_url),
                     lambda c: c.send_message(PROJECT, session, "Same question"))
    stored = paged.messages(PROJECT, session)
    assert [m["user_query"] for m in stored] == ["Same question", "Same question"]
    assert message.id == stored[1]["id"]
    assert requests_by_method(paged, "POST") == posts


def test_write_reports_failure_when_it_did_not_happen(paged: Emulator) -> None:
    paged.faults.rules.append(
        FaultRule(path="conversations$", method="POST", mode="fail", times=None)
    )
    with pytest.raises(ApiError, match=r"creating conversation 'Billing' in project 4242 failed: "
                       r"HTTP 500 \(Internal Server Error\) after 6 attempts"):
        run(settings(paged.base_url), lambda c: c.create_conversation(PROJECT, "Billing"))
    assert paged.conversations(PROJECT) == []


def test_exhausted_credits_stop_at_once() -> None:
    posts: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            posts.append(request)
            return failure(429, "You have exhausted your current query credits.")
        return success({"conversation": conversation(1), "messages": page(1, [], total=0)})

    with pytest.raises(CreditsExhaustedError, match="query credits are exhausted"):
        run(settings(), lambda c: c.send_message(PROJECT, "session-1", "hi"), handler=handle)
    assert len(posts) == 1


# -- listings that shift -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "first_round",
    [
        {1: page(1, [conversation(1), conversation(2)], total=6),
         2: page(2, [conversation(4), conversation(5)], total=5),
         3: page(3, [conversation(6)], total=5)},
        {1: page(1, [conversation(1), conversation(2)], total=6),
         2: page(2, [conversation(2), conversation(3)], total=6),
         3: page(3, [conversation(4), conversation(5)], total=6)},
        {1: page(1, [conversation(1), conversation(2)], total=6),
         2: page(2, [conversation(3), conversation(4)], total=6),
         3: page(3, [conversation(5)], total=6)},
        {1: page(1, [conversation(1), conversation(2)], total=6),
         2: page(2, [conversation(3), conversation(4)], total=6, per_page=3),
         3: page(3, [conversation(5), conversation(6)], total=6)},
    ],
    ids=["total-changed", "duplicate-id", "count-short-of-total", "page-count-changed"],
)
def test_a_shifted_listing_is_read_again(first_round: dict[int, dict[str, Any]]) -> None:
    steady = {n: page(n, [conversation(2 * n - 1), conversation(2 * n)], total=6)
              for n in (1, 2, 3)}
    handle, requested = scripted_listing([first_round, steady])
    listing, stats = run(settings(), lambda c: c.list_conversations(PROJECT), handler=handle)
    assert [c.id for c in listing] == [1, 2, 3, 4, 5, 6]
    assert stats.relists == 1
    assert requested.count(1) == 2


def test_a_listing_that_never_settles_fails() -> None:
    rounds = [
        {1: page(1, [conversation(1), conversation(2)], total=4 + r),
         2: page(2, [conversation(3), conversation(4)], total=5 + r),
         3: page(3, [conversation(5)], total=5 + r)}
        for r in range(10)
    ]
    handle, requested = scripted_listing(rounds)
    policy = RetryPolicy(max_relists=2)
    with pytest.raises(ListingError) as caught:
        run(settings(policy=policy), lambda c: c.list_conversations(PROJECT), handler=handle)
    assert str(caught.value).startswith(
        "listing conversations of project 4242 kept changing while it was read"
    )
    assert "gave up after 3 reads" in str(caught.value)
    assert requested.count(1) == 3


def test_a_page_that_finally_fails_fails_the_whole_listing() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        number = int(request.url.params["page"])
        if number == 2:
            return failure(503, "unavailable")
        return success(page(number, [conversation(2 * number - 1), conversation(2 * number)],
                            total=6))

    with pytest.raises(ApiError) as caught:
        run(settings(), lambda c: c.list_conversations(PROJECT), handler=handle)
    assert str(caught.value) == (
        "listing conversations of project 4242 failed: HTTP 503 (Service Unavailable) "
        "after 6 attempts"
    )


def test_listing_keeps_at_most_parallelism_requests_in_flight() -> None:
    state = {"now": 0, "peak": 0}

    async def handle(request: httpx.Request) -> httpx.Response:
        state["now"] += 1
        state["peak"] = max(state["peak"], state["now"])
        await asyncio.sleep(0.001)
        state["now"] -= 1
        number = int(request.url.params["page"])
        return success(page(number, [conversation(2 * number - 1), conversation(2 * number)],
                            total=40))

    config = ClientSettings(api_key=Secret(KEY), base_url="http://127.0.0.1:9", parallelism=3)

    async def main() -> list[Any]:
        async with Client(config, transport=httpx.MockTransport(handle)) as client:
            return await client.list_conversations(PROJECT)

    listing = asyncio.run(main())
    assert len(listing) == 40
    assert state["peak"] == 3


def churn_while_listing(
    emulator: Emulator, change: Callable[[int], None], *, changes: int, listings: int = 4
) -> tuple[list[list[Any]], ClientStats]:
    """List the project at least `listings` times, and until a thread started with the first
    listing has made `changes` changes."""
    stop = threading.Event()

    def churn() -> None:
        for number in range(changes):
            if stop.is_set():
                return
            change(number)
            stop.wait(0.002)

    writer = threading.Thread(target=churn)

    async def list_repeatedly(client: Client) -> list[list[Any]]:
        done: list[list[Any]] = []
        writer.start()
        while len(done) < listings or (writer.is_alive() and len(done) < 100):
            done.append(await client.list_conversations(PROJECT))
        return done

    emulator.faults.latency_ms = 1.0  # each page takes a little while, as over a network
    try:
        return run(settings(emulator.base_url, policy=RetryPolicy(max_relists=50)),
                   list_repeatedly)
    finally:
        stop.set()
        if writer.is_alive():
            writer.join()


def assert_each_once_in_order(listing: list[Any], lasting: set[str]) -> None:
    seen = [c.session_id for c in listing]
    assert len(seen) == len(set(seen))
    assert lasting <= set(seen)
    assert [c.id for c in listing] == sorted(c.id for c in listing)


def test_listing_while_conversations_are_deleted_shows_every_lasting_one_once(
    paged: Emulator,
) -> None:
    names = [name for n in range(40) for name in (f"stable {n:02d}", f"victim {n:02d}")]
    seeded = paged.add_conversations(PROJECT, names)
    lasting = {c["session_id"] for c in seeded if c["name"].startswith("stable")}
    victims = [c["session_id"] for c in seeded if c["name"].startswith("victim")]

    def delete(number: int) -> None:
        paged.store.delete_conversation(PROJECT, victims[number])

    listings, stats = churn_while_listing(paged, delete, changes=len(victims))
    for listing in listings:
        assert_each_once_in_order(listing, lasting)
    assert stats.relists >= 1  # deletions shifted rows between pages while they were read


def test_listing_while_conversations_are_created_shows_every_lasting_one_once(
    paged: Emulator,
) -> None:
    seeded = paged.add_conversations(PROJECT, [f"stable {n:02d}" for n in range(60)])
    lasting = {c["session_id"] for c in seeded}

    def create(number: int) -> None:
        paged.add_conversation(PROJECT, f"new {number}")

    listings, _ = churn_while_listing(paged, create, changes=60)
    for listing in listings:
        assert_each_once_in_order(listing, lasting)


# -- malformed answers -------------------------------------------------------------------------


def good_page() -> dict[str, Any]:
    return page(1, [conversation(1)], total=1)


def with_item(**changes: Any) -> dict[str, Any]:
    item = {**conversation(1), **changes}
    return page(1, [{k: v for k, v in item.items() if v is not ...}], total=1)


def json_body(body: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body).encode(),
                          headers={"Content-Type": "application/json"})


def raw_body(text: str, content_type: str = "application/json") -> httpx.Response:
    return httpx.Response(200, content=text.encode(), headers={"Content-Type": content_type})


MALFORMED = {
    "empty": raw_body(""),
    "plain-text": raw_body("OK", "text/plain"),
    "html-error-page": raw_body("<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html"),
    "truncated-json": raw_body('{"status": "success", "data": {"current_page": 1, "da'),
    "not-utf8": httpx.Response(200, content=b"\xff\xfe\x00garbage",
                               headers={"Content-Type": "application/json"}),
    "json-list": json_body([]),
    "json-null": json_body(None),
    "no-status": json_body({"data": good_page()}),
    "status-error-with-200": json_body({"status": "error", "data": {"code": 500}}),
    "no-data": json_body({"status": "success"}),
    "data-null": json_body({"status": "success", "data": None}),
    "data-is-list": json_body({"status": "success", "data": [conversation(1)]}),
    "page-without-total": json_body({"status": "success", "data": {
        k: v for k, v in good_page().items() if k != "total"}}),
    "page-without-last-page": json_body({"status": "success", "data": {
        k: v for k, v in good_page().items() if k != "last_page"}}),
    "items-not-a-list": json_body({"status": "success", "data": {**good_page(), "data": {}}}),
    "item-not-an-object": json_body({"status": "success", "data": {**good_page(), "data": [7]}}),
    "total-is-text": json_body({"status": "success", "data": {**good_page(), "total": "many"}}),
    "per-page-zero": json_body({"status": "success", "data": {**good_page(), "per_page": 0}}),
    "wrong-page-number": json_body({"status": "success", "data": {**good_page(),
                                                                  "current_page": 2}}),
    "id-missing": json_body({"status": "success", "data": with_item(id=...)}),
    "id-is-text": json_body({"status": "success", "data": with_item(id="abc")}),
    "id-is-boolean": json_body({"status": "success", "data": with_item(id=True)}),
    "id-is-float": json_body({"status": "success", "data": with_item(id=1.5)}),
    "session-id-null": json_body({"status": "success", "data": with_item(session_id=None)}),
    "name-is-number": json_body({"status": "success", "data": with_item(name=5)}),
    "project-id-is-list": json_body({"status": "success", "data": with_item(project_id=[1])}),
    "created-by-is-object": json_body({"status": "success", "data": with_item(created_by={})}),
    "created-at-is-number": json_body({"status": "success", "data": with_item(created_at=5)}),
}


@pytest.mark.parametrize("response", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_listing_is_an_api_error_naming_the_call(response: httpx.Response) -> None:
    calls: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(response.status_code, content=response.content,
                              headers=response.headers)

    with pytest.raises(ApiError) as caught:
        run(settings(), lambda c: c.list_conversations(PROJECT), handler=handle)
    assert type(caught.value) is ApiError
    assert str(caught.value).startswith(
        "listing conversations of project 4242 failed: the API answered with an unexpected body ("
    )
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("action", "data", "call"),
    [
        (lambda c: c.current_user(), {"id": 1, "name": "n"}, "reading the API key's user"),
        (lambda c: c.get_project(PROJECT), {"id": PROJECT}, "reading project 4242"),
        (lambda c: c.rename_conversation(PROJECT, "session-1", "x"), {"id": 1},
         "renaming conversation session-1 in project 4242 to 'x'"),
        (lambda c: c.create_conversation(PROJECT, "x"), "created",
         "creating conversation 'x' in project 4242"),
        (lambda c: c.get_transcript(PROJECT, "session-1"), {"messages": good_page()},
         "reading the messages of conversation session-1 in project 4242"),
    ],
    ids=["user", "project", "rename", "create", "transcript"],
)
def test_malformed_objects_are_api_errors_naming_the_call(
    action: Callable[[Client], Awaitable[Any]], data: Any, call: str
) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path.endswith("/conversations"):
            return success(page(1, [], total=0))  # the create's baseline listing
        return success(data, status=201 if request.method == "POST" else 200)

    with pytest.raises(ApiError, match=f"^{call} failed: the API answered with an unexpected"):
        run(settings(), action, handler=handle)


def test_create_accepted_with_an_unreadable_body_returns_what_was_created() -> None:
    live: list[dict[str, Any]] = []
    posts: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/user":
            return success({"id": 1, "name": "n", "email": "e@x"})
        if request.method == "POST":
            posts.append(request)
            live.append(conversation(7, "Billing"))
            return raw_body('{"status": "success", "data": {"id": 7, "sess')
        return success(page(1, list(live), total=len(live)))

    created, _ = run(settings(), lambda c: c.create_conversation(PROJECT, "Billing"),
                     handler=handle)
    assert created.session_id == "session-7"
    assert len(posts) == 1


def test_send_puts_its_options_on_the_wire() -> None:
    sent: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            sent.append(request)
            return success({"id": 3, "user_query": "hi", "openai_response": None,
                            "created_at": "2024-01-01 00:00:00"})
        return success({"conversation": conversation(1), "messages": page(1, [], total=0)})

    message, _ = run(settings(), lambda c: c.send_message(
        PROJECT, "session-1", "hi", persona="pirate", response_source="own_content", lang="de",
    ), handler=handle)
    assert (message.id, message.user_query, message.openai_response) == (3, "hi", "")
    (request,) = sent
    assert request.url.path == f"/api/v1/projects/{PROJECT}/conversations/session-1/messages"
    assert dict(request.url.params) == {"stream": "0", "lang": "de"}
    assert json.loads(request.content) == {
        "prompt": "hi", "custom_persona": "pirate", "response_source": "own_content",
    }
    assert request.headers["Authorization"] == f"Bearer {KEY}"


def test_a_transcript_whose_pages_shift_is_read_again() -> None:
    def message(number: int) -> dict[str, Any]:
        return {"id": number, "user_query": f"q{number}", "openai_response": f"a{number}",
                "created_at": "2024-01-01 00:00:00"}

    reads = {"first pages": 0}

    def handle(request: httpx.Request) -> httpx.Response:
        number = int(request.url.params["page"])
        reads["first pages"] += number == 1
        total = 5 if reads["first pages"] == 1 and number == 2 else 4  # one round disagrees
        items = [message(2 * number - 1), message(2 * number)]
        return success({"conversation": conversation(1),
                        "messages": page(number, items, total=total)})

    transcript, stats = run(settings(), lambda c: c.get_transcript(PROJECT, "session-1"),
                            handler=handle)
    assert [m.user_query for m in transcript.messages] == ["q1", "q2", "q3", "q4"]
    assert stats.relists == 1


def test_unexpected_redirect_is_an_api_error() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "https://elsewhere.example.com/"})

    with pytest.raises(ApiError, match=r"HTTP 302 \(Found\)"):
        run(settings(), lambda c: c.current_user(), handler=handle)


# -- the token stays secret --------------------------------------------------------------------


def test_the_token_appears_in_no_error_and_no_log_line(
    paged: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    """Every kind of failure, with DEBUG logging of every library on."""
    errors: list[BaseException] = []

    def echo_key(request: httpx.Request) -> httpx.Response:
        key = request.headers["Authorization"]
        if request.url.path.endswith("/user"):
            raise httpx.ReadError(f"reset while sending {key}", request=request)
        return failure(400, f"bad header {key}")

    paged.faults.rules.append(FaultRule(path="conversations$", status=503, times=None))
    attempts: list[tuple[ClientSettings, Callable[[Client], Awaitable[Any]], Handler | None]] = [
        (settings(paged.base_url), lambda c: c.list_conversations(PROJECT), None),
        (settings(paged.base_url, key="wrong-" + KEY), lambda c: c.current_user(), None),
        (settings(paged.base_url), lambda c: c.get_project(31337), None),
        (settings(), lambda c: c.current_user(), echo_key),
        (settings(), lambda c: c.get_project(PROJECT), echo_key),
    ]
    with caplog.at_level(logging.DEBUG):
        for config, action, handler in attempts:
            try:
                run(config, action, handler=handler)
            except ApiError as error:
                errors.append(error)
    assert len(errors) == len(attempts)
    texts = [str(e) for e in errors] + [repr(e) for e in errors]
    texts += [r.getMessage() for r in caplog.records]
    assert any("bad header Bearer ********" in text for text in texts)
    assert not [text for text in texts if KEY in text]
    assert any(r.name == "reconciler.http" for r in caplog.records)
