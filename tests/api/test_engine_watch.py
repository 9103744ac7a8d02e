"""After a send whose answer was lost, the client watches the conversation's transcript for as
long as the answers seen in this run say: the whole send timeout until a send has been
answered, then four times the longest answer, at least 15 s; a watch shortens (or lengthens)
as other sends are answered meanwhile, watches of different conversations run together, and
a slow model that stores its message late is never sent the prompt twice.

The service here is an injected transport on virtual time (the emulator's model cannot be
slow in one send and fast in the next, nor lose an answer while it goes on answering): a
send's script says how long its model takes, whether its answer is lost and when its message
is stored.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pytest

from reconciler.api.client import Client, ClientSettings, Secret
from reconciler.api.live import Message

KEY = "test-key-0123456789"
PROJECT = 4242
SEND_TIMEOUT = 300.0
T = TypeVar("T")


class VirtualTime:
    """A clock for concurrent tasks that moves only when none of them can go on: to the end
    of the earliest sleep, at once."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleeping: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleeping, (self.now + max(seconds, 0.0), next(self._order), future))
        await future

    async def run(self, *work: Coroutine[Any, Any, T]) -> list[T]:
        """Run `work` concurrently to its end, moving the clock when every task waits."""
        tasks = [asyncio.ensure_future(one) for one in work]
        while not all(task.done() for task in tasks):
            for _ in range(200):  # let every task that can go on, go on
                await asyncio.sleep(0)
            if self._sleeping:
                when, _, future = heapq.heappop(self._sleeping)
                self.now = max(self.now, when)
                if not future.done():
                    future.set_result(None)
            else:
                await asyncio.sleep(0.001)  # a real wait (the pacer's look for a first answer)
        return [task.result() for task in tasks]


@dataclass(frozen=True)
class Answered:
    """The model answers after `after` seconds and the message is stored then."""

    after: float


@dataclass(frozen=True)
class Lost:
    """The answer is lost after `after` seconds (the connection breaks, or a gateway answers
    `status`); the service stores the message `stores_at` seconds after the send began, or
    never (None)."""

    after: float
    stores_at: float | None = None
    status: int | None = None


class Service:
    """Conversations whose sends follow their scripts, on virtual time; records when each
    send began and when each transcript was read."""

    def __init__(self, time: VirtualTime, scripts: dict[str, list[Answered | Lost]]) -> None:
        self.time = time
        self.scripts = {session: list(steps) for session, steps in scripts.items()}
        self.stored: dict[str, list[tuple[float, dict[str, Any]]]] = {s: [] for s in scripts}
        self.posts: dict[str, list[float]] = {s: [] for s in scripts}
        self.reads: dict[str, list[float]] = {s: [] for s in scripts}
        self._ids = itertools.count(1)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        session = request.url.path.split("/")[-2]
        if request.method == "GET":
            self.reads[session].append(self.time.now)
            return self._transcript(session)
        began = self.time.now
        self.posts[session].append(began)
        step = self.scripts[session].pop(0)
        message = {"id": next(self._ids), "user_query": json.loads(request.content)["prompt"],
                   "openai_response": "an answer", "created_at": "2024-01-01 00:00:00",
                   "metadata": {"external_id": request.url.params.get("external_id")}}
        await self.time.sleep(step.after)
        if isinstance(step, Answered):
            self.stored[session].append((self.time.now, message))
            return envelope(200, message)
        if step.stores_at is not None:
            self.stored[session].append((began + step.stores_at, message))
        if step.status is not None:
            return envelope(step.status, {"code": step.status, "message": "Gateway Timeout"})
        raise httpx.ReadError("the connection broke")

    def _transcript(self, session: str) -> httpx.Response:
        visible = [m for at, m in self.stored[session] if at <= self.time.now]
        owner = {"id": 1, "session_id": session, "name": session, "project_id": str(PROJECT),
                 "created_by": "1", "created_at": "2024-01-01 00:00:00",
                 "updated_at": "2024-01-01 00:00:00"}
        page = {"current_page": 1, "data": visible, "per_page": 100, "total": len(visible),
                "last_page": 1}
        return envelope(200, {"conversation": owner, "messages": page})

    def messages(self, session: str) -> list[str]:
        return [m["user_query"] for _, m in self.stored[session]]


