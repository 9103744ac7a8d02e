"""Reading API responses: typed objects, pages, and whole listings read consistently.

The API pages are offset based and the server has the last word on the page size (a client
may ask for one), so rows shift between pages when conversations are created or deleted while a
listing is read. `read_all_pages` fetches page 1, learns `last_page`, `per_page` and `total`
from it, fetches the other pages concurrently (bounded), and reads the whole listing again when
the pages disagree with each other or with their own size (a changed total or page count, a
duplicate id, a page holding more than its size, or less before the last, a count that is not
the total). It never returns a partial listing: a page that finally fails fails the listing.

No I/O here: the caller passes the coroutine that fetches one page. `Record` and `parse_page`
read decoded JSON with type checks, raising `MalformedBody` (never KeyError or TypeError),
which the client turns into an `ApiError` naming the call.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from reconciler.api.live import (
    CitedSource,
    Conversation,
    Message,
    Project,
    ProjectSettings,
    QueryCredits,
    Retention,
    User,
    is_session_id,
)
from reconciler.desired.model import MAX_ID, Reaction
from reconciler.errors import ListingError, ReconcilerError

T = TypeVar("T")


class MalformedBody(Exception):
    """A response body is not what the API documents; the text says what is wrong."""


class Record:
    """A JSON object from a response, read field by field with type checks."""

    def __init__(self, value: object, *, what: str) -> None:
        if not isinstance(value, dict):
            raise MalformedBody(f"{what} is {_kind(value)}, not an object")
        self._fields: dict[str, object] = value
        self._what = what

    def get(self, name: str) -> object:
        """The raw value of field `name`. Raises MalformedBody when it is missing."""
        if name not in self._fields:
            raise MalformedBody(f"{self._what} has no '{name}'")
        return self._fields[name]

    def integer(self, name: str) -> int:
        """A whole number from 0 to 2^63-1 (a string of ASCII digits is accepted).

        Raises MalformedBody for anything else: a float, a boolean, a negative or oversized
        number, or digits other than 0-9 (such as "²").
        """
        value = self.get(name)
        if isinstance(value, str):
            digits = value.strip()
            if digits.isascii() and digits.isdigit() and len(digits) <= len(str(MAX_ID)):
                value = int(digits)
        if isinstance(value, bool) or not isinstance(value, int):
            raise MalformedBody(f"'{name}' of {self._what} is {_seen(value)}, not an integer")
        if not 0 <= value <= MAX_ID:
            raise MalformedBody(f"'{name}' of {self._what} is out of range")
        return value

    def text(self, name: str) -> str:
        """A string field. Raises MalformedBody."""
        value = self.get(name)
        if not isinstance(value, str):
            raise MalformedBody(f"'{name}' of {self._what} is {_seen(value)}, not a string")
        return value

    def session_id(self, name: str) -> str:
        """A session id (see `is_session_id`). Raises MalformedBody, without showing it."""
        value = self.get(name)
        if not is_session_id(value):
            raise MalformedBody(f"'{name}' of {self._what} is not a valid session id")
        return value

    def time(self, name: str) -> str:
        """A time field as the server wrote it ("" when missing or null): times are kept for
        people and never compared, so no format is assumed. Raises MalformedBody when it is
        not a string."""
        value = self._fields.get(name)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise MalformedBody(f"'{name}' of {self._what} is {_seen(value)}, not a time")
        return value

    def identifier(self, name: str) -> str:
        """An identifier sent as a string or an integer, as text. Raises MalformedBody."""
        value = self.get(name)
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise MalformedBody(f"'{name}' of {self._what} is {_seen(value)}, not an id")
        return str(value)

    def optional_identifier(self, name: str) -> str | None:
        """`identifier`, or None when the field is missing or null. Raises MalformedBody."""
        return None if self._fields.get(name) is None else self.identifier(name)

    def nested(self, name: str) -> Record:
        """A nested object field. Raises MalformedBody."""
        return Record(self.get(name), what=f"'{name}' of {self._what}")

    def array(self, name: str) -> list[object]:
        """A list field. Raises MalformedBody."""
        value = self.get(name)
        if not isinstance(value, list):
            raise MalformedBody(f"'{name}' of {self._what} is {_seen(value)}, not a list")
        return value


def _seen(value: object) -> str:
    """What a field held, for an error message: its kind and the start of its JSON text."""
    if value is None or isinstance(value, bool):
        return _kind(value)
    try:
        text = json.dumps(value, ensure_ascii=True)
    except (TypeError, ValueError):  # a number too big to write, a structure too deep
        return _kind(value)
    return f"{_kind(value)} ({text[:40]}{'…' if len(text) > 40 else ''})"


def _kind(value: object) -> str:
    if value is None:
        return "null"
    names = {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }
    return names.get(type(value), type(value).__name__)


def parse_page(value: object, *, requested: int, item: Callable[[object], T], what: str) -> Page[T]:
    """Read one Laravel-style page; `item` parses one element. Raises MalformedBody, also when
    the server answered another page than `requested` or with impossible sizes, such as a
    page count its own total and page size do not give: one answer counts both at once, so
    they agree however the listing shifts, and a page count beyond them would have every
    page up to it read for nothing."""
    page = Record(value, what=what)
    number = page.integer("current_page")
    per_page, last_page, total = (
        page.integer("per_page"),
        page.integer("last_page"),
        page.integer("total"),
    )
    if number != requested:
        raise MalformedBody(f"asked for page {requested} of {what}, got page {number}")
    if per_page < 1 or last_page < 1 or total < 0:
        raise MalformedBody(
            f"{what} has impossible sizes (per_page {per_page}, last_page {last_page}, "
            f"total {total})"
        )
    if last_page != pages_for(total, per_page):
        raise MalformedBody(
            f"{what} claims {last_page} pages for {total} items of {per_page} per page "
            f"({pages_for(total, per_page)} pages)"
        )
    items = tuple(item(element) for element in page.array("data"))
    return Page(number=number, last_page=last_page, per_page=per_page, total=total, items=items)


def pages_for(total: int, per_page: int) -> int:
    """The pages `total` items fill at `per_page` a page: at least one, as Laravel counts."""
    return max(1, -(-total // per_page))


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing as the server described it."""

    number: int
    last_page: int
    per_page: int
    total: int
    items: tuple[T, ...]
    source: str = ""  # which listing it is a page of, when the reader says (a userFilter)


