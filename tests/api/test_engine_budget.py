"""The client within the key's budget and within its time: refusals use up no attempt, every
request and every call has a deadline, and a tight limit is met without one refusal."""

from __future__ import annotations

import asyncio
import io
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.api.client import Client, ClientSettings, Secret
from reconciler.api.retry import RetryPolicy
from reconciler.cli.main import main
from reconciler.emulator import Emulator, Faults
from reconciler.errors import ApiError
from tests.conftest import TEST_API_KEY

KEY = TEST_API_KEY
USER = {"id": 1, "name": "n", "email": "e@x"}


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


def answer(status: int, data: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"status": "success", "data": data} if status < 400 else {
        "status": "error", "url": "u", "data": {"code": status, "message": "Too Many Attempts."}}
    return httpx.Response(status, json=body, headers=headers or {})


def user_with(handler: Any, *, policy: RetryPolicy, timeout: float = 30.0,
              fake: FakeTime | None = None) -> Any:
    fake = fake or FakeTime()
    config = ClientSettings(api_key=Secret(KEY), base_url="http://127.0.0.1:9", retry=policy,
                            timeout=timeout)

    async def run() -> Any:
        async with Client(config, transport=httpx.MockTransport(handler), sleep=fake.sleep,
                          clock=fake) as client:
            return await client.current_user(), client.stats

    return asyncio.run(run())


def test_refusals_use_up_no_attempt_and_wait_as_told() -> None:
    answers = iter([answer(429, None, {"Retry-After": "3"})] * 5)

    def handle(request: httpx.Request) -> httpx.Response:
        return next(answers, answer(200, USER))

    fake = FakeTime()
    user, stats = user_with(handle, policy=RetryPolicy(max_attempts=1), fake=fake)
    assert user.id == "1"
    assert stats.refusals == 5 and stats.requests == 6
    assert fake.waits == pytest.approx([3.0] * 5)  # each Retry-After, and no attempt used


def test_only_the_calls_deadline_bounds_the_waiting_for_the_budget() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return answer(429, None, {"Retry-After": "7"})

    fake = FakeTime()
    with pytest.raises(ApiError) as caught:
        user_with(handle, policy=RetryPolicy(max_attempts=1, deadline=30), fake=fake)
    assert "rate limit left no room" in str(caught.value)
    assert "30 s" in str(caught.value)
    assert fake.now <= 30


def test_a_refusal_for_query_credits_on_a_read_is_still_a_refusal_to_wait_out() -> None:
    answers = iter([httpx.Response(429, json={"status": "error", "url": "u", "data": {
        "code": 429, "message": "You have exhausted your current query credits"}})])

    def handle(request: httpx.Request) -> httpx.Response:
        return next(answers, answer(200, USER))

    user, stats = user_with(handle, policy=RetryPolicy(max_attempts=1))
    assert user.id == "1" and stats.refusals == 1


# -- a server that answers one byte a second ---------------------------------------------------