def envelope(status: int, data: Any) -> httpx.Response:
    body = ({"status": "success", "data": data} if status < 400 else
            {"status": "error", "url": "u", "data": data})
    return httpx.Response(status, json=body)


Action = Callable[[Client], Awaitable[Any]]


def serve(scripts: dict[str, list[Answered | Lost]], *rounds: list[Action],
          send_watch: float | None = None) -> Service:
    """Run `rounds` one after another with one client on virtual time, the actions of a round
    concurrently, against a service following `scripts`."""
    time = VirtualTime()
    service = Service(time, scripts)
    config = ClientSettings(api_key=Secret(KEY), base_url="http://127.0.0.1:9",
                            send_timeout=SEND_TIMEOUT, send_watch=send_watch)

    async def main() -> None:
        async with Client(config, transport=httpx.MockTransport(service.handle),
                          sleep=time.sleep, clock=time.clock,
                          uniform=lambda low, high: high) as client:
            for actions in rounds:
                await time.run(*(action(client) for action in actions))

    asyncio.run(main())
    return service


def send(session: str, prompt: str = "Hello") -> Action:
    async def action(client: Client) -> Message:
        return await client.send_message(PROJECT, session, prompt, newest_id=0,
                                         external_id=f"x-{session}-{prompt}")
    return action


def read(session: str) -> Action:
    """A first request, so that the pacer (whose first request goes alone) lets the sends
    after it go together."""
    async def action(client: Client) -> int:
        return await client.newest_message_id(PROJECT, session)
    return action


