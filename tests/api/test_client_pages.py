"""Conversation listings ask for the largest page a service honours (`per_page`), and learn
from each answer what it did: a service that honours it (up to 100 in the emulator) lists in a
third or less of the requests, one that ignores it costs what it always did. Page sizes from
the API are untrusted: zero, negative, huge, or at odds with the page's items."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest

from reconciler.api.client import PER_PAGE, Client, ClientSettings, Secret
from reconciler.emulator import Emulator, Variants
from reconciler.errors import ApiError, ListingError

KEY = "test-key-0123456789"
PROJECT = 4242
T = TypeVar("T")


@pytest.fixture(params=["ignored", "honoured"])
def emulator(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    """An emulator of 10 conversations a page (its own size) that ignores or honours
    `per_page`, with project 4242."""
    with Emulator(api_key=KEY, variants=Variants(per_page=request.param)) as emu:
        emu.start()
        emu.ensure_project(PROJECT)
        yield emu


def listed(config: ClientSettings, action: Callable[[Client], Awaitable[T]],
           transport: httpx.AsyncBaseTransport | None = None) -> tuple[T, int]:
    """`action`'s result with a fresh client, and the requests it made."""

    async def main() -> tuple[T, int]:
        async with Client(config, transport=transport) as client:
            return await action(client), client.stats.requests

    return asyncio.run(main())


def names(client: Client, user_filter: str = "all") -> Awaitable[list[str]]:
    async def read() -> list[str]:
        return [c.name for c in await client.list_conversations(PROJECT,
                                                                user_filter=user_filter)]
    return read()


