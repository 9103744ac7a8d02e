"""What answer checks read (`reconciler.plan.answers`): the sources answers cite, read for a
`cites` naming one by text, each distinct id once per project and run, at most
`MAX_SOURCE_READS` a project; against the emulator."""

from __future__ import annotations

import asyncio

from reconciler.api.client import Client, ClientSettings, Secret
from reconciler.api.live import CitedSource
from reconciler.emulator import Emulator
from reconciler.plan.answers import MAX_SOURCE_READS, CitationReader
from tests.workspace import OTHER, PROJECT


def _reads(emulator: Emulator, ask: list[tuple[int, list[int]]],
           ) -> tuple[list[tuple[dict[int, CitedSource | None], dict[int, str]]], int]:
    """Each `(project, ids)` of `ask` read through one reader, concurrently: what each
    learnt, and the requests the client made."""
    settings = ClientSettings(api_key=Secret(emulator.api_key), base_url=emulator.base_url)

    async def main() -> tuple[list[tuple[dict[int, CitedSource | None], dict[int, str]]], int]:
        async with Client(settings) as client:
            reader = CitationReader(client)
            found = await asyncio.gather(*(reader.sources(p, ids) for p, ids in ask))
            return [(dict(f.read), dict(f.unread)) for f in found], client.stats.requests

    return asyncio.run(main())


def test_each_distinct_source_is_read_once_however_many_ask(emulator: Emulator) -> None:
    emulator.ensure_project(PROJECT, "demo")
    found, requests = _reads(emulator, [(PROJECT, [7, 8, 7])] * 5)
    assert requests == 2
    assert all(f == ({7: None, 8: None}, {}) for f in found)  # the API shows neither


def test_at_most_the_limit_of_sources_is_read_per_project(emulator: Emulator) -> None:
    emulator.ensure_project(PROJECT, "demo")
    emulator.ensure_project(OTHER, "other")
    many = list(range(1, MAX_SOURCE_READS + 11))
    (first, other), requests = _reads(emulator, [(PROJECT, many), (OTHER, [1])])
    assert requests == MAX_SOURCE_READS + 1  # the other project has its own limit
    assert sorted(first[0]) == many[:MAX_SOURCE_READS] and other == ({1: None}, {})
    assert sorted(first[1]) == many[MAX_SOURCE_READS:]
    assert first[1][many[-1]] == (f"more than {MAX_SOURCE_READS} distinct sources are cited "
                                  f"in project {PROJECT}, and a run reads at most "
                                  f"{MAX_SOURCE_READS}")
