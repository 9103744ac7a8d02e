"""When a project's live state may be read by name instead of listed whole. Pure: no I/O.

A project whose `prune` is off never deletes, so it needs only the live conversations that
carry one of its declared names or `renamed_from` names (pins are read on their own). The API's
`name` filter finds them with one request per name, where a full listing costs one request
per page: for 20 names in 10,000 pages, 21 requests instead of 10,000.

How the filter matches is not documented: exact, prefix, substring, case-insensitive. Each of
those returns every conversation whose stored name is exactly the one asked for, and maybe
more, so names are always compared exactly on the client, and a name the filter did not return
is absent, on one condition: the text the server compares must be the text that was sent.
That does not hold for every name:

- surrounding whitespace: frameworks trim request input (Laravel's `TrimStrings` does, for query
  strings too), so a lookup of " FAQ" asks for "FAQ" and misses a conversation stored as " FAQ";
- a backslash: it escapes the next character in SQL `LIKE` patterns, so "a\\b" may be asked as
  "ab";
- text that is not in Unicode NFC, or holds control or invisible characters: it may be
  normalised or dropped on the way, on one side only.

`%` and `_` are harmless: as `LIKE` wildcards they only widen the answer. A server that
stores names trimmed while its filter is exact is covered too: it stores a trimmed name, and
only names without surrounding whitespace are looked up. When any name of a project is one that
could be missed, or when the lookups would not cost fewer requests, the project is listed whole.
"""

from __future__ import annotations

import unicodedata

from reconciler.desired import ProjectSpec


def lookup_names(spec: ProjectSpec) -> list[str]:
    """The names to look up for `spec`: every declared name and `renamed_from` name, once."""
    names: dict[str, None] = {}
    for conversation in spec.conversations:
        names[conversation.name] = None
        for old in conversation.renamed_from:
            names[old] = None
    return list(names)


def could_be_missed(name: str) -> str:
    """Why the API's name filter might not return a conversation named exactly `name` ("" when
    it cannot miss it)."""
    if name != name.strip():
        return "it has surrounding whitespace, which the server may trim from the query"
    if "\\" in name:
        return "it holds a backslash, an escape character in the server's pattern matching"
    if not unicodedata.is_normalized("NFC", name):
        return "it is not in Unicode NFC and may be normalised on the way"
    if not name.isprintable():
        return "it holds control or invisible characters"
    return ""


def by_name_is_cheaper(lookups: int, last_page: int) -> bool:
    """Whether `lookups` requests (one page each) plus one to learn the newest conversation
    cost fewer than reading pages 2..`last_page` of the listing."""
    return lookups + 1 < last_page - 1
