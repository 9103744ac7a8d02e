"""Answers the client cannot trust: header values out of any range, bodies that inflate without
end, refusals at random. Each is read as absent, refused with an error naming the call, or
waited out within its bounds; never a traceback, never a run that stalls for hours.

Answers the emulator cannot give come from an injected httpx transport (an in-memory handler,
or a socket server for the bytes as httpx reads them off the network).
"""

from __future__ import annotations

import asyncio
import gzip
import http
import logging
import random
import socket
import threading
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.api.client import Client, ClientSettings, ClientStats, RetryPolicy, Secret
from reconciler.errors import ApiError

KEY = "answers-key-0123456789"
PROJECT = 4242
USER = {"id": 1, "name": "n", "email": "e@x"}
T = TypeVar("T")
Handler = Callable[[httpx.Request], httpx.Response]

HOSTILE_RETRY_AFTER = [
    "Wed, 21 Oct 99999 07:28:00 GMT", "Wed, 99 Oct 2015 07:28:00 GMT",
    "Wed, 21 Oct 99999999999999999999 07:28:00 GMT", "Wed, 21 Oct 2015 07:28:00 +99999999999",
    "1e400", "99999999999999999999", "-1", "soon", "",
]
HOSTILE_IDS = ["year-99999", "day-99", "year-20-digits", "zone-11-digits", "1e400",
               "20-digits", "negative", "words", "empty"]