@dataclass(frozen=True)
class Listing:
    """What is being listed, in user words ("conversations of project 4242"), and how."""

    what: str
    parallelism: int
    max_relists: int
    deadline: float = math.inf  # seconds for the whole listing, every re-read included
    clock: Callable[[], float] = time.monotonic
    # Seconds the request budget makes reading n pages take; added to the deadline once page 1
    # tells the page count, up to PACED_ALLOWANCE_CAP.
    paced: Callable[[int], float] = lambda pages: 0.0


PACED_ALLOWANCE_CAP = 86_400.0  # a day: a listing that claims more pages still ends


async def read_all_pages(
    fetch: Callable[[int], Awaitable[Page[T]]],
    *,
    key: Callable[[T], object],
    listing: Listing,
    on_relist: Callable[[], None] | None = None,
) -> list[T]:
    """Every item of a listing, each once, in the server's order.

    `fetch(n)` returns page n (it does its own retries and raises `ApiError` when a page finally
    fails; that error fails the whole listing). `key` identifies an item (session id, message
    id). Raises `ListingError` when the listing still shifts after `listing.max_relists`
    re-reads, or when it takes longer than `listing.deadline` plus what the request budget
    makes its pages take (`listing.paced`, at most a day): a server that keeps adding pages, or
    claims more pages than can be read.
    """
    problem = ""
    give_up_at = [listing.clock() + listing.deadline]
    fetch = _before(give_up_at, listing, fetch)
    for round_number in range(listing.max_relists + 1):
        if round_number and on_relist is not None:
            on_relist()
        first = await fetch(1)
        give_up_at[0] += min(max(listing.paced(first.last_page - 1), 0.0), PACED_ALLOWANCE_CAP)
        rest = await _fetch_pages(fetch, first.last_page, parallelism=listing.parallelism)
        items, problem = _combine(first, rest, key)
        if not problem:
            return items
    rounds = listing.max_relists + 1
    raise ListingError(
        f"listing {listing.what} kept changing while it was read ({problem}); "
        f"gave up after {rounds} {'read' if rounds == 1 else 'reads'}",
        retryable=True,
    )


def _before(
    give_up_at: list[float], listing: Listing, fetch: Callable[[int], Awaitable[Page[T]]]
) -> Callable[[int], Awaitable[Page[T]]]:
    """`fetch` that raises ListingError instead of fetching once `give_up_at[0]` has passed
    (the time grows with the request budget's pace, once page 1 tells the page count)."""

    async def fetch_in_time(number: int) -> Page[T]:
        if listing.clock() > give_up_at[0]:
            raise ListingError(
                f"listing {listing.what} did not finish within {listing.deadline:g} s "
                f"(still reading page {number}); gave up", retryable=True)
        return await fetch(number)

    return fetch_in_time


