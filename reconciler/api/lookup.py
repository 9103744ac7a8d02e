"""When a project's live state may be read by name instead of listed whole. Pure: no I/O.

A project whose `prune` is off never deletes, so it needs only the live conversations whose
name, in normal form (NFC, no surrounding whitespace: see `reconciler.text`), is one of its
declared or `renamed_from` names; pins are read on their own. The API's `name` filter can find
them with one request per name, where a full listing costs one request per page: 20 names in
10,000 pages take about 25 requests instead of 10,000.

The plan must be exactly the one a full listing gives, so a lookup must return every
conversation whose name has that normal form. How the filter matches is not documented (exact,
prefix, substring, case-insensitive), nor whether the service stores names as sent or trimmed:

- An exact or prefix filter cannot be trusted for absence: a name stored as " FAQ" (sent that
  way by another client, to a service that does not trim) has the normal form "FAQ", and
  neither finds it. Only a filter that matches substrings finds every stored form.
- Even then, the stored form may differ inside: "Café" stored decomposed ("Cafe" and a
  combining accent), or "K" stored as the Kelvin sign, have the same normal form. Printable
  ASCII characters other than `K`, `;` and `` ` `` are the only characters that NFC never
  produces from anything else, so a run of them appears unchanged in every stored form of the
  name; the lookup asks for the longest such run (no backslash either: it escapes in SQL
  `LIKE` patterns; `%` and `_` only widen the answer). The answer is a superset, and names are
  then compared in normal form on the client.

Which kind of filter the service has is found out once per run, with one request: a lookup of
a known name without its first and last characters returns that name only from a filter that
matches substrings (or ignores the name, which a page count then shows). When the filter is
not of that kind, when a name has no such run, or when the lookups would not cost fewer
requests than the rest of the listing, the project is listed whole.
"""

from __future__ import annotations

from collections.abc import Iterable

from reconciler.desired.model import ProjectSpec
from reconciler.text import normal_form

# Printable ASCII that NFC never produces from another sequence (K, ; and ` come from the
# Kelvin sign, the Greek question mark and the Greek varia), minus the LIKE escape character.
_STABLE = frozenset(chr(c) for c in range(0x20, 0x7F)) - {"K", ";", "`", "\\"}


def lookup_names(spec: ProjectSpec) -> list[str]:
    """The names to look up for `spec`, in normal form: every declared name and
    `renamed_from` name, once."""
    names: dict[str, None] = {}
    for conversation in spec.conversations:
        names[normal_form(conversation.name)] = None
        for old in conversation.renamed_from:
            names[normal_form(old)] = None
    return list(names)


def lookup_query(name: str) -> str | None:
    """What to ask the name filter for so that a filter matching substrings returns every
    conversation whose name has the normal form `name`: its longest run of characters that
    every stored form keeps, without surrounding spaces. None when it has none."""
    best, run = "", ""
    for ch in [*name, "\0"]:
        if ch in _STABLE:
            run += ch
            continue
        if len(run.strip()) > len(best):
            best = run.strip()
        run = ""
    return best or None


def substring_probe(names: Iterable[str]) -> tuple[str, str] | None:
    """A known name and what to look up to learn whether the filter matches substrings: the
    name without its first and last characters, which is neither a prefix nor a suffix of it.
    None when no name suits."""
    for name in names:
        inner = name[1:-1].strip()
        if inner and not name.startswith(inner) and not name.endswith(inner):
            return name, inner
    return None


def by_name_is_cheaper(lookups: int, last_page: int) -> bool:
    """Whether `lookups` requests (one page each) plus one to learn the newest conversation
    cost fewer than reading pages 2..`last_page` of the listing."""
    return lookups + 1 < last_page - 1