class FakeTime:
    """A clock and a sleep that advances it: waits are recorded, never waited."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def client_settings(base_url: str = "http://127.0.0.1:9", **changes: Any) -> ClientSettings:
    return ClientSettings(api_key=Secret(KEY), base_url=base_url, parallelism=4, **changes)


def run(action: Callable[[Client], Awaitable[T]], *, handler: Handler | None = None,
        transport: httpx.AsyncBaseTransport | None = None, fake: FakeTime | None = None,
        config: ClientSettings | None = None) -> tuple[T, ClientStats]:
    """Run `action` with a fresh client on `handler` (or `transport`), on fake time."""
    fake = fake or FakeTime()
    if handler is not None:
        transport = httpx.MockTransport(handler)

    async def main() -> tuple[T, ClientStats]:
        async with Client(config or client_settings(), transport=transport, sleep=fake.sleep,
                          clock=fake, uniform=lambda low, high: high) as client:
            return await action(client), client.stats

    return asyncio.run(main())


def success(data: Any, *, status: int = 200, headers: Any = None) -> httpx.Response:
    return httpx.Response(status, json={"status": "success", "data": data}, headers=headers)


def refusal(headers: Any = None) -> httpx.Response:
    return httpx.Response(429, headers=headers, json={
        "status": "error", "url": "u", "data": {"code": 429, "message": "Too Many Attempts."}})


def conversation(number: int, name: str | None = None) -> dict[str, Any]:
    return {"id": number, "session_id": f"session-{number}", "name": name or f"c{number}",
            "project_id": str(PROJECT), "created_by": "1",
            "created_at": "2024-01-01 00:00:00", "updated_at": "2024-01-01 00:00:00"}


def page(number: int, items: list[Any], *, total: int, per_page: int = 10) -> dict[str, Any]:
    return {"current_page": number, "data": items, "per_page": per_page, "total": total,
            "last_page": max(1, -(-total // per_page))}


# -- time headers ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", HOSTILE_RETRY_AFTER, ids=HOSTILE_IDS)
def test_a_create_answered_200_with_a_hostile_retry_after_is_created(value: str) -> None:
    posts: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        headers = {"Retry-After": value}
        if request.method == "POST":
            posts.append(request)
            return success(conversation(7, "Billing"), status=201, headers=headers)
        return success(page(1, [], total=0), headers=headers)

    created, _ = run(lambda c: c.create_conversation(PROJECT, "Billing"), handler=handle)
    assert created.session_id == "session-7"
    assert len(posts) == 1


@pytest.mark.parametrize("value", HOSTILE_RETRY_AFTER, ids=HOSTILE_IDS)
@pytest.mark.parametrize("status", [429, 503], ids=["refused", "unavailable"])
@pytest.mark.parametrize("limit", [None, "60"], ids=["no-limit", "known-limit"])
def test_a_hostile_retry_after_is_waited_within_the_cap(value: str, status: int,
                                                        limit: str | None) -> None:
    """On every path: the refused call's own wait, the pacer's pause for every request under
    a known limit, and a retry after a failure."""
    rate = {"X-RateLimit-Limit": limit, "X-RateLimit-Remaining": "58"} if limit else {}
    answers = iter([
        success(USER, headers={"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "59"}),
        httpx.Response(status, headers={"Retry-After": value, **rate}),
    ])

    def handle(request: httpx.Request) -> httpx.Response:
        return next(answers, success({"id": PROJECT, "project_name": "p"}))

    fake = FakeTime()

    async def twice(client: Client) -> Any:
        await client.current_user()
        return await client.get_project(PROJECT)

    project, _ = run(twice, handler=handle, fake=fake)
    assert project.id == PROJECT
    assert fake.waits and max(fake.waits) <= RetryPolicy().retry_after_cap


HEADER_NAMES = ["Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset",
                "RateLimit-Policy", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset",
                "RateLimit", "Content-Type", "Content-Length", "Date"]
_DIGITS = st.one_of(st.text(alphabet="0123456789", min_size=1, max_size=4),
                    st.integers(10**9, 10**30).map(str))
HEADER_VALUES = st.one_of(
    st.binary(max_size=40),
    st.text(max_size=40).map(lambda text: text.encode("utf-8")),
    _DIGITS.map(str.encode),
    st.builds("{}, {} Oct {} {}:{}:{} {}".format, st.sampled_from(["Wed", "Xyz"]), _DIGITS,
              _DIGITS, _DIGITS, _DIGITS, _DIGITS,
              st.one_of(_DIGITS.map("+{}".format), st.just("GMT"))).map(str.encode),
    st.builds("{};w={}".format, _DIGITS, _DIGITS).map(str.encode),
)
HOSTILE_HEADERS = st.builds(
    lambda retry_after, others: [(b"Retry-After", retry_after), *others], HEADER_VALUES,
    st.lists(st.tuples(st.sampled_from(HEADER_NAMES).map(str.encode), HEADER_VALUES),
             max_size=8))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=HOSTILE_HEADERS, second=HOSTILE_HEADERS, refused=st.booleans())
def test_any_header_values_on_an_answer_are_read_or_ignored(
    first: list[tuple[bytes, bytes]], second: list[tuple[bytes, bytes]], refused: bool
) -> None:
    """A refusal, then a success, each with any headers: the user is read, every wait is
    within the Retry-After cap, and nothing else happens."""
    answers = iter([refusal(first) if refused else success(USER, headers=first),
                    success(USER, headers=second)])

    def handle(request: httpx.Request) -> httpx.Response:
        return next(answers)

    fake = FakeTime()
    user, stats = run(lambda c: c.current_user(), handler=handle, fake=fake)
    assert user.id == "1"
    assert stats.requests == 1 + refused
    assert all(0 <= wait <= RetryPolicy().retry_after_cap for wait in fake.waits)


# -- the pace a server can impose --------------------------------------------------------------


def test_a_slow_pace_imposed_by_the_api_is_a_warning_once(
        caplog: pytest.LogCaptureFixture) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return success({"id": PROJECT, "project_name": "p"},
                       headers={"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "9"})

    async def three(client: Client) -> None:
        for _ in range(3):
            await client.get_project(PROJECT)

    with caplog.at_level(logging.WARNING, logger="reconciler"):
        run(three, handler=handle)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        "warning: the API's rate limit makes this run slow: pace: 5 requests/min: 0.5 "
        "(--rate-share) of the advertised limit of 10 per 60 s (10/min); every 100 requests "
        "take about 20 min"]


@pytest.mark.parametrize("share", [0.1, 0.3], ids=["tenth", "three-tenths"])
def test_a_run_answered_429_at_random_without_rate_headers_completes(share: float) -> None:
    """Refusals at random (a gateway, say) while most answers are fine do not slow every
    request down: slowing down would not make them rarer. 300 pages, refused at random."""
    draw = random.Random(4)
    pages = 300

    def handle(request: httpx.Request) -> httpx.Response:
        if draw.random() < share:
            return refusal()
        number = int(request.url.params["page"])
        items = [conversation(n) for n in range(number * 10 - 9, number * 10 + 1)]
        return success(page(number, items, total=pages * 10))

    fake = FakeTime()
    listing, stats = run(lambda c: c.list_conversations(PROJECT), handler=handle, fake=fake)
    assert len(listing) == pages * 10
    assert stats.refusals > share * pages / 2
    assert fake.now < 600  # minutes at the least, never the hours a collapsed pace takes


# -- answers larger than the client keeps --------------------------------------------------------


SMALL_CAP = 1 << 20  # 1 MiB: a bomb of 64 MiB stays cheap to build and to refuse


class Chunked(httpx.AsyncByteStream):
    """A body handed over in chunks of `size` bytes, as a network delivers it."""

    def __init__(self, body: bytes, size: int) -> None:
        self.body, self.size = body, size
        self.chunks = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.body), self.size):
            self.chunks += 1
            yield self.body[start:start + self.size]


def bomb(coding: str, size: int = 64 << 20) -> bytes:
    """`size` zero bytes (after a JSON opening), compressed by `coding`: about 1/1000 of it."""
    plain = b'{"status": "success", "data": "' + b"0" * size
    if coding == "gzip":
        return gzip.compress(plain, compresslevel=9)
    if coding == "deflate":
        return zlib.compress(plain, 9)
    raw = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return raw.compress(plain) + raw.flush()


def served(body: bytes, headers: dict[str, str], *, status: int = 200,
           chunk: int = 1 << 16) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=headers, stream=Chunked(body, chunk))

    return handle


@pytest.mark.parametrize(("coding", "header"),
                         [("gzip", "gzip"), ("deflate", "deflate"), ("raw", "deflate"),
                          ("gzip", "x-gzip"), ("none", "")],
                         ids=["gzip", "deflate", "raw-deflate", "x-gzip", "plain"])
def test_an_answer_larger_than_the_cap_fails_the_call_naming_it(coding: str,
                                                                 header: str) -> None:
    body = bomb(coding) if coding != "none" else b"0" * (SMALL_CAP + 1)
    requests: list[httpx.Request] = []
    handle = served(body, {"Content-Encoding": header} if header else {})

    def counted(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return handle(request)

    with pytest.raises(ApiError) as caught:
        run(lambda c: c.current_user(), handler=counted,
            config=client_settings(max_answer_bytes=SMALL_CAP))
    assert str(caught.value) == ("reading the API key's user failed: the API answered with an "
                                 "unexpected body (the answer was larger than 1 MiB)")
    assert len(requests) == 1  # the same answer again would be as large: not retried


def test_a_bomb_stops_being_read_at_the_cap() -> None:
    stream = Chunked(bomb("gzip", 1 << 30), 1 << 10)  # a GiB from about 1 MiB

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Encoding": "gzip"}, stream=stream)

    with pytest.raises(ApiError, match="larger than 1 MiB"):
        run(lambda c: c.current_user(), handler=handle,
            config=client_settings(max_answer_bytes=SMALL_CAP))
    assert stream.chunks < 10  # 1 MiB decoded comes from the first KiB or so


def test_an_answer_of_the_cap_exactly_is_read() -> None:
    envelope = b'{"status": "success", "data": {"id": 1, "name": "n", "email": "e@x"}}'
    body = envelope + b" " * (SMALL_CAP - len(envelope))
    user, _ = run(lambda c: c.current_user(),
                  handler=served(gzip.compress(body), {"Content-Encoding": "gzip"}, chunk=7),
                  config=client_settings(max_answer_bytes=SMALL_CAP))
    assert user.id == "1"


@pytest.mark.parametrize("coding", ["gzip", "deflate", "raw", "none"])
def test_a_compressed_answer_is_read_in_any_chunks(coding: str) -> None:
    envelope = b'{"status": "success", "data": {"id": 1, "name": "n", "email": "e@x"}}'
    if coding == "gzip":
        body = gzip.compress(envelope)
    elif coding == "deflate":
        body = zlib.compress(envelope)
    elif coding == "raw":
        raw = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        body = raw.compress(envelope) + raw.flush()
    else:
        body = envelope
    header = {"gzip": "gzip", "deflate": "deflate", "raw": "deflate", "none": "identity"}[coding]
    for size in (1, 3, 4096):
        user, _ = run(lambda c: c.current_user(),
                      handler=served(body, {"Content-Encoding": header}, chunk=size))
        assert user.id == "1"


@pytest.mark.parametrize(
    ("body", "header", "expected"),
    [(gzip.compress(gzip.compress(b"{}")), "gzip, gzip",
      "the answer was compressed more than once (Content-Encoding 'gzip, gzip')"),
     (b"not gzip at all", "gzip", "the answer's body is not valid gzip"),
     (gzip.compress(b"{}")[:5] + b"garbage", "gzip", "the answer's body is not valid gzip"),
     (b"\xff\xff\xff", "deflate", "the answer's body is not valid deflate")],
    ids=["stacked", "not-gzip", "corrupt-gzip", "not-deflate"])
def test_an_undecodable_answer_is_an_error_naming_the_call(body: bytes, header: str,
                                                           expected: str) -> None:
    with pytest.raises(ApiError) as caught:
        run(lambda c: c.current_user(), handler=served(body, {"Content-Encoding": header}))
    assert str(caught.value) == ("reading the API key's user failed: the API answered with an "
                                 f"unexpected body ({expected})")


def test_an_error_answer_too_large_to_read_still_says_its_status() -> None:
    with pytest.raises(ApiError) as caught:
        run(lambda c: c.get_project(PROJECT),
            handler=served(bomb("gzip"), {"Content-Encoding": "gzip"}, status=422),
            config=client_settings(max_answer_bytes=SMALL_CAP))
    phrase = http.HTTPStatus(422).phrase  # "Unprocessable Entity" before Python 3.13
    assert str(caught.value) == (f"reading project 4242 failed: HTTP 422 ({phrase}) "
                                 "(the answer was larger than 1 MiB)")


def test_a_create_answered_with_a_bomb_is_looked_up_and_reported_created() -> None:
    live: list[dict[str, Any]] = []
    posts: list[httpx.Request] = []
    oversized = served(bomb("gzip"), {"Content-Encoding": "gzip"}, status=201)

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/user":
            return success(USER)
        if request.method == "POST":
            posts.append(request)
            live.append(conversation(7, "Billing"))
            return oversized(request)
        return success(page(1, list(live), total=len(live)))

    created, _ = run(lambda c: c.create_conversation(PROJECT, "Billing"), handler=handle,
                     config=client_settings(max_answer_bytes=SMALL_CAP))
    assert created.session_id == "session-7"
    assert len(posts) == 1


@pytest.fixture
def bomb_server() -> Iterator[tuple[str, list[int]]]:
    """A server answering every request with a 64 MiB gzip bomb (about 64 KiB on the wire);
    also returns the bytes of body it managed to send to each connection."""
    server = socket.create_server(("127.0.0.1", 0))
    body = bomb("gzip")
    sent: list[int] = []

    def serve(connection: socket.socket) -> None:
        with connection:
            connection.recv(65536)
            head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Encoding: gzip\r\nContent-Length: " + str(len(body)).encode()
                    + b"\r\n\r\n")
            try:
                connection.sendall(head + body)
                sent.append(len(body))
            except OSError:
                sent.append(-1)

    def accept() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}", sent
    server.close()


def test_a_bomb_off_the_network_fails_the_call_naming_it(
        bomb_server: tuple[str, list[int]]) -> None:
    url, _ = bomb_server
    with pytest.raises(ApiError) as caught:
        run(lambda c: c.current_user(), config=client_settings(url, max_answer_bytes=SMALL_CAP))
    assert str(caught.value).endswith("(the answer was larger than 1 MiB)")


def test_the_largest_answer_must_be_a_byte_or_more() -> None:
    from reconciler.errors import InputError

    with pytest.raises(InputError, match="the largest answer must be at least 1 byte, not 0"):
        client_settings(max_answer_bytes=0)