@pytest.mark.parametrize("count", [60, 250])
def test_a_service_that_honours_per_page_lists_in_a_third_of_the_requests(
    emulator: Emulator, count: int, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.add_conversations(PROJECT, [f"c{i:03d}" for i in range(count)])
    config = ClientSettings(api_key=Secret(KEY), base_url=emulator.base_url)
    with caplog.at_level(logging.DEBUG):
        found, requests = listed(config, names)
    assert found == [f"c{i:03d}" for i in range(count)]
    today = math.ceil(count / 10)  # the server's pages, as every listing was read before
    if emulator.variants.per_page == "honoured":
        assert requests == math.ceil(count / 100) and requests * 3 <= today
    else:
        assert requests == today  # not one request more
    asked = [r.getMessage() for r in caplog.records if r.name == "reconciler.http"]
    assert all(f"per_page={PER_PAGE}" in line for line in asked)
    told = [r.getMessage() for r in caplog.records if r.name == "reconciler.listing"]
    size = 100 if emulator.variants.per_page == "honoured" else 10
    assert told == [f"conversation listings come {size} a page (asked for 100)"]


def test_every_listing_of_a_plan_asks_for_large_pages(emulator: Emulator) -> None:
    """The `me` listing, name lookups and the team listing all ask for 100 a page."""
    emulator.add_conversations(PROJECT, [f"mine {i:03d}" for i in range(120)])
    emulator.add_conversations(PROJECT, [f"team {i:03d}" for i in range(30)],
                               creator="teammate")
    config = ClientSettings(api_key=Secret(KEY), base_url=emulator.base_url)

    async def each(client: Client) -> list[int]:
        await client.current_user()
        return [len(await client.list_conversations(PROJECT, user_filter=f))
                for f in ("me", "team_member", "all")]

    counts, requests = listed(config, each)
    assert counts == [120, 150, 150]
    if emulator.variants.per_page == "honoured":
        # the user; me: 2 pages; team: page 1 of all and 2 of team_member; all: 2
        assert requests == 1 + 2 + 3 + 2
    else:
        assert requests == 1 + 12 + (1 + 15) + 15


# -- what a service may say of its pages -------------------------------------------------------


def laravel(items: list[dict[str, Any]], *, cap: int | None, default: int = 10
            ) -> Callable[[httpx.Request], httpx.Response]:
    """A service listing `items` in pages of `per_page` as asked (up to `cap`; None: it
    ignores `per_page` and uses `default`), telling its size in each answer."""

    def handle(request: httpx.Request) -> httpx.Response:
        asked = request.url.params.get("per_page")
        size = default if cap is None or asked is None else min(int(asked), cap)
        number = int(request.url.params.get("page", "1"))
        page = {"current_page": number, "per_page": size, "total": len(items),
                "last_page": max(1, math.ceil(len(items) / size)),
                "data": items[(number - 1) * size:number * size]}
        return httpx.Response(200, json={"status": "success", "data": page})

    return handle


def rows(count: int) -> list[dict[str, Any]]:
    return [{"id": n, "session_id": f"s{n}", "name": f"c{n}", "project_id": PROJECT,
             "created_by": 1, "created_at": "", "updated_at": ""} for n in range(1, count + 1)]


OFFLINE = ClientSettings(api_key=Secret(KEY), base_url="http://127.0.0.1:9")


@pytest.mark.parametrize(("cap", "requests"), [(25, 3), (60, 2), (1000, 1), (None, 7)],
                         ids=["smaller-cap", "cap-between", "larger-cap", "ignored"])
def test_the_page_count_comes_from_the_size_the_service_answered(
    cap: int | None, requests: int
) -> None:
    handle = laravel(rows(65), cap=cap)
    found, made = listed(OFFLINE, names, httpx.MockTransport(handle))
    assert found == [f"c{n}" for n in range(1, 66)]
    assert made == requests


def one_page(**fields: Any) -> Callable[[httpx.Request], httpx.Response]:
    """A service whose every page is page `current_page` with these sizes and `count` items."""
    count = fields.pop("count")

    def handle(request: httpx.Request) -> httpx.Response:
        number = int(request.url.params.get("page", "1"))
        page = {"current_page": number, "data": rows(count), **fields}
        return httpx.Response(200, json={"status": "success", "data": page})

    return handle


SIZED = "'per_page' of the conversation list is"


@pytest.mark.parametrize(("fields", "said"), [
    ({"per_page": 0, "last_page": 1, "total": 3, "count": 3}, "impossible sizes (per_page 0"),
    ({"per_page": -10, "last_page": 1, "total": 3, "count": 3}, f"{SIZED} out of range"),
    ({"per_page": 2**63, "last_page": 1, "total": 3, "count": 3}, f"{SIZED} out of range"),
    ({"per_page": 10**30, "last_page": 1, "total": 3, "count": 3}, f"{SIZED} a number (1e+30)"),
    ({"per_page": 2.5, "last_page": 2, "total": 3, "count": 3}, f"{SIZED} a number (2.5)"),
    ({"per_page": "ten", "last_page": 1, "total": 3, "count": 3}, f"{SIZED} a string"),
    ({"per_page": 100, "last_page": 3, "total": 30, "count": 10},
     "claims 3 pages for 30 items of 100 per page (1 pages)"),
], ids=["zero", "negative", "beyond-any-id", "beyond-an-integer", "fraction", "text",
        "last-page-of-another-size"])
def test_an_impossible_page_size_fails_the_listing_naming_it(
    fields: dict[str, Any], said: str
) -> None:
    with pytest.raises(ApiError) as raised:
        listed(OFFLINE, names, httpx.MockTransport(one_page(**fields)))
    assert said in str(raised.value)
    assert "listing conversations of project 4242 failed" in str(raised.value)


@pytest.mark.parametrize(("fields", "said"), [
    ({"per_page": 100, "last_page": 1, "total": 30, "count": 10},
     "read 10 items but the server reported 30"),
    ({"per_page": 10, "last_page": 1, "total": 10, "count": 12}, "held 12 items, more than 10"),
    ({"per_page": 10, "last_page": 3, "total": 30, "count": 5},
     "page 1 of 3 held 5 items, fewer than its 10 a page"),
], ids=["fewer-items-than-total", "more-items-than-its-size", "a-short-page-not-the-last"])
def test_a_page_size_at_odds_with_the_items_is_never_planned_on(
    fields: dict[str, Any], said: str
) -> None:
    with pytest.raises(ListingError) as raised:
        listed(OFFLINE, names, httpx.MockTransport(one_page(**fields)))
    assert said in str(raised.value)


def test_a_huge_page_size_that_holds_the_whole_listing_is_one_page() -> None:
    handle = one_page(per_page=2**63 - 1, last_page=1, total=3, count=3)
    found, made = listed(OFFLINE, names, httpx.MockTransport(handle))
    assert found == ["c1", "c2", "c3"] and made == 1


def test_a_service_that_refuses_per_page_is_listed_in_its_own_pages() -> None:
    """A 400 to `per_page` (a service that validates it against a smaller maximum): the
    client stops asking for it, for its lifetime, at the cost of one request."""
    served = laravel(rows(25), cap=None)
    asked: list[str | None] = []

    def handle(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.params.get("per_page"))
        if "per_page" in request.url.params:
            return httpx.Response(400, json={"status": "error", "data": {
                "code": 400, "message": "The per page may not be greater than 50."}})
        return served(request)

    async def twice(client: Client) -> list[list[str]]:
        return [await names(client) for _ in range(2)]

    found, made = listed(OFFLINE, twice, httpx.MockTransport(handle))
    assert found == [[f"c{n}" for n in range(1, 26)]] * 2
    assert made == 1 + 3 + 3
    assert asked == ["100"] + [None] * 6


def test_a_service_that_refuses_per_page_and_me_still_lists_the_keys_own() -> None:
    """Both refused with 400: `me` is given up first (one request), then `per_page` (one
    more); the listing is right either way."""
    served = laravel(rows(25), cap=None)
    user = {"status": "success", "data": {"id": 1, "name": "Owner", "email": "o@e.com"}}
    refused = {"status": "error", "data": {"code": 400, "message": "invalid"}}

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/user":
            return httpx.Response(200, json=user)
        params = request.url.params
        if params.get("userFilter") == "me" or "per_page" in params:
            return httpx.Response(400, json=refused)
        return served(request)

    found, made = listed(OFFLINE, lambda c: names(c, "me"), httpx.MockTransport(handle))
    assert found == [f"c{n}" for n in range(1, 26)]
    # the user, the two 400s, page 1 of userFilter=all, then the team listing's 3 pages
    assert made == 1 + 2 + 1 + 3
