"""The CustomGPT.ai API client: the endpoints, over the attempt engine, and what it remembers
of what the API leaves unsaid.

Every call is a `Call` made by one `Engine` (`reconciler.api.engine`, the only module that
speaks HTTP): pacing, retries, 429 waits and error translation are the engine's. GET, PUT and
DELETE are retried; POSTs are retried only after checking that the first attempt did not
already happen (see `create_conversation` and `send_message`). Listings are read with
`reconciler.api.decoding`.

What the client remembers, because the API does not say it (documented at each method): the
key's user; whether `userFilter=team_member` includes the key's own user and whether
`userFilter=me` is served (found out by the first listings that need it, see `_team_listing`
and `_own_page`); whether `per_page` is honoured; the highest conversation id seen in each
project (so that a create can tell its own conversation from older ones after an ambiguous
failure); and how to find its own send in a transcript (see `send_message`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from types import TracebackType
from typing import TypeVar
from urllib.parse import quote

from reconciler.api.decoding import (
    Listing,
    Page,
    parse_cited_source,
    parse_conversation,
    parse_conversation_page,
    parse_message,
    parse_message_page,
    parse_project,
    parse_project_settings,
    parse_query_credits,
    parse_user,
    read_all_pages,
)
from reconciler.api.engine import Call, Clock, Engine, Sleep, Transport, Uniform
from reconciler.api.live import (
    CitedSource,
    Conversation,
    Message,
    Project,
    ProjectSettings,
    QueryCredits,
    Transcript,
    User,
)
from reconciler.api.protocol import USER_FILTERS, ClientStats
from reconciler.api.retry import RetryPolicy
from reconciler.api.send_identity import own_send
from reconciler.api.settings import DEFAULT_BASE_URL, ClientSettings, Secret
from reconciler.desired.model import Reaction, is_throwaway
from reconciler.errors import ApiError, NotFoundError
from reconciler.text import normal_form

log = logging.getLogger("reconciler.http")

# The page size conversation listings ask for (`per_page`). The API documents none for them;
# the vendor's own UI sends 20, its other listings take up to 100 (`limit`), and a service that
# honours it caps it somewhere: each answer's own `per_page` says what the server did.
PER_PAGE = 100
# What a 403 on a create means (the engine says what a 403 on another write means).
ROLE_MAY_NOT_CREATE = "the API key's role may not create conversations in this project"

_T = TypeVar("_T")

__all__ = [
    "DEFAULT_BASE_URL",
    "Client",
    "ClientSettings",
    "ClientStats",
    "RetryPolicy",
    "Secret",
]


class Client:
    """An async CustomGPT.ai API client with one connection pool; use `async with`.

    Its calls are made by one `Engine` (see `reconciler.api.engine`), which is handed
    `transport` (it replaces the network in tests) and `sleep`, `uniform` and `clock` (they
    replace `asyncio.sleep`, `random.uniform` and `time.monotonic` so that tests need not
    wait). Every request waits for its turn from the engine's `Pacer` (see
    `reconciler.api.pacer`), which keeps the client within the key's request budget; `pacer`,
    `stats` and `answer_times` are the engine's.
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
        transport: Transport | None = None,
        sleep: Sleep = asyncio.sleep,
        uniform: Uniform = random.uniform,
        clock: Clock = time.monotonic,
    ) -> None:
        self.settings = settings
        self._engine = Engine(settings, transport=transport, sleep=sleep, uniform=uniform,
                              clock=clock)
        self.stats = self._engine.stats
        self.pacer = self._engine.pacer
        self.answer_times = self._engine.answer_times
        self._me: User | None = None
        self._highest_id: dict[int, int] = {}
        self._team_includes_owner: bool | None = None  # unknown until a listing shows it
        self._me_served: bool | None = None  # userFilter=me: unknown until asked once
        self._me_lock = asyncio.Lock()
        self._per_page: int | None = PER_PAGE  # None: the service refused it (400)
        self._page_size_told = False

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
        await self._engine.aclose()

    def __repr__(self) -> str:
        return f"Client(base_url={self.settings.base_url!r})"

    # -- reading ---------------------------------------------------------------------------

    async def current_user(self) -> User:
        """The user the API key belongs to (asked once, then remembered)."""
        if self._me is None:
            call = Call("reading the API key's user", "GET", "/api/v1/user")
            self._me = self._engine.parse(call, await self._engine.call(call), parse_user)
        return self._me

    async def query_credits(self) -> QueryCredits | None:
        """The account's query credits (one request), None when the API does not serve
        them (404). Raises ApiError."""
        call = Call("reading the account's query credits", "GET", "/api/v1/limits/usage",
                     not_found="the API does not report query credits")
        try:
            return self._engine.parse(call, await self._engine.call(call), parse_query_credits)
        except NotFoundError:
            return None

    async def get_project(self, project_id: int) -> Project:
        """A project. Raises NotFoundError when it does not exist or is not visible."""
        call = Call(
            f"reading project {project_id}",
            "GET",
            _project_path(project_id),
            not_found=_project_missing(project_id),
        )
        return self._engine.parse(call, await self._engine.call(call), parse_project)

    async def project_settings(
        self, project_id: int, *, retention: bool = False
    ) -> ProjectSettings | None:
        """What reconciler reads of a project's settings (one request): its "I don't know"
        message, and with `retention` how long it keeps conversations.

        Without `retention` (a check's read): raises NotFoundError when the project does not
        exist or is not visible. With it (a note the plan may do without): None when the API
        does not serve them (404); raises ForbiddenError (403: the key's role may not read
        them), ApiError (also for settings that say no known period).
        """
        if retention:
            call = Call(f"reading the settings of project {project_id}", "GET",
                        f"{_project_path(project_id)}/settings",
                        not_found=f"project {project_id} has no settings the API shows",
                        refused="the API key's role may not read the project's settings")
        else:
            call = Call(f"reading the settings of project {project_id}", "GET",
                        f"{_project_path(project_id)}/settings",
                        not_found=_project_missing(project_id))
        try:
            return self._engine.parse(call, await self._engine.call(call),
                                      lambda v: parse_project_settings(v, retention=retention))
        except NotFoundError:
            if retention:
                return None
            raise

    async def citation(self, project_id: int, citation_id: int) -> CitedSource | None:
        """The source an answer of the project cites as `citation_id` (one request): its
        title and URL as the API describes them (see `parse_cited_source`), None when the API
        shows no such source (404). Raises ApiError (also when the answer does not fit)."""
        call = Call(f"reading the source of citation {int(citation_id)} in project "
                    f"{project_id}", "GET",
                    f"{_project_path(project_id)}/citations/{int(citation_id)}",
                    not_found=f"citation {int(citation_id)} not found in project {project_id}")
        try:
            data = await self._engine.call(call)
        except NotFoundError:
            return None
        return self._engine.parse(call, data, lambda v: parse_cited_source(v, citation_id))

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
            call = Call(
                f"listing {what}",
                "GET",
                f"{_project_path(project_id)}/conversations",
                params={"page": number, **params, **({"per_page": asked} if asked else {})},
                not_found=_project_missing(project_id),
            )
            try:
                data = await self._engine.call(call)
            except ApiError as error:
                if not self._per_page_refused(error, asked=asked, user_filter=user_filter):
                    raise
                return await fetch(number)
            page = self._engine.parse(call, data, lambda v: parse_conversation_page(v, number))
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
            call = Call(
                f"reading the messages of conversation {session_id} in project {project_id}",
                "GET",
                f"{_session_path(project_id, session_id)}/messages",
                params={"page": number, "order": "asc"},
                not_found=_session_missing(project_id, session_id),
            )
            data = await self._engine.call(call)
            owner, page = self._engine.parse(call, data, lambda v: parse_message_page(v, number))
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
        call = Call(
            f"reading the newest message of conversation {session_id} in project {project_id}",
            "GET",
            f"{_session_path(project_id, session_id)}/messages",
            params={"page": 1, "order": "desc"},
            not_found=_session_missing(project_id, session_id),
        )
        data = await self._engine.call(call)
        _, page = self._engine.parse(call, data, lambda v: parse_message_page(v, 1))
        return max((m.id for m in page.items), default=0)

    # -- writing ---------------------------------------------------------------------------

    async def create_conversation(self, project_id: int, name: str) -> Conversation:
        """Create a conversation and return it; never creates two.

        After an ambiguous failure (the request may have reached the server) it lists the
        project's conversations with that name and returns a new one created by the key's
        user instead of trying again. Raises NotFoundError for a missing project, ApiError.
        """
        is_new = await self._new_conversation_test(project_id, name)
        call = Call(
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

        created = await self._engine.with_retries(call, find_committed, parse_conversation)
        self._remember_highest_id(project_id, created.id)
        return created

    async def rename_conversation(
        self, project_id: int, session_id: str, name: str
    ) -> Conversation:
        """Give a conversation a new name and return it. Raises NotFoundError, ApiError."""
        call = Call(
            f"renaming conversation {session_id} in project {project_id} to {name!r}",
            "PUT",
            _session_path(project_id, session_id),
            body={"name": name},
            not_found=_session_missing(project_id, session_id),
        )
        return self._engine.parse(call, await self._engine.call(call), parse_conversation)

    async def delete_conversation(self, project_id: int, session_id: str) -> None:
        """Delete a conversation and its messages. A 404 on a retry counts as done (the first
        attempt did it). Raises NotFoundError (404 at the first attempt), ApiError."""
        call = Call(
            f"deleting conversation {session_id} in project {project_id}",
            "DELETE",
            _session_path(project_id, session_id),
            not_found=_session_missing(project_id, session_id),
            gone_is_success=True,
        )
        await self._engine.call(call)

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
        call = Call(
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
            return own_send(transcript.messages, prompt, external_id, after=before)

        message = await self._engine.with_retries(
            call, find_committed, parse_message,
            watched=f"conversation {session_id} in project {project_id}")
        if message.id <= before:
            raise self._engine.error(ApiError, f"{call.description}: the API answered with message "
                              f"{message.id}, not newer than {before}: an answer from a cache, "
                              "and nothing was stored")
        return message

    async def set_reaction(
        self, project_id: int, session_id: str, message_id: int, reaction: Reaction
    ) -> None:
        """Give the answer of message `message_id` the `reaction` (its feedback); setting it
        again changes nothing, so it is retried as any PUT. Raises NotFoundError when the
        conversation or the message does not exist, ApiError."""
        call = Call(
            f"setting the reaction to message {message_id} of conversation {session_id} in "
            f"project {project_id} to {reaction.value}",
            "PUT",
            f"{_session_path(project_id, session_id)}/messages/{int(message_id)}/feedback",
            body={"reaction": reaction.value},
            not_found=f"message {message_id} not found in conversation {session_id} of "
                      f"project {project_id}",
        )
        await self._engine.call(call)

    # -- listings and write checks ---------------------------------------------------------

    async def _read_listing(
        self, fetch: Callable[[int], Awaitable[Page[_T]]], what: str, *, key: Callable[[_T], object]
    ) -> list[_T]:
        listing = Listing(
            what=what,
            parallelism=self.settings.parallelism,
            max_relists=self.settings.retry.max_relists,
            deadline=self.settings.retry.listing_deadline,
            clock=self._engine.clock,
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



def _check_filter(user_filter: str) -> None:
    """Raise ValueError for a `userFilter` the client does not read."""
    if user_filter not in USER_FILTERS:
        raise ValueError(f"unknown user filter {user_filter!r}")


def _with_creator(conversations: list[Conversation]) -> list[Conversation]:
    return [c for c in conversations if c.created_by is not None]


def _project_path(project_id: int) -> str:
    return f"/api/v1/projects/{int(project_id)}"


def _session_path(project_id: int, session_id: str) -> str:
    return f"{_project_path(project_id)}/conversations/{quote(session_id, safe='')}"


def _project_missing(project_id: int) -> str:
    return f"project {project_id} not found or not visible to this API key"


def _session_missing(project_id: int, session_id: str) -> str:
    return f"conversation {session_id} not found in project {project_id}"
