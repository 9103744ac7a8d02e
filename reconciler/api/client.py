"""The CustomGPT.ai API client: the only module that speaks HTTP.

One `httpx.AsyncClient` (one connection pool) per `Client`. Every httpx error is translated
here, once, into an `ApiError` subclass whose message is in user words and never contains the
API token. GET, PUT and DELETE are retried (see `reconciler.api.retry`); POSTs are retried only
after checking that the first attempt did not already happen (see `create_conversation` and
`send_message`). Listings are read with `reconciler.api.decoding`.
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
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import TracebackType
from typing import TypeVar
from urllib.parse import quote, urlsplit

import httpx

from reconciler import __version__
from reconciler.api.answer_times import AnswerTimes
from reconciler.api.decoding import (
    Listing,
    MalformedBody,
    Page,
    Record,
    parse_conversation,
    parse_conversation_page,
    parse_message,
    parse_message_page,
    parse_no_answer_message,
    parse_project,
    parse_query_credits,
    parse_retention,
    parse_user,
    read_all_pages,
)
from reconciler.api.live import (
    Conversation,
    Message,
    Project,
    QueryCredits,
    Retention,
    Transcript,
    User,
)
from reconciler.api.pacer import Pacer, RateHeaders
from reconciler.api.protocol import USER_FILTERS, ClientStats
from reconciler.api.retry import RETRYABLE_STATUSES, RetryPolicy, parse_retry_after
from reconciler.api.settings import (
    DEFAULT_BASE_URL,
    ClientSettings,
    Secret,
    is_loopback,
)
from reconciler.desired.model import Reaction, is_throwaway
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
from reconciler.text import normal_form

log = logging.getLogger("reconciler.http")

# Statuses a gateway gives when it stopped waiting: the server behind it may still be working.
GATEWAY_STATUSES = frozenset({502, 504})
# After a send that may still be under way, the transcript is read again after these pauses
# (doubling), for as long as the answer times say (see `reconciler.api.answer_times`).
WATCH_FIRST_PAUSE = 0.25
WATCH_MAX_PAUSE = 5.0
# The page size conversation listings ask for (`per_page`). The API documents none for them;
# the vendor's own UI sends 20, its other listings take up to 100 (`limit`), and a service that
# honours it caps it somewhere: each answer's own `per_page` says what the server did.
PER_PAGE = 100
# What a 403 on a write means: the key's role, not the key (reads keep the key's message).
ROLE_MAY_NOT_CHANGE = ("the API key's role may not change this conversation (a team member's "
                       "key may change only its own)")
ROLE_MAY_NOT_CREATE = "the API key's role may not create conversations in this project"

_T = TypeVar("_T")
_E = TypeVar("_E", bound=ApiError)

__all__ = [
    "DEFAULT_BASE_URL",
    "Client",
    "ClientSettings",
    "ClientStats",
    "RetryPolicy",
    "Secret",
]


@dataclass(frozen=True)
class _Call:
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
    # key's, a write's is ROLE_MAY_NOT_CHANGE); see `Client._interpret`.
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


class Client:
    """An async CustomGPT.ai API client with one connection pool; use `async with`.

    `transport` replaces the network (tests); `sleep`, `uniform` and `clock` replace
    `asyncio.sleep`, `random.uniform` and `time.monotonic` so that tests need not wait.
    Every request waits for its turn from one `Pacer` (see `reconciler.api.pacer`), which keeps
    the client within the key's request budget; `pacer` is that pacer.
    Every method raises `AuthError` (401, or 403 on a read), `ForbiddenError` (403 on a write:
    the key's role), `NotFoundError` (404) or `ApiError` (anything else that failed), never an
    httpx exception, and never with the API token in its text.

    Listings ask for `PER_PAGE` conversations a page and read how many came from each answer;
    `userFilter=me` is asked for where the service serves it (found out once: see
    `_own_page`).
    """

    def __init__(
        self,
        settings: ClientSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        uniform: Uniform = random.uniform,
        clock: Clock = time.monotonic,
    ) -> None:
        self.settings = settings
        self.stats = ClientStats()
        self._sleep, self._uniform, self._clock = sleep, uniform, clock
        self.pacer = Pacer(settings.pace, clock=clock, on_pace=_log_pace, on_slow=_warn_pace)
        self.answer_times = AnswerTimes(upper=settings.send_timeout, fixed=settings.send_watch)
        self._answer = asyncio.Event()
        self._refused_in_row = 0
        self._me: User | None = None
        self._highest_id: dict[int, int] = {}
        self._team_includes_owner: bool | None = None  # unknown until a listing shows it
        self._me_served: bool | None = None  # userFilter=me: unknown until asked once
        self._me_lock = asyncio.Lock()
        self._per_page: int | None = PER_PAGE  # None: the service refused it (400)
        self._page_size_told = False
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

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    def __repr__(self) -> str:
        return f"Client(base_url={self.settings.base_url!r})"

    # -- reading ---------------------------------------------------------------------------

    async def current_user(self) -> User:
        """The user the API key belongs to (asked once, then remembered)."""
        if self._me is None:
            call = _Call("reading the API key's user", "GET", "/api/v1/user")
            self._me = self._parse(call, await self._call(call), parse_user)
        return self._me

    async def query_credits(self) -> QueryCredits | None:
        """The account's query credits (one request), None when the API does not serve
        them (404). Raises ApiError."""
        call = _Call("reading the account's query credits", "GET", "/api/v1/limits/usage",
                     not_found="the API does not report query credits")
        try:
            return self._parse(call, await self._call(call), parse_query_credits)
        except NotFoundError:
            return None

    async def get_project(self, project_id: int) -> Project:
        """A project. Raises NotFoundError when it does not exist or is not visible."""
        call = _Call(
            f"reading project {project_id}",
            "GET",
            _project_path(project_id),
            not_found=_project_missing(project_id),
        )
        return self._parse(call, await self._call(call), parse_project)

    async def no_answer_message(self, project_id: int) -> str | None:
        """The project's "I don't know" message (`no_answer_message` of its settings); None
        when the settings hold none, or one that is not text. Raises NotFoundError when the
        project does not exist or is not visible."""
        call = _Call(
            f"reading the settings of project {project_id}",
            "GET",
            f"{_project_path(project_id)}/settings",
            not_found=_project_missing(project_id),
        )
        return self._parse(call, await self._call(call), parse_no_answer_message)

    async def project_retention(self, project_id: int) -> Retention | None:
        """How long the project keeps its conversations, from its settings (one request);
        None when the API does not serve them (404). Raises ForbiddenError (403: the key's
        role may not read them), ApiError (also for settings that say no known period)."""
        call = _Call(f"reading the settings of project {project_id}", "GET",
                     f"{_project_path(project_id)}/settings",
                     not_found=f"project {project_id} has no settings the API shows",
                     refused="the API key's role may not read the project's settings")
        try:
            return self._parse(call, await self._call(call), parse_retention)
        except NotFoundError:
            return None

    async def list_conversations(
        self, project_id: int, *, user_filter: str = "all", name: str | None = None,
        first: Page[Conversation] | None = None, throwaways: bool = False,
    ) -> list[Conversation]:
        """Every conversation of a project (optionally only those named `name`), by id,
        but `reconciler test`'s throwaway conversations (`is_throwaway`): the one place they
        are left out of live state, so that no plan, check, export or restore sees them; with
        `throwaways`, only those (for the run that made them, and the sweep).

        `user_filter` is the API's `userFilter`: all, anonymous, team_member or me. `team_member`
        means every conversation with a creator, the key's own user's included, whether or
        not the server's filter includes them (see `_team_listing`); `me` means the key's
        user's, whether or not the server serves `me` (see `_own_listing`). The server decides
        how `name` matches; callers compare names themselves. `first` is page 1 of this listing
        as `conversation_page` read it, so that it is not read again. Raises NotFoundError for
        a missing project, ListingError when the listing keeps shifting, ApiError when a page
        finally fails (never a partial listing).
        """
        _check_filter(user_filter)
        if user_filter == "me":
            found = await self._own_listing(project_id, name, first=first)
        elif user_filter == "team_member":
            found = await self._team_listing(project_id, name, first=first)
        else:
            found = await self._listing(project_id, user_filter, name, first=first)
        if name is None and user_filter != "anonymous":  # it shows all of the key's user's
            self._remember_highest_id(project_id, max((c.id for c in found), default=0))
        return sorted((c for c in found if is_throwaway(c.name) is throwaways),
                      key=lambda c: c.id)

    async def conversation_page(
        self, project_id: int, number: int, *, user_filter: str = "all", name: str | None = None
    ) -> Page[Conversation]:
        """One page of a project's conversations, oldest first, read as `list_conversations`
        reads that listing once it knows what `team_member` and `me` mean (until then, as the
        API's `userFilter`; `me` where it is refused, as a team listing): page 1 tells how many
        pages the listing has, and its `source` which `userFilter` it is a page of. A page as
        the server gave it (throwaway conversations too: its count must add up): live state
        is what `list_conversations` returns. Raises NotFoundError, ApiError."""
        _check_filter(user_filter)
        if user_filter == "me":
            page = await self._own_page(project_id, number, name)
        else:
            fetch, _ = self._page_reader(project_id, self._as_read(user_filter), name)
            page = await fetch(number)
        if name is None and user_filter != "anonymous" and page.number == page.last_page:
            # The last page of an unfiltered listing holds the newest conversations.
            self._remember_highest_id(project_id, max((c.id for c in page.items), default=0))
        return page

    def _as_read(self, user_filter: str) -> str:
        """The `userFilter` the first page of a listing of `user_filter` is read with: a team
        listing reads `all` until it is known to hold the key's own conversations."""
        if user_filter == "team_member" and not self._team_includes_owner:
            return "all"
        return user_filter

    async def _own_listing(
        self, project_id: int, name: str | None, *, first: Page[Conversation] | None = None
    ) -> list[Conversation]:
        """The key's user's conversations: the `userFilter=me` listing where the service
        serves it, else the team listing (see `_team_listing`); either way only those the
        user created are kept (a service that ignored `me` would show everyone's). `first` is
        page 1 as `conversation_page` read it for `me`."""
        if first is None:
            first = await self._own_page(project_id, 1, name)
        if first.source == "me":
            listed = await self._listing(project_id, "me", name, first=first)
        else:
            listed = await self._team_listing(project_id, name, first=first)
        me = await self.current_user()
        return [c for c in listed if c.created_by == me.id]

    async def _own_page(
        self, project_id: int, number: int, name: str | None
    ) -> Page[Conversation]:
        """Page `number` of the key's user's listing: of `userFilter=me` where the service
        serves it, else of the team listing as it is read (`_as_read`).

        Whether it does is found out by the client's first `me` request, which goes alone
        (the others wait for its answer): a 400 means the service does not know `me` (a
        deployment from before 2025), and the client never asks for it again.
        """
        if self._me_served is None:
            async with self._me_lock:
                if self._me_served is None:
                    fetch, _ = self._page_reader(project_id, "me", name)
                    try:
                        page = await fetch(number)
                    except ApiError as error:
                        if error.status != 400:
                            raise
                        self._me_served = False
                        log.info("the API refuses userFilter=me (HTTP 400): scope mine lists "
                                 "the team's conversations and keeps the API key's own")
                    else:
                        self._me_served = True
                        log.info("the API serves userFilter=me: scope mine lists only the API "
                                 "key's own conversations")
                        return page
        as_read = "me" if self._me_served else self._as_read("team_member")
        fetch, _ = self._page_reader(project_id, as_read, name)
        return await fetch(number)

    async def _team_listing(
        self, project_id: int, name: str | None, *, first: Page[Conversation] | None = None
    ) -> list[Conversation]:
        """Every conversation with a creator, the key's user's included.

        The API does not say whether `userFilter=team_member` includes the key's own user, so
        until a team listing has shown one of the user's conversations (then it does, for the
        client's lifetime), the listing is checked: a project whose whole `userFilter=all`
        listing fits on one page is read that way; otherwise the team listing is complete when
        its count plus the anonymous count is the total. When it is not, the filter leaves the
        owner out, and from then on `userFilter=all` is read and anonymous conversations are
        dropped here.
        """
        if first is not None and first.source == "all" and first.last_page == 1 \
                and len(first.items) == first.total:  # the whole listing, read already
            return _with_creator(list(first.items))
        known = self._team_includes_owner
        if known is not None:
            user_filter = "team_member" if known else "all"
            return _with_creator(await self._listing(project_id, user_filter, name, first=first))
        everyone = first if first is not None and first.source == "all" else \
            await self._first_page(project_id, "all", name)
        if everyone.last_page == 1 and len(everyone.items) == everyone.total:
            return _with_creator(list(everyone.items))
        team = await self._listing(project_id, "team_member", name)
        me = await self.current_user()
        if any(c.created_by == me.id for c in team):
            self._team_includes_owner = True
            return team
        anonymous = await self._first_page(project_id, "anonymous", name)
        if everyone.total == len(team) + anonymous.total:
            return team
        self._team_includes_owner = False
        log.info("userFilter=team_member leaves out the API key's own conversations; "
                 "listing with userFilter=all instead")
        return _with_creator(await self._listing(project_id, "all", name))

    async def _listing(
        self, project_id: int, user_filter: str, name: str | None, *,
        first: Page[Conversation] | None = None,
    ) -> list[Conversation]:
        """One listing as the server gives it, every page; `first`, when given, is its page 1
        (read already)."""
        fetch, what = self._page_reader(project_id, user_filter, name)
        unread = [first] if first is not None and first.source == user_filter else []

        async def fetch_once(number: int) -> Page[Conversation]:
            if number == 1 and unread:
                return unread.pop()
            return await fetch(number)

        return await self._read_listing(fetch_once, what, key=lambda c: c.session_id)

    async def _first_page(
        self, project_id: int, user_filter: str, name: str | None
    ) -> Page[Conversation]:
        """The first page of a listing (its total, and its items)."""
        fetch, _ = self._page_reader(project_id, user_filter, name)
        return await fetch(1)

    def _page_reader(
        self, project_id: int, user_filter: str, name: str | None
    ) -> tuple[Callable[[int], Awaitable[Page[Conversation]]], str]:
        """How to read one page of a listing, and what the listing is in user words."""
        what = f"conversations of project {project_id}"
        if name is not None:
            what += f" named {name!r}"
        params: dict[str, str | int] = {"order": "asc", "orderBy": "id", "userFilter": user_filter}
        if name is not None:
            params["name"] = name

        async def fetch(number: int) -> Page[Conversation]:
            asked = self._per_page
            call = _Call(
                f"listing {what}",
                "GET",
                f"{_project_path(project_id)}/conversations",
                params={"page": number, **params, **({"per_page": asked} if asked else {})},
                not_found=_project_missing(project_id),
            )
            try:
                data = await self._call(call)
            except ApiError as error:
                if not self._per_page_refused(error, asked=asked, user_filter=user_filter):
                    raise
                return await fetch(number)
            page = self._parse(call, data, lambda v: parse_conversation_page(v, number))
            self._tell_page_size(page.per_page, asked)
            return replace(page, source=user_filter)

        return fetch, what

    def _per_page_refused(self, error: ApiError, *, asked: int | None, user_filter: str) -> bool:
        """Whether `error`, the answer to a listing that asked for `asked` a page, says the
        service refuses `per_page` (a 400 that no other parameter can explain: a first `me`
        request's 400 is taken to be about `me`). Then it is never sent again."""
        if asked is None or error.status != 400 or type(error) is not ApiError:
            return False
        if user_filter == "me" and not self._me_served:
            return False
        self._per_page = None
        log.info("the API refuses per_page=%d on conversation listings (HTTP 400): listings "
                 "are read in the pages the API chooses", asked)
        return True

    def _tell_page_size(self, per_page: int, asked: int | None) -> None:
        """Say once (-v) how many conversations a listing page holds, and whether the
        service did as asked."""
        if self._page_size_told:
            return
        self._page_size_told = True
        said = logging.getLogger("reconciler.listing")
        if asked is None:
            said.info("conversation listings come %d a page", per_page)
        else:
            said.info("conversation listings come %d a page (asked for %d)", per_page, asked)

    async def get_transcript(self, project_id: int, session_id: str) -> Transcript:
        """A conversation with all its messages (every page), oldest first.

        Raises NotFoundError when the conversation does not exist, ListingError or ApiError
        as `list_conversations` does.
        """
        conversation: list[Conversation] = []

        async def fetch(number: int) -> Page[Message]:
            call = _Call(
                f"reading the messages of conversation {session_id} in project {project_id}",
                "GET",
                f"{_session_path(project_id, session_id)}/messages",
                params={"page": number, "order": "asc"},
                not_found=_session_missing(project_id, session_id),
            )
            data = await self._call(call)
            owner, page = self._parse(call, data, lambda v: parse_message_page(v, number))
            if number == 1:
                conversation[:] = [owner]
            return page

        what = f"messages of conversation {session_id}"
        messages = await self._read_listing(fetch, what, key=lambda m: m.id)
        ordered = tuple(sorted(messages, key=lambda m: m.id))
        return Transcript(conversation=conversation[0], messages=ordered)

    async def newest_message_id(self, project_id: int, session_id: str) -> int:
        """The id of the conversation's newest message, 0 when it has none: one request
        (the first page, newest first), whatever the transcript's length.

        Raises NotFoundError when the conversation does not exist, ApiError.
        """
        call = _Call(
            f"reading the newest message of conversation {session_id} in project {project_id}",
            "GET",
            f"{_session_path(project_id, session_id)}/messages",
            params={"page": 1, "order": "desc"},
            not_found=_session_missing(project_id, session_id),
        )
        data = await self._call(call)
        _, page = self._parse(call, data, lambda v: parse_message_page(v, 1))
        return max((m.id for m in page.items), default=0)

    # -- writing ---------------------------------------------------------------------------

    async def create_conversation(self, project_id: int, name: str) -> Conversation:
        """Create a conversation and return it; never creates two.

        After an ambiguous failure (the request may have reached the server) it lists the
        project's conversations with that name and returns a new one created by the key's
        user instead of trying again. Raises NotFoundError for a missing project, ApiError.
        """
        is_new = await self._new_conversation_test(project_id, name)
        call = _Call(
            f"creating conversation {name!r} in project {project_id}",
            "POST",
            f"{_project_path(project_id)}/conversations",
            body={"name": name},
            not_found=_project_missing(project_id),
            refused=ROLE_MAY_NOT_CREATE,
        )

        async def find_committed() -> Conversation | None:
            me = await self.current_user()
            listing = await self.list_conversations(project_id, name=normal_form(name),
                                                    throwaways=is_throwaway(name))
            ours = [c for c in listing if normal_form(c.name) == normal_form(name)
                    and c.created_by == me.id and is_new(c)]
            return min(ours, key=lambda c: c.id) if ours else None

        created = await self._with_retries(call, find_committed, parse_conversation)
        self._remember_highest_id(project_id, created.id)
        return created

    async def rename_conversation(
        self, project_id: int, session_id: str, name: str
    ) -> Conversation:
        """Give a conversation a new name and return it. Raises NotFoundError, ApiError."""
        call = _Call(
            f"renaming conversation {session_id} in project {project_id} to {name!r}",
            "PUT",
            _session_path(project_id, session_id),
            body={"name": name},
            not_found=_session_missing(project_id, session_id),
        )
        return self._parse(call, await self._call(call), parse_conversation)

    async def delete_conversation(self, project_id: int, session_id: str) -> None:
        """Delete a conversation and its messages. A 404 on a retry counts as done (the first
        attempt did it). Raises NotFoundError (404 at the first attempt), ApiError."""
        call = _Call(
            f"deleting conversation {session_id} in project {project_id}",
            "DELETE",
            _session_path(project_id, session_id),
            not_found=_session_missing(project_id, session_id),
            gone_is_success=True,
        )
        await self._call(call)

    async def send_message(
        self,
        project_id: int,
        session_id: str,
        prompt: str,
        *,
        persona: str | None = None,
        response_source: str | None = None,
        lang: str | None = None,
        newest_id: int | None = None,
        external_id: str | None = None,
        custom_context: str | None = None,
        agent_capability: str | None = None,
        chatbot_model: str | None = None,
    ) -> Message:
        """Send a prompt to a conversation and return the message (prompt and answer).

        The options given (`persona` as `custom_persona`, `response_source`,
        `custom_context`, `agent_capability`, `chatbot_model`) go in the body, `lang` in the
        query. The send carries `external_id` (when given) and `Cache-Control: no-cache`, so that a
        repeated prompt is answered anew, and waits up to `settings.send_timeout` for a slow
        model. Never sends twice: after an ambiguous failure it reads the transcript and
        returns the message carrying this `external_id`, else the one with this prompt (in
        normal form) newer than `newest_id` (the newest message id before the send; read first
        when None). When the server may still be answering (no answer came), it watches the
        transcript before sending again, for as long as the answer times of this client's
        sends say (`answer_times`, see `reconciler.api.answer_times`): the whole send timeout
        until a send has been answered. Every answered send's time is recorded there.
        Raises CreditsExhaustedError (429 about query credits, not retried), NotFoundError,
        ApiError (also when the server answered from a cache and stored nothing).
        """
        if newest_id is None:
            newest_id = await self.newest_message_id(project_id, session_id)
        before = newest_id
        options = {"custom_persona": persona, "response_source": response_source,
                   "custom_context": custom_context, "agent_capability": agent_capability,
                   "chatbot_model": chatbot_model}
        body: dict[str, object] = {"prompt": prompt}
        body.update((key, value) for key, value in options.items() if value is not None)
        params: dict[str, str | int] = {"stream": 0}
        if lang is not None:
            params["lang"] = lang
        if external_id is not None:
            params["external_id"] = external_id
        call = _Call(
            f"sending a message to conversation {session_id} in project {project_id}",
            "POST",
            f"{_session_path(project_id, session_id)}/messages",
            params=params,
            body=body,
            not_found=_session_missing(project_id, session_id),
            spends_credits=True,
            headers={"Cache-Control": "no-cache"},
            timeout=max(self.settings.send_timeout, self.settings.timeout),
        )

        async def find_committed() -> Message | None:
            transcript = await self.get_transcript(project_id, session_id)
            return _sent_message(transcript.messages, prompt, external_id, after=before)

        message = await self._with_retries(
            call, find_committed, parse_message,
            watched=f"conversation {session_id} in project {project_id}")
        if message.id <= before:
            raise self._error(ApiError, f"{call.description}: the API answered with message "
                              f"{message.id}, not newer than {before}: an answer from a cache, "
                              "and nothing was stored")
        return message

    async def set_reaction(
        self, project_id: int, session_id: str, message_id: int, reaction: Reaction
    ) -> None:
        """Give the answer of message `message_id` the `reaction` (its feedback); setting it
        again changes nothing, so it is retried as any PUT. Raises NotFoundError when the
        conversation or the message does not exist, ApiError."""
        call = _Call(
            f"setting the reaction to message {message_id} of conversation {session_id} in "
            f"project {project_id} to {reaction.value}",
            "PUT",
            f"{_session_path(project_id, session_id)}/messages/{int(message_id)}/feedback",
            body={"reaction": reaction.value},
            not_found=f"message {message_id} not found in conversation {session_id} of "
                      f"project {project_id}",
        )
        await self._call(call)

    # -- listings and write checks ---------------------------------------------------------

    async def _read_listing(
        self, fetch: Callable[[int], Awaitable[Page[_T]]], what: str, *, key: Callable[[_T], object]
    ) -> list[_T]:
        listing = Listing(
            what=what,
            parallelism=self.settings.parallelism,
            max_relists=self.settings.retry.max_relists,
            deadline=self.settings.retry.listing_deadline,
            clock=self._clock,
            paced=self.pacer.seconds_for,
        )
        return await read_all_pages(fetch, key=key, listing=listing, on_relist=self._count_relist)

    def _count_relist(self) -> None:
        self.stats.relists += 1

    def _remember_highest_id(self, project_id: int, highest: int) -> None:
        """Remember that every conversation of the key's user in the project that existed a
        moment ago has an id of at most `highest` (ids only grow)."""
        self._highest_id[project_id] = max(highest, self._highest_id.get(project_id, highest))

    async def _new_conversation_test(
        self, project_id: int, name: str
    ) -> Callable[[Conversation], bool]:
        """How to recognise a conversation created after now: an id above the highest this
        client has seen in the project, or, when it has seen none, a session id that a
        name-filtered listing does not show now."""
        highest = self._highest_id.get(project_id)
        if highest is not None:
            return lambda c: c.id > highest
        listed = await self.list_conversations(project_id, name=normal_form(name))
        existing = {c.session_id for c in listed}
        return lambda c: c.session_id not in existing

    async def _with_retries(
        self,
        call: _Call,
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
        call: _Call,
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
        self, call: _Call, find_committed: Callable[[], Awaitable[_T | None]], failure: _Failure,
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
            raise self._error(
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
        self, call: _Call, attempt: int, call_started: float | None
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

    # -- one call --------------------------------------------------------------------------

    async def _call(self, call: _Call) -> object:
        """Make an idempotent call (GET, PUT, DELETE): after a failure there is nothing to
        look for, since trying it again is safe."""
        return await self._with_retries(call, _nothing_to_find, _as_sent)

    async def _wait_refused(self, call: _Call, failure: _Failure, started: float) -> None:
        """Wait out a refusal (429 for the rate): its Retry-After, else a backoff growing
        with the refusals in a row. Only the call's deadline bounds it: raises ApiError when
        the wait would end after it."""
        self.stats.retries += 1
        wait = self.settings.retry.delay(
            min(self._refused_in_row, 60), retry_after=failure.retry_after, uniform=self._uniform)
        deadline = self.settings.retry.deadline
        if self._clock() + wait > started + deadline:
            raise self._error(
                ApiError, f"{call.description} failed: the API kept refusing it for its rate "
                f"({failure.description}); the API's rate limit left no room within the call's "
                f"deadline ({deadline:g} s)", status=429, retryable=True)
        if wait > 0:
            await self._sleep(wait)

    def _next_delay(self, call: _Call, failure: _Failure, attempt: int, started: float) -> float:
        """Seconds to wait before the next attempt. Raises ApiError when none is left."""
        policy = self.settings.retry
        delay = policy.delay(attempt, retry_after=failure.retry_after, uniform=self._uniform)
        if policy.may_retry(attempt=attempt, elapsed=self._clock() - started, delay=delay):
            return delay
        plural = "attempt" if attempt == 1 else "attempts"
        raise self._error(
            ApiError,
            f"{call.description} failed: {failure.description} after {attempt} {plural}",
            status=failure.status,
            retryable=True,
        )

    async def _turn(self, call: _Call, started: float | None) -> float:
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
                raise self._error(
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
        self, call: _Call, attempt: int, call_started: float | None
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
                raise self._error(
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

    def _pace_after(self, call: _Call, received: _Received, started: float) -> None:
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

    def _interpret(self, call: _Call, received: _Received, attempt: int) -> _Answer | _Failure:
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
            raise self._error(ForbiddenError, f"{call.description} was refused (HTTP 403): "
                              f"{refusal}", status=status)
        if status in (401, 403):
            raise self._error(
                AuthError,
                f"the API rejected the key ({heading}): check {API_KEY_VARIABLE} or --api-key-file",
                status=status,
            )
        if status == 404 and call.gone_is_success and attempt > 1:
            return _Answer(None)
        if status == 404 and call.not_found is not None:
            raise self._error(NotFoundError, call.not_found, status=status)
        if status == 429 and call.spends_credits and "credit" in said.lower():
            raise self._error(
                CreditsExhaustedError,
                f"{call.description} failed: the account's query credits are exhausted ({said})",
                status=status,
            )
        if status in RETRYABLE_STATUSES:
            return _Failure(heading, status, received.retry_after, maybe_done=status != 429,
                            still_running=status in GATEWAY_STATUSES)
        detail = f": {said}" if said else f" ({received.unread})" if received.unread else ""
        raise self._error(ApiError, f"{call.description} failed: {heading}{detail}", status=status)

    # -- helpers ---------------------------------------------------------------------------

    def _parse(self, call: _Call, data: object, parse: Callable[[object], _T]) -> _T:
        try:
            return parse(data)
        except MalformedBody as problem:
            raise self._malformed(call, problem) from None

    def _malformed(self, call: _Call, problem: MalformedBody) -> ApiError:
        return self._error(
            ApiError,
            f"{call.description} failed: the API answered with an unexpected body ({problem})",
        )

    def _error(
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


def _check_filter(user_filter: str) -> None:
    """Raise ValueError for a `userFilter` the client does not read."""
    if user_filter not in USER_FILTERS:
        raise ValueError(f"unknown user filter {user_filter!r}")


def _with_creator(conversations: list[Conversation]) -> list[Conversation]:
    return [c for c in conversations if c.created_by is not None]


def _sent_message(
    messages: Sequence[Message], prompt: str, external_id: str | None, *, after: int
) -> Message | None:
    """The message a send made: the one carrying its `external_id` when the server echoes
    external ids, else the first with the same prompt (in normal form) newer than `after`."""
    if external_id is not None:
        for message in messages:
            if message.external_id == external_id:
                return message
    wanted = normal_form(prompt)
    new = [m for m in messages if m.id > after and normal_form(m.user_query) == wanted]
    return new[0] if new else None


def _project_path(project_id: int) -> str:
    return f"/api/v1/projects/{int(project_id)}"


def _session_path(project_id: int, session_id: str) -> str:
    return f"{_project_path(project_id)}/conversations/{quote(session_id, safe='')}"


def _project_missing(project_id: int) -> str:
    return f"project {project_id} not found or not visible to this API key"


def _session_missing(project_id: int, session_id: str) -> str:
    return f"conversation {session_id} not found in project {project_id}"


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
