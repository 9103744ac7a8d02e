"""The HTTP attempt engine: the only module that speaks HTTP (httpx).

One `httpx.AsyncClient` (one connection pool) per `Engine`. A `Call` is one API call in user
words; the engine makes its attempts: each waits for its turn from the `Pacer` (see
`reconciler.api.pacer`) and tells it what the answer said of the budget, a 429 for the rate is
waited out (its Retry-After, else a growing backoff, within the call's deadline), other
failures are retried as `reconciler.api.retry` says, and after a failure that may have been
carried out (a POST whose answer was lost) the call's result is looked for before it is tried
again (for a send, its transcript watched for as long as `reconciler.api.answer_times` says).
Every httpx error is translated here, once, into an `ApiError` subclass whose message is in
user words and never contains the API token. Answers are read as they arrive, decoded here,
each step bounded.

The endpoints, and what the client remembers of what the API leaves unsaid, are
`reconciler.api.client`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import http
import logging
import math
import random
import ssl
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

import httpx

from reconciler import __version__
from reconciler.api.answer_times import AnswerTimes
from reconciler.api.decoding import MalformedBody, Record
from reconciler.api.pacer import Pacer, RateHeaders
from reconciler.api.protocol import ClientStats
from reconciler.api.retry import RETRYABLE_STATUSES, parse_retry_after
from reconciler.api.settings import ClientSettings, is_loopback
from reconciler.errors import (
    ApiError,
    AuthError,
    CreditsExhaustedError,
    ForbiddenError,
    NotFoundError,
)
from reconciler.jsonio import JsonError
from reconciler.jsonio import parse as parse_json
from reconciler.keys import API_KEY_VARIABLE

log = logging.getLogger("reconciler.http")

# Statuses a gateway gives when it stopped waiting: the server behind it may still be working.
GATEWAY_STATUSES = frozenset({502, 504})
# After a send that may still be under way, the transcript is read again after these pauses
# (doubling), for as long as the answer times say (see `reconciler.api.answer_times`).
WATCH_FIRST_PAUSE = 0.25
WATCH_MAX_PAUSE = 5.0
# What a 403 on a write means: the key's role, not the key (reads keep the key's message).
ROLE_MAY_NOT_CHANGE = ("the API key's role may not change this conversation (a team member's "
                       "key may change only its own)")

_T = TypeVar("_T")
_E = TypeVar("_E", bound=ApiError)


@dataclass(frozen=True)
class Call:
    """One API call: what it is in user words, and how to make it."""

    description: str  # "listing conversations of project 4242"
    method: str
    path: str
    params: Mapping[str, str | int] | None = None
    body: Mapping[str, object] | None = None
    not_found: str | None = None  # the NotFoundError message for a 404
    gone_is_success: bool = False  # DELETE: a 404 on a retry means the first attempt did it
    spends_credits: bool = False  # a 429 about query credits is final
    headers: Mapping[str, str] | None = None
    timeout: float | None = None  # this call's own timeout (a send waits for the model)
    # Why a 403 refuses this call when the key is not to blame (None: a read's 403 is the
    # key's, a write's is ROLE_MAY_NOT_CHANGE); see `Engine._interpret`.
    refused: str | None = None

    def refusal(self) -> str | None:
        """What a 403 to this call means beside the key; None when it means the key."""
        if self.refused is not None:
            return self.refused
        return None if self.method == "GET" else ROLE_MAY_NOT_CHANGE


@dataclass(frozen=True)
class _Answer:
    """A successful attempt: the envelope's `data`, or what is wrong with the body."""

    data: object
    problem: MalformedBody | None = None

    def checked(self) -> object:
        """The data. Raises MalformedBody when the body was malformed."""
        if self.problem is not None:
            raise self.problem
        return self.data


@dataclass(frozen=True)
class _Failure:
    """A failed attempt that may be retried."""

    description: str  # "HTTP 503 (Service Unavailable)", "could not connect (ConnectError)"
    status: int | None
    retry_after: float | None
    maybe_done: bool  # the server may have carried the request out
    still_running: bool = False  # ... and may still be at it (no answer came, or a gateway's)

    @property
    def refused(self) -> bool:
        """A 429 for the rate: nothing was done, and it uses up no attempt."""
        return self.status == 429


