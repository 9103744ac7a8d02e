"""JSON documents: writing plans, reports and backups, and reading any JSON that comes in
(the one module using orjson, and the one place where JSON text is decoded).

orjson serialises a 100,000-conversation plan several times faster than the standard
library's indenting encoder, which keeps planning within its CPU budget. Decoding goes through
`parse` only, so that every malformed, oversized or absurdly nested document, from the API, a
saved plan, a backup or a request to the emulator, fails the same way: `JsonError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from reconciler.errors import InputError, Location, Problem
from reconciler.inputs import SAVED_FILE_LIMIT, UnreadableFile, read_input

MAX_DEPTH = 64  # far deeper than any document reconciler reads or the API sends


class JsonError(ValueError):
    """Text that is not a JSON document reconciler accepts; the message says why and where."""


def pretty(document: Any) -> str:
    """`document` as indented JSON text (2 spaces, UTF-8 kept), with a trailing newline."""
    return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode("utf-8") + "\n"


def canonical(document: Any) -> bytes:
    """The canonical form used for checksums: sorted keys, no spaces, UTF-8."""
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)


def parse(text: str | bytes) -> Any:
    """Decode JSON text. Raises JsonError for text that is not JSON or not UTF-8, a number out
    of range, a lone surrogate, or nesting deeper than `MAX_DEPTH`; never RecursionError.

    Integers beyond 64 bits decode as floats (orjson), which the callers' type checks refuse.
    """
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise JsonError(f"not valid JSON: {error}") from None
    if _too_deep(document):
        raise JsonError(f"not accepted: JSON nested deeper than {MAX_DEPTH} levels")
    return document


def _too_deep(document: Any) -> bool:
    """True when `document` nests objects and arrays deeper than MAX_DEPTH (no recursion)."""
    if not isinstance(document, dict | list):
        return False
    pending: list[tuple[Any, int]] = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > MAX_DEPTH:
            return True
        children = value.values() if isinstance(value, dict) else value
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def read_json_file(path: Path, *, what: str, limit: int = SAVED_FILE_LIMIT) -> Any:
    """The JSON document in the file at `path` (`what` names it in messages: "plan"), read
    by `inputs.read_input` (a regular file of at most `limit` bytes).

    Raises InputError naming the file and the reason: missing, permission denied, not a
    regular file (a FIFO or `/dev/zero` included: never a hang or a MemoryError), over the
    limit, not UTF-8 or not JSON, or too deeply nested.
    """
    try:
        raw = read_input(path, limit=limit)
    except UnreadableFile as error:
        raise InputError([Problem(f"cannot read the {what} file: {error.reason}",
                                  Location(str(path)))]) from None
    try:
        return parse(raw)
    except JsonError as error:
        raise InputError([Problem(f"not a {what} file: {error}", Location(str(path)))]) from None