@pytest.fixture
def dripping() -> Iterator[str]:
    """A server that sends a valid answer one byte per second, forever."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve(connection: socket.socket) -> None:
        with connection:
            connection.recv(65536)
            head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 100000\r\n\r\n")
            try:
                connection.sendall(head)
                while not stop.wait(0.5):
                    connection.sendall(b" ")
            except OSError:
                return

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    server.close()


def test_a_server_that_drips_its_answer_cannot_hold_a_request_past_its_timeout(
    dripping: str
) -> None:
    config = ClientSettings(api_key=Secret(KEY), base_url=dripping, timeout=1.0,
                            retry=RetryPolicy(max_attempts=2, backoff_base=0.1, deadline=5))

    async def run() -> None:
        async with Client(config) as client:
            await client.current_user()

    started = time.monotonic()
    with pytest.raises(ApiError) as caught:
        asyncio.run(run())
    assert time.monotonic() - started < 4
    assert "no answer within 1 s" in str(caught.value) and "after 2 attempts" in str(caught.value)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-1", "1e400", "soon", "7200"],
                         ids=["nan", "inf", "minus-inf", "zero", "negative", "overflow", "word",
                              "over-an-hour"])
def test_impossible_timeouts_are_refused_with_a_message(value: str) -> None:
    stderr = io.StringIO()
    code = main(["plan", "-f", "x.yaml", "--timeout", value], env={}, stdout=io.StringIO(),
                stderr=stderr)
    err = stderr.getvalue()
    assert code != 0
    assert "argument --timeout" in err and "Traceback" not in err


RATE_RANGE = "requests per minute must be a finite number from 1 to 1000000"
SHARE_RANGE = "the share must be a finite number above 0 and at most 1"


@pytest.mark.parametrize(
    ("flag", "value", "range_"),
    [("--max-rate", "0", RATE_RANGE), ("--max-rate", "nan", RATE_RANGE),
     ("--max-rate", "1e-9", RATE_RANGE), ("--max-rate", "0.99", RATE_RANGE),
     ("--max-rate", "inf", RATE_RANGE), ("--max-rate", "1000001", RATE_RANGE),
     ("--rate-share", "0", SHARE_RANGE), ("--rate-share", "1.5", SHARE_RANGE),
     ("--rate-share", "-0.5", SHARE_RANGE), ("--rate-share", "inf", SHARE_RANGE)],
    ids=["zero-rate", "nan-rate", "one-in-a-billion-minutes", "under-one-a-minute",
         "inf-rate", "rate-above-a-million", "zero-share", "share-above-one",
         "negative-share", "inf-share"])
def test_impossible_paces_are_refused_with_their_range(flag: str, value: str,
                                                       range_: str) -> None:
    stderr = io.StringIO()
    code = main(["plan", "-f", "x.yaml", flag, value], env={}, stdout=io.StringIO(),
                stderr=stderr)
    err = stderr.getvalue()
    assert code == 1 and f"argument {flag}: {range_}" in err and "Traceback" not in err


@pytest.mark.parametrize("value", ["1", "1.5", "1000000"], ids=["one", "fraction", "million"])
def test_a_max_rate_from_one_a_minute_is_accepted(value: str) -> None:
    stderr = io.StringIO()
    main(["plan", "-f", "missing.yaml", "--max-rate", value], env={}, stdout=io.StringIO(),
         stderr=stderr)
    assert "argument --max-rate" not in stderr.getvalue()
    assert "missing.yaml: no such file" in stderr.getvalue()


def test_a_settings_timeout_of_nan_is_an_input_error() -> None:
    from reconciler.errors import InputError

    with pytest.raises(InputError, match="finite"):
        ClientSettings(api_key=Secret(KEY), base_url="http://127.0.0.1:9", timeout=float("nan"))


# -- end to end at a tight limit ---------------------------------------------------------------


def test_plan_and_apply_at_a_tight_limit_are_never_refused_and_converge(tmp_path: Path) -> None:
    """30 requests per 1 s window (a scaled minute), 15 per second taken: about 60 requests."""
    faults = Faults(rate_limit_per_minute=30, rate_limit_window=1.0, latency_ms=2)
    with Emulator(api_key=KEY, enable_admin=True, page_size=5, faults=faults) as emulator:
        emulator.start()
        emulator.ensure_project(1001, "demo")
        emulator.add_conversations(1001, [f"old {i}" for i in range(12)])
        emulator.add_conversation(1001, "visitor", creator="visitor")
        desired = tmp_path / "c.yaml"
        desired.write_text(
            "version: 1\nprojects:\n  - id: 1001\n    prune: true\n    owns: [old*]\n"
            "    max_delete_fraction: 1\n    conversations:\n"
            "      - name: kept\n        renamed_from: [old 0]\n        messages: [hi]\n"
            + "".join(f"      - name: new {i}\n        messages: [hello {i}]\n" for i in range(4)))
        env = {"CUSTOMGPT_API_KEY": KEY, "CUSTOMGPT_BASE_URL": emulator.base_url}
        err = io.StringIO()
        applied = main(["-v", "apply", "-f", str(desired), "--auto-approve", "--no-backup"],
                       env=env, stdout=io.StringIO(), stderr=err)
        assert applied == 0, err.getvalue()
        assert "pace: 900 requests/min: 0.5 (--rate-share) of the advertised limit of 30 " \
               "per 1 s" in err.getvalue()
        out = io.StringIO()
        assert main(["plan", "-f", str(desired)], env=env, stdout=out, stderr=io.StringIO()) == 0
        assert "No changes." in out.getvalue()
        assert emulator.refusals() == 0
        names = sorted(c["name"] for c in emulator.conversations(1001))
        assert names == ["kept", "new 0", "new 1", "new 2", "new 3", "visitor"]


# -- a listing's deadline at the budget's pace -------------------------------------------------


def paced_listing(pages: int, *, paced: Any, deadline: float = 10.0) -> tuple[int, float]:
    """Read a listing of `pages` pages whose every page takes 2 s (the budget's spacing);
    return the pages read and the time it took."""
    from reconciler.api.decoding import Listing, Page, read_all_pages

    clock = FakeTime()
    read: list[int] = []

    async def fetch(number: int) -> Page[int]:
        clock.now += 2.0
        read.append(number)
        items = (number,) if number <= pages else ()
        return Page(number=number, last_page=pages, per_page=1, total=pages, items=items)

    listing = Listing(what="things", parallelism=1, max_relists=0, deadline=deadline,
                      clock=clock, paced=paced)
    asyncio.run(read_all_pages(fetch, key=lambda item: item, listing=listing))
    return len(read), clock.now


def test_a_listing_paced_by_the_budget_gets_the_time_its_pages_take() -> None:
    pages, took = paced_listing(20, paced=lambda count: count * 2.0)
    assert pages == 20 and took == 40.0  # well past the 10 s deadline, within its pace


def test_without_a_pace_the_listing_deadline_still_ends_it() -> None:
    from reconciler.errors import ListingError

    with pytest.raises(ListingError, match="did not finish within 10 s"):
        paced_listing(20, paced=lambda count: 0.0)


def test_a_listing_that_claims_endless_pages_still_ends_within_a_day() -> None:
    from reconciler.errors import ListingError

    with pytest.raises(ListingError):
        paced_listing(10**9, paced=lambda count: count * 2.0, deadline=0.0)