# What replaces the network in tests (an httpx transport; the engine is its one user).
Transport = httpx.AsyncBaseTransport
Sleep = Callable[[float], Awaitable[None]]
Uniform = Callable[[float, float], float]
Clock = Callable[[], float]


@dataclass
class _SendTiming:
    """One attempt of a send: its ticket in the answer times once its request has started."""

    ticket: int | None = None
    started: float = 0.0


# The send attempt the current task is making, if any: the request hook marks when its request
# really starts (after its turn from the pacer), so that its answer time is the server's.
_SEND_TIMING: contextvars.ContextVar[_SendTiming | None] = contextvars.ContextVar(
    "reconciler_send_timing", default=None)


class Engine:
    """Makes API calls over one connection pool, within the key's budget; use `async with`
    (or `aclose`).

    `transport` replaces the network (tests); `sleep`, `uniform` and `clock` replace
    `asyncio.sleep`, `random.uniform` and `time.monotonic` so that tests need not wait.
    Every request waits for its turn from one `Pacer`, `pacer`; `stats` counts requests,
    retries, refusals and relists; `answer_times` holds how long sends took to be answered.
    A call raises `AuthError` (401, or 403 on a read), `ForbiddenError` (403 on a write: the
    key's role), `NotFoundError` (404 with `Call.not_found`), `CreditsExhaustedError` or
    `ApiError` (anything else that failed), never an httpx exception, and never with the API
    token in its text.
    """

    def __init__(
        self,
        settings: ClientSettings,
        *,
        transport: Transport | None = None,
        sleep: Sleep = asyncio.sleep,
        uniform: Uniform = random.uniform,
        clock: Clock = time.monotonic,
    ) -> None:
        self.settings = settings
        self.stats = ClientStats()
        self.clock = clock
        self._sleep, self._uniform, self._clock = sleep, uniform, clock
        self.pacer = Pacer(settings.pace, clock=clock, on_pace=_log_pace, on_slow=_warn_pace)
        self.answer_times = AnswerTimes(upper=settings.send_timeout, fixed=settings.send_watch)
        self._answer = asyncio.Event()
        self._refused_in_row = 0
        host = urlsplit(settings.base_url).hostname or ""
        self._http = httpx.AsyncClient(
            base_url=settings.base_url,
            headers={
                "Authorization": f"Bearer {settings.api_key.reveal()}",
                "Accept": "application/json",
                "User-Agent": f"reconciler/{__version__}",
            },
            timeout=httpx.Timeout(settings.timeout, pool=None),
            limits=httpx.Limits(
                max_connections=settings.parallelism,
                max_keepalive_connections=settings.parallelism,
            ),
            transport=transport,
            verify=True,
            follow_redirects=False,
            trust_env=not is_loopback(host),
            event_hooks={"request": [self._request_starts]},
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def with_retries(
        self,
        call: Call,
        find_committed: Callable[[], Awaitable[_T | None]],
        parse: Callable[[object], _T],
        *,
        watched: str | None = None,
    ) -> _T:
        """Make a call, retrying what may be retried. After a failure that may have been
        carried out, wait, then look for its result (`find_committed`) before trying again.
        `watched` (a send: the conversation, in words) times every attempt in the answer
        times, and when the server may still be carrying out an attempt, keeps looking for as
        long as they say (not counted in the call's deadline)."""
        started: float | None = None
        attempt = 1
        while True:
            if watched is None:
                outcome, ran = await self._attempt(call, attempt, started), 0.0
            else:
                outcome, ran = await self._timed_attempt(call, attempt, started)
            started = self._clock() if started is None else started
            if isinstance(outcome, _Answer):
                return await self._written(call, outcome, parse, find_committed)
            if outcome.refused:  # nothing was done: no attempt is used up
                await self._wait_refused(call, outcome, started)
                continue
            watch = None if watched is None else (watched, ran)
            try:
                delay = self._next_delay(call, outcome, attempt, started)
            except ApiError:
                found = await self._look_for_result(call, find_committed, outcome, watch=watch)
                if found is not None:
                    return found
                raise
            self.stats.retries += 1
            await self._sleep(delay)
            checking = self._clock()
            found = await self._look_for_result(call, find_committed, outcome, watch=watch)
            if found is not None:
                return found
            started += self._clock() - checking  # looking for it is no retry: not on the clock
            attempt += 1

    async def _written(
        self,
        call: Call,
        answer: _Answer,
        parse: Callable[[object], _T],
        find_committed: Callable[[], Awaitable[_T | None]],
    ) -> _T:
        """The result of a write the server accepted; when its body cannot be read, the
        result is looked up instead (the write happened). Raises ApiError."""
        try:
            return parse(answer.checked())
        except MalformedBody as problem:
            error = self._malformed(call, problem)
        try:
            found = await find_committed()
        except ApiError:
            found = None
        if found is None:
            raise error
        return found

    async def _look_for_result(
        self, call: Call, find_committed: Callable[[], Awaitable[_T | None]], failure: _Failure,
        *, watch: tuple[str, float] | None = None,
    ) -> _T | None:
        """What a failed attempt that may have been carried out did (None: nothing found).
        `watch`, for a send, is what is watched and how long its lost request had run: when
        the server may still be at it, the watch goes on (see `_watch`). Raises ApiError when
        looking fails."""
        if not failure.maybe_done:
            return None
        try:
            looked = self._clock()
            found = await find_committed()
            if found is None and failure.still_running and watch is not None:
                watched, lost_after = watch
                found = await self._watch(find_committed, failure, watched, lost_after,
                                          unseen=looked)
            return found
        except ApiError as error:
            raise self.error(
                ApiError,
                f"{call.description}: {failure.description}, and checking whether it was "
                f"carried out failed too ({error}); it may or may not have happened",
                status=failure.status,
            ) from None

    async def _watch(
        self, find_committed: Callable[[], Awaitable[_T | None]], failure: _Failure,
        watched: str, lost_after: float, *, unseen: float,
    ) -> _T | None:
        """Look for a lost send's result again and again (pauses doubling from
        WATCH_FIRST_PAUSE to WATCH_MAX_PAUSE) until it is found or the watch the answer times
        call for has passed. The watch is asked again at every look, so that it follows what
        sends to other conversations observe meanwhile; `-v` says how long and why. A result
        that appears meanwhile (it was not there at `unseen`, when the look before the watch
        began) is an answer time too: the `lost_after` seconds its request ran, and the time
        from `unseen` until it was found."""
        began = self._clock()
        watch = self.answer_times.watch(began, lost_after=lost_after)
        log.info("the answer to a send to %s was lost (%s); watching its transcript %s",
                 watched, failure.description, watch.describe())
        pause = WATCH_FIRST_PAUSE
        while (left := began + watch.seconds - self._clock()) > 0:
            await self._sleep(min(pause, left))
            pause = min(pause * 2, WATCH_MAX_PAUSE)
            found = await find_committed()
            if found is not None:
                self.answer_times.record(lost_after + self._clock() - unseen)
                log.info("the lost send to %s is in its transcript (found after %.1f s)",
                         watched, self._clock() - began)
                return found
            latest = self.answer_times.watch(self._clock(), lost_after=lost_after)
            if latest.basis is not watch.basis:
                log.info("the watch of %s now lasts %s", watched, latest.describe())
            watch = latest
        log.info("the lost send to %s is not in its transcript after %.1f s", watched,
                 self._clock() - began)
        return None

    async def _timed_attempt(
        self, call: Call, attempt: int, call_started: float | None
    ) -> tuple[_Answer | _Failure, float]:
        """`_attempt` for a send, timed in the answer times from its request's start (see
        `_request_starts`) to its answer; also returns how long the request ran (0 when it
        never started)."""
        timing = _SendTiming()
        token = _SEND_TIMING.set(timing)
        try:
            outcome = await self._attempt(call, attempt, call_started)
        except BaseException:
            if timing.ticket is not None:
                self.answer_times.ended(timing.ticket)
            raise
        finally:
            _SEND_TIMING.reset(token)
        if timing.ticket is None:
            return outcome, 0.0
        now = self._clock()
        if isinstance(outcome, _Answer):
            self.answer_times.answered(timing.ticket, now)
        else:
            self.answer_times.ended(timing.ticket)
        return outcome, now - timing.started

    async def _request_starts(self, request: httpx.Request) -> None:
        """The httpx request hook: a send attempt's request starts now (after its turn)."""
        timing = _SEND_TIMING.get()
        if timing is not None and timing.ticket is None:
            timing.started = self._clock()
            timing.ticket = self.answer_times.started(timing.started)

    # -- one attempt --------------------------------------------------------------------------

    async def call(self, call: Call) -> object:
        """Make an idempotent call (GET, PUT, DELETE): after a failure there is nothing to
        look for, since trying it again is safe."""
        return await self.with_retries(call, _nothing_to_find, _as_sent)

    async def _wait_refused(self, call: Call, failure: _Failure, started: float) -> None:
        """Wait out a refusal (429 for the rate): its Retry-After, else a backoff growing
        with the refusals in a row. Only the call's deadline bounds it: raises ApiError when
        the wait would end after it."""
        self.stats.retries += 1
        wait = self.settings.retry.delay(
            min(self._refused_in_row, 60), retry_after=failure.retry_after, uniform=self._uniform)
        deadline = self.settings.retry.deadline
        if self._clock() + wait > started + deadline:
            raise self.error(
                ApiError, f"{call.description} failed: the API kept refusing it for its rate "
                f"({failure.description}); the API's rate limit left no room within the call's "
                f"deadline ({deadline:g} s)", status=429, retryable=True)
        if wait > 0:
            await self._sleep(wait)

    def _next_delay(self, call: Call, failure: _Failure, attempt: int, started: float) -> float:
        """Seconds to wait before the next attempt. Raises ApiError when none is left."""
        policy = self.settings.retry
        delay = policy.delay(attempt, retry_after=failure.retry_after, uniform=self._uniform)
        if policy.may_retry(attempt=attempt, elapsed=self._clock() - started, delay=delay):
            return delay
        plural = "attempt" if attempt == 1 else "attempts"
        raise self.error(
            ApiError,
            f"{call.description} failed: {failure.description} after {attempt} {plural}",
            status=failure.status,
            retryable=True,
        )

    async def _turn(self, call: Call, started: float | None) -> float:
        """Wait for the pacer to let a request of `call` start; return the seconds the
        request may take. `started` is when the call's first request was sent (None: this is
        it); the call's deadline bounds every wait after that. Raises ApiError when the
        deadline would pass first."""
        deadline = self.settings.retry.deadline
        while True:
            turn = self.pacer.turn()
            left = math.inf if started is None else started + deadline - self._clock()
            if turn.seconds <= 0 and left > 0:
                self.pacer.started()
                return min(call.timeout or self.settings.timeout, left)
            if not turn.for_answer and turn.seconds >= left:
                raise self.error(
                    ApiError, f"{call.description} failed: the API's rate limit left no room "
                    f"for another attempt within the call's deadline ({deadline:g} s)",
                    status=429, retryable=True)
            if turn.for_answer:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._answer.wait(), turn.seconds)
            else:
                await self._sleep(turn.seconds)

    def _answered(self, headers: RateHeaders | None, *, refused: bool = False,
                  started_at: float | None = None) -> None:
        """Tell the pacer how a request ended (None: without an answer); wake the requests
        waiting for an answer."""
        if headers is None:
            self.pacer.lost()
        else:
            self.pacer.answered(headers, refused=refused, started_at=started_at)
        self._answer.set()
        self._answer = asyncio.Event()

    async def _attempt(
        self, call: Call, attempt: int, call_started: float | None
    ) -> _Answer | _Failure:
        """One HTTP request, when the pacer allows it and within the time left; raises what
        must not be retried, returns what may be. The answer is read as it arrives, and its
        body is not kept beyond `settings.max_answer_bytes` decoded (see `_receive`)."""
        seconds = await self._turn(call, call_started)
        self.stats.requests += 1
        request = self._http.build_request(
            call.method, call.path, params=call.params, json=call.body,
            headers={"Accept-Encoding": ACCEPTED_CODINGS, **(call.headers or {})},
            timeout=self._http.timeout if call.timeout is None else _timeout(call.timeout),
        )
        target = request.url.raw_path.decode("ascii", errors="replace")
        started = self._clock()
        answered = False
        try:
            async with asyncio.timeout(seconds):
                response = await self._http.send(request, stream=True)
                try:
                    received = await _receive(
                        response, limit=self.settings.max_answer_bytes,
                        retry_after_cap=self.settings.retry.retry_after_cap)
                finally:
                    await response.aclose()
            answered = True
        except TimeoutError:
            self._log(call.method, target, "timeout", started, attempt)
            return _Failure(f"no answer within {seconds:g} s (the whole request)", None, None,
                            maybe_done=True, still_running=True)
        except httpx.TransportError as error:
            self._log(call.method, target, type(error).__name__, started, attempt)
            refused = _certificate_refused(error)
            if refused is not None:  # final: retrying cannot make the certificate trusted
                raise self.error(
                    ApiError, f"{call.description} failed: the TLS certificate of "
                    f"{_ascii_host(request.url)} could not be verified ({refused}); certificate "
                    "checks are never turned off (set SSL_CERT_FILE to trust a private CA)"
                ) from None
            return _transport_failure(error, timeout=call.timeout or self.settings.timeout,
                                      where=_host_port(request.url))
        finally:
            if not answered:
                self._answered(None)
        self._log(call.method, target, received.status, started, attempt)
        self._pace_after(call, received, started)
        return self._interpret(call, received, attempt)

    def _pace_after(self, call: Call, received: _Received, started: float) -> None:
        """Tell the pacer what an answer to a request sent at `started` says of the budget
        (a 429 about query credits is not about the rate)."""
        refused = received.status == 429 and not (
            call.spends_credits and "credit" in _server_message(received.body).lower())
        if refused:
            self.stats.refusals += 1
            self._refused_in_row += 1
        else:
            self._refused_in_row = 0
        self._answered(
            RateHeaders.read(received.headers, received.retry_after if refused else None),
            refused=refused, started_at=started)

    def _interpret(self, call: Call, received: _Received, attempt: int) -> _Answer | _Failure:
        """What an answer means: data, a failure to retry, or (raised) a final error. A
        success whose body was not kept is a malformed body: final for a read, looked up for
        a write (it happened)."""
        status = received.status
        if 200 <= status < 300:
            try:
                return _Answer(_envelope_data(received))
            except MalformedBody as problem:
                return _Answer(None, problem)
        heading = f"HTTP {status} ({_phrase(status)})"
        said = _server_message(received.body)
        refusal = call.refusal() if status == 403 else None
        if refusal is not None:  # the key's role, not the key: only this call fails
            raise self.error(ForbiddenError, f"{call.description} was refused (HTTP 403): "
                              f"{refusal}", status=status)
        if status in (401, 403):
            raise self.error(
                AuthError,
                f"the API rejected the key ({heading}): check {API_KEY_VARIABLE} or --api-key-file",
                status=status,
            )
        if status == 404 and call.gone_is_success and attempt > 1:
            return _Answer(None)
        if status == 404 and call.not_found is not None:
            raise self.error(NotFoundError, call.not_found, status=status)
        if status == 429 and call.spends_credits and "credit" in said.lower():
            raise self.error(
                CreditsExhaustedError,
                f"{call.description} failed: the account's query credits are exhausted ({said})",
                status=status,
            )
        if status in RETRYABLE_STATUSES:
            return _Failure(heading, status, received.retry_after, maybe_done=status != 429,
                            still_running=status in GATEWAY_STATUSES)
        detail = f": {said}" if said else f" ({received.unread})" if received.unread else ""
        raise self.error(ApiError, f"{call.description} failed: {heading}{detail}", status=status)

    # -- helpers ---------------------------------------------------------------------------

    def parse(self, call: Call, data: object, parse: Callable[[object], _T]) -> _T:
        """`parse` applied to a call's data. Raises ApiError naming the call when the data do
        not fit."""
        try:
            return parse(data)
        except MalformedBody as problem:
            raise self._malformed(call, problem) from None

    def _malformed(self, call: Call, problem: MalformedBody) -> ApiError:
        return self.error(
            ApiError,
            f"{call.description} failed: the API answered with an unexpected body ({problem})",
        )

    def error(
        self, kind: type[_E], message: str, *, status: int | None = None, retryable: bool = False
    ) -> _E:
        """An error whose text cannot contain the token, whatever a server echoed."""
        secret = self.settings.api_key.reveal()
        return kind(message.replace(secret, "********"), status=status, retryable=retryable)

    def _log(self, method: str, target: str, outcome: object, started: float, attempt: int) -> None:
        elapsed_ms = (self._clock() - started) * 1000.0
        log.debug(
            "%s %s -> %s in %.0f ms (attempt %d)", method, target, outcome, elapsed_ms, attempt
        )