async def _fetch_pages(
    fetch: Callable[[int], Awaitable[Page[T]]], last_page: int, *, parallelism: int
) -> list[Page[T]]:
    """Pages 2..last_page, at most `parallelism` in flight, in page order."""
    if last_page < 2:
        return []
    numbers: Iterator[int] = iter(range(2, last_page + 1))
    pages: dict[int, Page[T]] = {}

    async def worker() -> None:
        for number in numbers:  # the shared iterator hands each page number out once
            pages[number] = await fetch(number)

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(max(parallelism, 1), last_page - 1)):
                group.create_task(worker())
    except BaseExceptionGroup as failures:
        raise _first_user_error(failures) from None
    return [pages[number] for number in sorted(pages)]


def _first_user_error(failures: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first ReconcilerError of a task group's failures; the group itself if it has none
    (a bug, to be shown with its traceback)."""
    matched, _ = failures.split(ReconcilerError)
    if matched is None:
        return failures
    first: BaseException = matched
    while isinstance(first, BaseExceptionGroup):
        first = first.exceptions[0]
    return first


def _combine(
    first: Page[T], rest: Sequence[Page[T]], key: Callable[[T], object]
) -> tuple[list[T], str]:
    """The listing's items, and what makes it inconsistent ("" when nothing does)."""
    problem = ""
    items: list[T] = []
    seen: set[object] = set()
    for page in (first, *rest):
        if not problem:
            problem = _page_problem(first, page)
        for item in page.items:
            identity = key(item)
            if identity in seen:
                problem = problem or f"item {identity} appeared twice"
                continue
            seen.add(identity)
            items.append(item)
    if not problem and len(items) != first.total:
        problem = f"read {len(items)} items but the server reported {first.total}"
    return items, problem


def _page_problem(first: Page[T], page: Page[T]) -> str:
    if page.total != first.total:
        return f"the total changed from {first.total} to {page.total}"
    if page.last_page != first.last_page:
        return f"the page count changed from {first.last_page} to {page.last_page}"
    if len(page.items) > page.per_page:
        return f"page {page.number} held {len(page.items)} items, more than {page.per_page}"
    if page.number < page.last_page and len(page.items) < page.per_page:
        return (f"page {page.number} of {page.last_page} held {len(page.items)} items, fewer "
                f"than its {page.per_page} a page")
    return ""


# -- the API's objects ---------------------------------------------------------------


def parse_conversation(value: object) -> Conversation:
    """A conversation object (`project_id` as int). Raises MalformedBody."""
    record = Record(value, what="a conversation")
    return Conversation(
        id=record.integer("id"),
        session_id=record.session_id("session_id"),
        name=record.text("name"),
        project_id=record.integer("project_id"),
        created_by=record.optional_identifier("created_by"),
        created_at=record.time("created_at"),
        updated_at=record.time("updated_at"),
    )


def parse_message(value: object) -> Message:
    """A message object (a null answer reads as ""). `metadata` and its `external_id` are
    optional (real answers of 2023 had none). Raises MalformedBody."""
    record = Record(value, what="a message")
    answer = record.get("openai_response")
    return Message(
        id=record.integer("id"),
        user_query=record.text("user_query"),
        openai_response="" if answer is None else record.text("openai_response"),
        created_at=record.time("created_at"),
        external_id=_external_id(value),
        citations=_citations(value),
        **_feedback(value),
    )


def _citations(message: object) -> tuple[int, ...]:
    """The ids of the sources a message cites: integers, or the strings of whole numbers some
    listings give ("12061.0"); anything else in the list is skipped, and a missing or odd list
    reads as none."""
    found = message.get("citations") if isinstance(message, dict) else None
    ids: list[int] = []
    for item in found[:1000] if isinstance(found, list) else ():
        if isinstance(item, bool):
            continue
        if isinstance(item, int):
            ids.append(item)
        elif isinstance(item, str) and len(item) <= 32:
            try:
                number = float(item)
            except ValueError:
                continue
            if number.is_integer() and 0 <= number < 2**63:
                ids.append(int(number))
    return tuple(ids)


def _external_id(message: object) -> str | None:
    """The `metadata.external_id` a server echoed, or None wherever it is missing or odd."""
    metadata = message.get("metadata") if isinstance(message, dict) else None
    found = metadata.get("external_id") if isinstance(metadata, dict) else None
    return found if isinstance(found, str) and found else None


_REACTIONS = {reaction.value: reaction for reaction in Reaction}


def _feedback(message: object) -> dict[str, Any]:
    """The reaction of `response_feedback` (null: none), as `Message` fields. A message without
    the field, or with one that is not `{"reaction": "liked"|"disliked"|"neutral"|null, ...}`,
    says nothing of its reaction: what reconciler does not understand it leaves alone."""
    if not isinstance(message, dict) or "response_feedback" not in message:
        return {}
    feedback = message["response_feedback"]
    if feedback is None:
        return {"reaction_shown": True}
    found = feedback.get("reaction") if isinstance(feedback, dict) else ""
    if found is None:
        return {"reaction_shown": True}
    reaction = _REACTIONS.get(found) if isinstance(found, str) else None
    return {} if reaction is None else {"reaction": reaction, "reaction_shown": True}


def parse_user(value: object) -> User:
    """The user object (its id as text). Raises MalformedBody."""
    record = Record(value, what="the user")
    return User(id=record.identifier("id"), name=record.text("name"), email=record.text("email"))


MAX_NO_ANSWER = 10_000  # longer than any the API accepts (1,000): an odd one is ignored


def parse_no_answer_message(value: object) -> str | None:
    """The `no_answer_message` of a project's settings: None where it is missing, not text,
    blank or implausibly long (a check then compares with the vendor's default). Raises
    MalformedBody when the settings are not an object."""
    if not isinstance(value, dict):
        raise MalformedBody("the project's settings are not an object")
    message = value.get("no_answer_message")
    if not isinstance(message, str) or not message.strip() or len(message) > MAX_NO_ANSWER:
        return None
    return message


MAX_SOURCE_TEXT = 2_048  # a longer title or URL of a cited source is ignored


def parse_cited_source(value: object, citation_id: int) -> CitedSource:
    """The source of citation `citation_id` (the API's page metadata): its `title` and `url`
    where each is text of 1 to `MAX_SOURCE_TEXT` characters, not blank (None otherwise:
    missing, null, not text, blank or implausibly long). Control characters are kept: what
    shows a source escapes them. Raises MalformedBody when the answer is not an object, or
    names another source (an integer `id` other than `citation_id`)."""
    if not isinstance(value, dict):
        raise MalformedBody(f"the source of citation {citation_id} is {_kind(value)}, "
                            "not an object")
    said = value.get("id")
    if isinstance(said, str) and said.isascii() and said.isdigit() and len(said) <= 20:
        said = int(said)
    if isinstance(said, int) and not isinstance(said, bool) and said != citation_id:
        raise MalformedBody(f"asked for the source of citation {citation_id}, got "
                            f"{_seen(value.get('id'))}")
    return CitedSource(id=citation_id, title=_source_text(value.get("title")),
                       url=_source_text(value.get("url")))


def _source_text(value: object) -> str | None:
    if not isinstance(value, str) or len(value) > MAX_SOURCE_TEXT or not value.strip():
        return None
    return value


def parse_project(value: object) -> Project:
    """A project object. Raises MalformedBody."""
    record = Record(value, what="the project")
    return Project(id=record.integer("id"), name=record.text("project_name"))


def parse_conversation_page(value: object, number: int) -> Page[Conversation]:
    """Page `number` of a conversation listing. Raises MalformedBody."""
    return parse_page(
        value, requested=number, item=parse_conversation, what="the conversation list"
    )


def parse_message_page(value: object, number: int) -> tuple[Conversation, Page[Message]]:
    """The conversation and page `number` of its messages. Raises MalformedBody."""
    record = Record(value, what="the messages answer")
    owner = parse_conversation(record.get("conversation"))
    page = parse_page(
        record.get("messages"), requested=number, item=parse_message, what="the message list"
    )
    return owner, page


YEAR_DAYS = 365  # a retention `period` of `year` (the service says 12 months)


def parse_project_settings(value: object, *, retention: bool) -> ProjectSettings:
    """A project's settings: its `no_answer_message` (see `parse_no_answer_message`), and
    with `retention` its retention (see `parse_retention`, which is read first). Raises
    MalformedBody."""
    kept = parse_retention(value) if retention else None
    return ProjectSettings(no_answer_message=parse_no_answer_message(value), retention=kept)


def parse_retention(value: object) -> Retention:
    """The conversation retention of a project's settings (`conversation_retention_period`:
    `year`, `custom` with `conversation_retention_days`, or `never`). Raises MalformedBody
    for any other period, or a custom one of no days."""
    record = Record(value, what="the project's settings")
    period = record.get("conversation_retention_period")
    if period == "never":
        return Retention(days=None)
    if period == "year":
        return Retention(days=YEAR_DAYS)
    if period == "custom":
        days = record.integer("conversation_retention_days")
        if days < 1:
            raise MalformedBody("the project's settings keep conversations for a custom "
                                "period of 0 days")
        return Retention(days=days)
    raise MalformedBody(f"'conversation_retention_period' of the project's settings is "
                        f"{_seen(period)}, not 'year', 'custom' or 'never'")


def parse_query_credits(value: object) -> QueryCredits:
    """The query credits of `GET /api/v1/limits/usage` (`max_queries` null: no limit).
    Raises MalformedBody."""
    record = Record(value, what="the usage")
    limit = None if record.get("max_queries") is None else record.integer("max_queries")
    used = record.integer("current_queries")
    if used < 0 or (limit is not None and limit < 0):
        raise MalformedBody("the usage has a negative count of queries")
    return QueryCredits(limit=limit, used=used)