@pytest.fixture
def said(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    """What `-v` shows of the client's watches."""
    caplog.set_level(logging.INFO, logger="reconciler.http")
    return lambda: [r.getMessage() for r in caplog.records if r.name == "reconciler.http"]


# -- how long ----------------------------------------------------------------------------------


def test_before_any_answer_a_lost_send_is_watched_for_the_whole_send_timeout(
    said: Callable[[], list[str]],
) -> None:
    service = serve({"a": [Lost(after=0.5), Answered(1.0)]}, [send("a")])
    lost_at, backoff = 0.5, 0.5
    assert service.posts["a"] == [0.0, pytest.approx(lost_at + backoff + SEND_TIMEOUT)]
    assert service.messages("a") == ["Hello"]
    assert said()[0] == (
        "the answer to a send to conversation a in project 4242 was lost (the connection "
        "broke (ReadError)); watching its transcript for up to 300 s (--send-timeout): no "
        "answer has been seen yet in this run")


@pytest.mark.parametrize(("answer", "watch", "why"), [
    (0.1, 15.0, "for 15 s (4 x 0.1 s"),
    (2.0, 15.0, "for 15 s (4 x 2.0 s"),
    (10.0, 40.0, "for 40 s (4 x 10.0 s"),
    (100.0, SEND_TIMEOUT, "for 300 s (4 x 100 s"),
], ids=["instant", "floor", "multiple", "send-timeout"])
def test_after_an_answer_a_lost_send_is_watched_for_four_times_it_at_least_15_s(
    said: Callable[[], list[str]], answer: float, watch: float, why: str,
) -> None:
    service = serve({"b": [Answered(answer)], "a": [Lost(after=0.5), Answered(1.0)]},
                    [send("b")], [send("a")])
    first, second = service.posts["a"]
    assert second - first == pytest.approx(0.5 + 0.5 + watch)
    assert service.messages("a") == ["Hello"]
    assert f"watching its transcript {why}, the longest answer seen in this run; at least " \
           "15 s, at most 300 s, the send timeout)" in said()[0]
    assert said()[-1].startswith("the lost send to conversation a in project 4242 is not in "
                                 "its transcript after")


def test_a_watch_that_began_before_any_answer_shortens_when_another_send_is_answered(
    said: Callable[[], list[str]],
) -> None:
    service = serve({"a": [Lost(after=0.5), Answered(1.0)], "b": [Answered(3.0)]},
                    [read("a")], [send("a"), send("b")])
    watch_began = 0.5 + 0.5
    assert service.posts["b"] == [0.0]  # b was still waiting when a's watch began
    assert "for up to 300 s (--send-timeout)" in said()[0]
    assert any(line.startswith("the watch of conversation a in project 4242 now lasts for "
                               "15 s (4 x 3.0 s, the longest answer seen") for line in said())
    assert service.posts["a"][1] == pytest.approx(watch_began + 15.0)


def test_a_watch_lengthens_when_a_slower_answer_is_seen_meanwhile() -> None:
    service = serve({"c": [Answered(1.0)], "a": [Lost(after=0.5), Answered(1.0)],
                     "b": [Answered(10.0)]},
                    [send("c")], [send("a"), send("b")])
    began = service.posts["a"][0] + 0.5 + 0.5  # for 15 s: c's answer took 1 s
    assert service.posts["b"][0] + 10.0 < began + 15.0  # b's 10 s answer came meanwhile
    assert service.posts["a"][1] == pytest.approx(began + 40.0)


def test_watches_of_different_conversations_run_together() -> None:
    service = serve({"c": [Answered(1.0)], "a": [Lost(after=0.5), Answered(1.0)],
                     "b": [Lost(after=0.5), Answered(1.0)]},
                    [send("c")], [send("a"), send("b")])
    start = min(service.posts["a"][0], service.posts["b"][0])
    end = max(service.posts["a"][1], service.posts["b"][1])
    assert end - start < 2 * 15.0  # one after the other would take two watches
    a_watch = (service.reads["a"][0], service.reads["a"][-1])
    assert any(a_watch[0] < read < a_watch[1] for read in service.reads["b"])


def test_a_fixed_watch_is_kept_whatever_was_seen() -> None:
    service = serve({"b": [Answered(50.0)], "a": [Lost(after=0.5), Answered(1.0)]},
                    [send("b")], [send("a")], send_watch=2.0)
    first, second = service.posts["a"]
    assert second - first == pytest.approx(0.5 + 0.5 + 2.0)


# -- a slow model that stores its message late is never sent the prompt twice ----------------


def test_a_first_send_lost_while_a_slow_model_answers_is_found_not_sent_again() -> None:
    service = serve({"a": [Lost(after=1.0, stores_at=250.0)]}, [send("a")])
    assert len(service.posts["a"]) == 1 and service.messages("a") == ["Hello"]


def test_a_model_fast_at_first_and_slow_later_is_watched_by_its_slowest_answer() -> None:
    # The mean (4 s) would watch for 16 s; the slowest (10 s) watches for 40 s.
    service = serve({"b": [Answered(1.0)], "c": [Answered(10.0)], "d": [Answered(1.0)],
                     "a": [Lost(after=1.0, stores_at=35.0)]},
                    [send("b")], [send("c")], [send("d")], [send("a")])
    assert len(service.posts["a"]) == 1 and service.messages("a") == ["Hello"]


def test_a_gateway_that_gave_up_on_a_slow_model_lengthens_the_watch(
    said: Callable[[], list[str]],
) -> None:
    service = serve({"b": [Answered(2.0)], "a": [Lost(after=60.0, stores_at=200.0, status=504)]},
                    [send("b")], [send("a")])
    assert len(service.posts["a"]) == 1 and service.messages("a") == ["Hello"]
    assert "for 240 s (4 x 60.0 s, the time this send had run when its answer was lost" \
           in said()[0]


def test_a_send_still_waiting_for_its_answer_lengthens_the_watch() -> None:
    # b's model now takes 100 s: while b waits, a's watch grows with b's wait.
    service = serve({"c": [Answered(1.0)], "b": [Answered(100.0)],
                     "a": [Lost(after=0.5, stores_at=50.0)]},
                    [send("c")], [send("b"), send("a")])
    assert len(service.posts["a"]) == 1 and service.messages("a") == ["Hello"]


def test_a_lost_send_found_late_lengthens_the_watches_after_it() -> None:
    # a's message appears 12 s after its send began: its model took about that long, so b's
    # watch lasts 4 x that (not 15 s, which c's 1 s answer alone would give).
    service = serve({"c": [Answered(1.0)], "a": [Lost(after=0.5, stores_at=12.0)],
                     "b": [Lost(after=0.5, stores_at=30.0)]},
                    [send("c")], [send("a")], [send("b")])
    assert len(service.posts["a"]) == 1 and service.messages("a") == ["Hello"]
    assert len(service.posts["b"]) == 1 and service.messages("b") == ["Hello"]