def _log_pace(text: str) -> None:
    logging.getLogger("reconciler.pace").info("%s", text)


def _warn_pace(text: str) -> None:
    """Say, at default verbosity, that the API's rate limit makes the run slow."""
    logging.getLogger("reconciler.pace").warning("warning: %s", text)


def _timeout(seconds: float) -> httpx.Timeout:
    return httpx.Timeout(seconds, pool=None)



def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "unknown status"


def _certificate_refused(error: BaseException) -> str | None:
    """The reason when `error` comes from a failed TLS certificate verification, else None."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return str(seen.verify_message or seen.reason or "not trusted")
        seen = seen.__cause__ or seen.__context__
    return None


def _host_port(url: httpx.URL) -> str:
    port = url.port or (443 if url.scheme == "https" else 80)
    return f"{_ascii_host(url)}:{port}"


def _ascii_host(url: httpx.URL) -> str:
    """The host as sent (IDNA "xn--" form): a decoded name can imitate another one."""
    return url.raw_host.decode("ascii", errors="replace")


def _transport_failure(error: httpx.TransportError, *, timeout: float, where: str) -> _Failure:
    """What a network error means: whether the request may have reached the server."""
    name = type(error).__name__
    never_sent = isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    if isinstance(error, httpx.TimeoutException):
        text = f"no answer within {timeout:g} s ({name})"
    elif never_sent:
        text = f"could not connect to {where} ({name})"
    else:
        text = f"the connection broke ({name})"
    return _Failure(text, None, None, maybe_done=not never_sent, still_running=not never_sent)


# What the client asks for and decodes itself, each step bounded (see `_receive`).
ACCEPTED_CODINGS = "gzip, deflate"
_GZIP_CODINGS = frozenset({"gzip", "x-gzip"})


@dataclass(frozen=True)
class _Received:
    """An answer as read: its status and headers, the seconds its `Retry-After` asks for
    (capped; None: none, or unreadable), and its decoded body, or why the body was not kept
    (`unread`, "" when it was)."""

    status: int
    headers: httpx.Headers
    retry_after: float | None
    body: bytes = b""
    unread: str = ""


class _Unreadable(Exception):
    """An answer's body that is not kept; the text says why, in user words."""


