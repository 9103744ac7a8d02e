"""Names and prompts in one normal form, and shown so that invisible differences are visible.

The API does not say whether the service stores a name or a prompt exactly as sent: it may
strip surrounding whitespace, or normalise Unicode. reconciler therefore sends, and compares,
every name and prompt in one normal form: Unicode NFC with surrounding whitespace removed. Two
texts that differ only there are the same name (or prompt) to reconciler.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

# Categories a reader cannot see or tell apart: format characters (zero-width space and
# joiners, bidirectional controls), controls, and separators other than the space; and
# combining marks, which are invisible as such where a precomposed character exists (NFC).
_INVISIBLE = frozenset({"Cf", "Cc", "Co", "Cs", "Cn", "Zl", "Zp", "Zs"})
_COMBINING = frozenset({"Mn", "Me", "Mc"})


def normal_form(text: str) -> str:
    """`text` as reconciler sends and compares it: NFC, without surrounding whitespace."""
    if text.isascii():  # NFC changes no ASCII text; the check costs nothing (a flag)
        return text.strip()
    return unicodedata.normalize("NFC", text).strip()


def why_not_normal(text: str) -> str:
    """What the normal form changes in `text`, in words ("" when it is already normal)."""
    reasons = []
    if text != text.strip():
        reasons.append("surrounding whitespace")
    if not unicodedata.is_normalized("NFC", text):
        reasons.append("Unicode normalisation (not NFC)")
    return " and ".join(reasons)


def has_hidden_characters(text: str) -> bool:
    """Whether `text` holds a character that looks like nothing or like a space but is not
    one: zero-width and bidirectional format characters, no-break and other odd spaces."""
    return any(unicodedata.category(ch) in ("Cf", "Zs") and ch != " " for ch in text)


def shown(text: str) -> str:
    """`text` quoted for a plan or a message, every character a reader could not see or tell
    apart written as an escape: 'Cafe\\u0301', 'Bil\\u200bling', 'a\\xa0b'."""
    quoted = repr(text)
    if text.isascii():  # repr already escapes every ASCII character a reader cannot see
        return quoted
    hidden = _INVISIBLE if unicodedata.is_normalized("NFC", text) else _INVISIBLE | _COMBINING
    if all(ch == " " or unicodedata.category(ch) not in hidden for ch in quoted):
        return quoted
    return "".join(_escaped(ch, hidden) for ch in quoted)


def shown_briefly(text: str, *, limit: int = 60) -> str:
    """`shown(text)`, but a long text as its start and its end around an ellipsis, so that
    surrounding whitespace stays visible."""
    if len(text) <= limit:
        return shown(text)
    head, tail = text[: limit * 2 // 3], text[-(limit // 3):]
    return f"{shown(head)}…{shown(tail)}"


ECHO_LIMIT = 80  # characters of an input value a message repeats


def clipped(text: str, *, limit: int = ECHO_LIMIT,
            quote: Callable[[str], str] | None = None) -> str:
    """`text` as a message may repeat it: whole up to `limit` characters, else its first
    `limit` characters and how long it is, `aaaa… (5242880 characters)`, so that a huge value
    never makes a huge message. With `quote` (`repr`, `json.dumps`), the part kept is quoted
    by it: `'aaaa'… (5242880 characters)`.

    Every message that repeats a value from the input (a file, the command line) repeats it
    through this function.
    """
    kept = text[:limit]
    shown = kept if quote is None else quote(kept)
    return shown if len(text) <= limit else f"{shown}… ({len(text)} characters)"


def _escaped(ch: str, hidden: frozenset[str]) -> str:
    if ch == " " or unicodedata.category(ch) not in hidden:
        return ch
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else (
        f"\\U{code:08x}")


def skeleton(text: str) -> str:
    """What a reader sees of `text`: compatibility-normalised, invisible characters dropped,
    whitespace runs as one space. Two names with the same skeleton look alike."""
    if text.isascii() and text.isprintable():  # its only whitespace is the space
        if "  " in text or text.startswith(" ") or text.endswith(" "):
            return " ".join(text.split())  # what the Unicode work below would give
        return text
    folded = unicodedata.normalize("NFKC", text)
    visible = "".join(ch for ch in folded
                      if ch.isspace() or unicodedata.category(ch) not in _INVISIBLE)
    return " ".join(visible.split())


_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_PLAIN = bytes(range(0x20, 0x7F)) + b"\n\t"  # ASCII that needs no escape


def terminal_safe(text: str) -> str:
    """`text` with every control character but newline and tab written as `\\uXXXX`.

    No escape sequence (ANSI colours, cursor moves, title changes, 8-bit CSI) and no carriage
    return reaches the terminal. JSON and YAML output is unchanged in meaning: their encoders
    escape C0 characters themselves, and `\\u009b` is the same string inside JSON quotes.
    """
    if text.isascii() and not text.encode("ascii").translate(None, _PLAIN):
        return text  # a plan's text usually: deleting the plain bytes is faster than a search
    return _CONTROL.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