async def _receive(response: httpx.Response, *, limit: int,
                   retry_after_cap: float) -> _Received:
    """Read a streamed answer: its `Retry-After` (at most `retry_after_cap`), and its body as
    it arrives, decoding its Content-Encoding here, so that no more than `limit` decoded bytes
    are ever held: a body of a few hundred KiB can inflate to gigabytes, and httpx would
    inflate each chunk whole. Raises what reading raises (httpx.TransportError)."""
    status, headers = response.status_code, response.headers
    retry_after = _retry_after(headers, cap=retry_after_cap)
    try:
        if response.is_stream_consumed:  # built in memory (an injected transport), decoded
            body = _Body("", limit=limit)
            body.feed(response.content)
        else:
            body = _Body(headers.get("Content-Encoding", ""), limit=limit)
            async for chunk in response.aiter_raw():
                body.feed(chunk)
    except _Unreadable as problem:
        return _Received(status, headers, retry_after, unread=str(problem))
    return _Received(status, headers, retry_after, body.content())


class _Body:
    """An answer's body, decoded as it arrives (gzip, deflate or as sent) and refused once it
    passes `limit` bytes: each step of zlib's output is bounded by the room left.

    A coding the client did not ask for is read as sent, as httpx does (the JSON parser then
    says what is wrong); two codings stacked are refused (a bomb inside a bomb).
    """

    def __init__(self, coding: str, *, limit: int) -> None:
        codings = [c.strip().lower() for c in coding.split(",")]
        known = [c for c in codings if c in _GZIP_CODINGS or c == "deflate"]
        if len(known) > 1:
            raise _Unreadable(f"the answer was compressed more than once (Content-Encoding "
                              f"{coding[:40]!r})")
        self._coding = known[0] if known else ""
        self._limit, self._size = limit, 0
        self._parts: list[bytes] = []
        self._head = b""  # deflate: its first bytes, until they tell zlib-wrapped from raw
        self._inflate = (zlib.decompressobj(zlib.MAX_WBITS | 16)
                         if self._coding in _GZIP_CODINGS else None)

    def feed(self, raw: bytes) -> None:
        """The next bytes as received. Raises _Unreadable."""
        if self._coding == "deflate" and self._inflate is None:
            raw, self._head = self._head + raw, b""
            if len(raw) < 2:
                self._head = raw
                return
            self._inflate = zlib.decompressobj(zlib.MAX_WBITS if _zlib_wrapped(raw)
                                               else -zlib.MAX_WBITS)
        if self._inflate is None:
            self._keep(raw)
            return
        data = raw
        while data:
            try:
                out = self._inflate.decompress(data, self._limit - self._size + 1)
            except zlib.error:
                raise _Unreadable(f"the answer's body is not valid {self._coding}") from None
            self._keep(out)
            data = self._inflate.unconsumed_tail

    def content(self) -> bytes:
        """The whole body, decoded."""
        return b"".join(self._parts)

    def _keep(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self._limit:
            raise _Unreadable(f"the answer was larger than {_amount(self._limit)}")
        if data:
            self._parts.append(data)


def _zlib_wrapped(start: bytes) -> bool:
    """Whether a deflate body starts with a zlib header (as HTTP says it should) rather than
    raw deflate (as some servers send it)."""
    method, flags = start[0], start[1]
    return method & 0x0F == 8 and (method << 8 | flags) % 31 == 0


def _amount(size: int) -> str:
    """A number of bytes in words: "64 MiB", "512 KiB", "1000 bytes"."""
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} bytes"


def _retry_after(headers: httpx.Headers, *, cap: float) -> float | None:
    """The seconds an answer's `Retry-After` asks for, at most `cap`; None when it has none
    or it is unreadable (a debug log then says so, nothing more)."""
    value = headers.get("Retry-After")
    seconds = parse_retry_after(value)
    if seconds is None:
        if value is not None:
            log.debug("ignored a Retry-After that is neither seconds nor an HTTP date")
        return None
    return min(seconds, cap)


def _envelope_data(received: _Received) -> object:
    """The `data` of a success envelope. Raises MalformedBody, also when the body was not
    kept."""
    if received.unread:
        raise MalformedBody(received.unread)
    try:
        body = parse_json(received.body)
    except JsonError as error:
        kind = received.headers.get("Content-Type", "no content type").split(";")[0][:60]
        raise MalformedBody(
            f"the body is {error} ({kind!r}, {len(received.body)} bytes)"
        ) from None
    envelope = Record(body, what="the response")
    status = envelope.get("status")
    if status != "success":
        raise MalformedBody(f"its status is {str(status)[:40]!r}, not 'success'")
    return envelope.get("data")


def _server_message(body: bytes) -> str:
    """The message of an error envelope, shortened; "" when there is none."""
    try:
        message = parse_json(body)["data"]["message"]
    except (JsonError, KeyError, TypeError, IndexError):
        return ""
    return " ".join(message.split())[:200] if isinstance(message, str) else ""  # one line


async def _nothing_to_find() -> object | None:
    """What an idempotent call looks for after a failure: nothing (it is simply tried again)."""
    return None


def _as_sent(data: object) -> object:
    """An answer's data, parsed by the caller."""
    return data

