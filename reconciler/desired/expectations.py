"""A message's `expect:`: its checks built with the defaults merged in, and the rules the
schema cannot judge (a `matches` that compiles, and cannot backtrack exponentially).

Answers are checked later against these expectations, and an answer is text an agent wrote:
a regular expression that backtracks exponentially on some text would hang that check. So a
`matches` is refused at validate time when its structure allows it. The test is structural
and conservative (it never accepts a pattern that can backtrack exponentially, and refuses
some that cannot): under every repetition (`*`, `+`, `{m,n}` with n > 1), the repeated part

- must not be able to match the empty string (`(a?)*`, `(a*)*`, `(.*)*`);
- must not hold alternatives that can start with the same character, or match nothing
  (`(a|a)*`, `(a|ab)+`, `(x|)*`);
- may hold a repetition of varying length only when every other character the repeated part
  reads is one that inner repetition cannot read, and the repeated part must read at least
  one of them each time (`(,\\d+)*` and `(ab+)+` pass; `(a+)+`, `(\\w+\\s?)*`, `(.*,)*` do
  not);
- must not hold a backreference.

Possessive quantifiers (`a++`) and atomic groups (`(?>…)`) never backtrack into what they
matched, so they are read as one character each. Repetition that backtracks polynomially
(`.*a.*b`) passes: checking answers bounds the time a match may take.

Phrases are kept in the normal form of names (`reconciler.text`), as they are compared.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.desired.model import Expectations, Similarity
from reconciler.desired.yamlsource import Path, SourceDocument
from reconciler.errors import Problem
from reconciler.text import normal_form, shown_briefly

# The standard library's own parser of regular expressions (what `re.compile` reads a
# pattern with): the structure checked is the one the engine runs. Private, but the same
# from Python 3.11 on.
_parser: Any = importlib.import_module("re._parser")
_MAXREPEAT = int(importlib.import_module("re._constants").MAXREPEAT)

MAX_PATTERN = 1000
_ADVICE = ("write it so that each part of a text can be matched in one way only, or use an "
           "atomic group (?>...) or a possessive quantifier such as a++")


def build(
    own: Mapping[str, Any] | None, *defaults: Mapping[str, Any] | None
) -> Expectations | None:
    """The expectations of a message whose `expect:` is `own` (None: the message has none,
    and gets none), `defaults` merged in, the first given winning over the next, `own`
    winning over all. The mappings must be schema-valid."""
    if own is None:
        return None
    merged: dict[str, Any] = {}
    for layer in reversed([own, *defaults]):
        merged.update(layer or {})
    similar = merged.get("similar_to")
    cites = merged.get("cites")
    return Expectations(
        contains=_phrases(merged.get("contains", ())),
        not_contains=_phrases(merged.get("not_contains", ())),
        matches=merged.get("matches"),
        cites=cites if not isinstance(cites, list) else tuple(
            normal_form(c) if isinstance(c, str) else c for c in cites),
        no_answer=merged.get("no_answer"),
        max_chars=merged.get("max_chars"),
        similar_to=None if similar is None else Similarity(
            text=normal_form(similar["text"]), min=float(similar["min"])),
    )


def _phrases(values: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    return tuple(normal_form(value) for value in values)


def check(document: SourceDocument) -> list[Problem]:
    """A located problem for each `matches` of `document` (under `defaults`, a project or a
    message) that is not a usable regular expression."""
    problems = []
    for path, expect in _expects(document.data):
        pattern = expect.get("matches")
        if isinstance(pattern, str) and 0 < len(pattern) <= MAX_PATTERN:  # else: the schema
            why = regex_problem(pattern)
            if why is not None:
                problems.append(Problem(f"matches {shown_briefly(pattern)}: {why}",
                                        document.locate((*path, "matches"))))
    return problems


def _expects(data: object) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every `expect:` mapping of a document, with its path."""
    if not isinstance(data, dict):
        return
    defaults = data.get("defaults")
    if isinstance(defaults, dict) and isinstance(defaults.get("expect"), dict):
        yield ("defaults", "expect"), defaults["expect"]
    projects = data.get("projects")
    for i, project in enumerate(projects if isinstance(projects, list) else ()):
        if not isinstance(project, dict):
            continue
        if isinstance(project.get("expect"), dict):
            yield ("projects", i, "expect"), project["expect"]
        conversations = project.get("conversations")
        for j, entry in enumerate(conversations if isinstance(conversations, list) else ()):
            messages = entry.get("messages") if isinstance(entry, dict) else None
            for k, message in enumerate(messages if isinstance(messages, list) else ()):
                if isinstance(message, dict) and isinstance(message.get("expect"), dict):
                    yield (("projects", i, "conversations", j, "messages", k, "expect"),
                           message["expect"])


def regex_problem(pattern: str) -> str | None:
    """Why `pattern` cannot be a `matches` (it does not compile, it can backtrack
    exponentially, or it is longer than `MAX_PATTERN` characters, which the schema refuses
    too: the check takes time quadratic in the pattern), or None when it can."""
    if len(pattern) > MAX_PATTERN:
        return f"longer than {MAX_PATTERN} characters"
    try:
        re.compile(pattern)
        parsed = _parser.parse(pattern)
    except re.error as error:
        where = f" at position {error.pos}" if error.pos is not None else ""
        return f"not a regular expression: {error.msg}{where}"
    except (RecursionError, OverflowError, ValueError, MemoryError):
        return "not a regular expression Python can compile (too large or too deeply nested)"
    try:
        tree = _Reader(parsed.state.flags).sequence(parsed)
        problem = next(_backtracking(tree), None)
    except RecursionError:
        return "too deeply nested to be checked"
    return None if problem is None else f"{problem}: it can take exponential time; {_ADVICE}"


# -- what a pattern reads ---------------------------------------------------------------


_CATEGORIES = {
    "CATEGORY_DIGIT": r"\d", "CATEGORY_NOT_DIGIT": r"\D", "CATEGORY_SPACE": r"\s",
    "CATEGORY_NOT_SPACE": r"\S", "CATEGORY_WORD": r"\w", "CATEGORY_NOT_WORD": r"\W",
}
# Pairs of whole categories with no character in common.
_DISJOINT = {frozenset(pair) for pair in (
    ("CATEGORY_DIGIT", "CATEGORY_NOT_DIGIT"), ("CATEGORY_SPACE", "CATEGORY_NOT_SPACE"),
    ("CATEGORY_WORD", "CATEGORY_NOT_WORD"), ("CATEGORY_DIGIT", "CATEGORY_SPACE"),
    ("CATEGORY_WORD", "CATEGORY_SPACE"), ("CATEGORY_DIGIT", "CATEGORY_NOT_WORD"),
)}
_FINITE_LIMIT = 512  # a set of at most this many characters is listed


@dataclass(frozen=True, eq=False)
class _Chars:
    """The characters one step of a pattern may read: `has(ch)`, exactly; `listed`, every
    one of them when they are few (None: many); `category`, when they are one whole class
    such as \\d."""

    has: Callable[[str], bool]
    listed: frozenset[str] | None = None
    category: str | None = None

    def disjoint(self, other: _Chars) -> bool:
        """Whether no character is in both (False when that cannot be shown)."""
        if self.listed is not None:
            return not any(other.has(ch) for ch in self.listed)
        if other.listed is not None:
            return other.disjoint(self)
        return (self.category is not None and other.category is not None
                and frozenset((self.category, other.category)) in _DISJOINT)


_EVERYTHING = _Chars(has=lambda ch: True)


@dataclass(eq=False)
class _Node:
    """A pattern's structure: `kind` is one of atom (`chars`), sequence, branch, repeat
    (`low`, `high`, `possessive`), atomic, look (reads nothing), empty, backref."""

    kind: str
    children: list[_Node] = field(default_factory=list)
    chars: _Chars | None = None
    low: int = 1
    high: int = 1
    possessive: bool = False


class _Reader:
    """Turns the parser's items into `_Node`s, with the flags in force (ASCII and
    IGNORECASE change what a class reads)."""

    def __init__(self, flags: int) -> None:
        self.flags = flags

    def sequence(self, items: Any) -> _Node:
        return _Node("sequence", [self.item(op, value) for op, value in items])

    def item(self, op: Any, value: Any) -> _Node:
        name = str(getattr(op, "name", op))
        if name in ("LITERAL", "NOT_LITERAL", "IN", "ANY"):
            return _Node("atom", chars=self.chars(name, value))
        if name == "BRANCH":
            return _Node("branch", [self.sequence(branch) for branch in value[1]])
        if name == "SUBPATTERN":
            return self.scoped(value[1], value[2], value[3])
        if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, body = value
            return _Node("repeat", [self.sequence(body)], low=low, high=high,
                         possessive=name == "POSSESSIVE_REPEAT")
        if name == "ATOMIC_GROUP":
            return _Node("atomic", [self.sequence(value)])
        if name in ("ASSERT", "ASSERT_NOT"):
            return _Node("look", [self.sequence(value[1])])
        if name == "AT":
            return _Node("empty")
        if name == "GROUPREF_EXISTS":
            branches = [value[1], *([value[2]] if value[2] is not None else [])]
            return _Node("branch", [self.sequence(b) for b in branches]
                         + ([] if value[2] is not None else [_Node("empty")]))
        return _Node("backref")  # GROUPREF and anything newer: read as anything, any length

    def scoped(self, added: int, removed: int, items: Any) -> _Node:
        saved = self.flags
        self.flags = (self.flags | added) & ~removed
        try:
            return self.sequence(items)
        finally:
            self.flags = saved

    def chars(self, name: str, value: Any) -> _Chars:
        if name == "ANY":
            return _EVERYTHING
        if name == "LITERAL":
            return self.listed(frozenset(chr(value)))
        if name == "NOT_LITERAL":
            excluded = self.listed(frozenset(chr(value)))
            return _Chars(has=lambda ch: not excluded.has(ch))
        return self.in_set(value)

    def listed(self, chars: frozenset[str]) -> _Chars:
        if self.flags & re.IGNORECASE:
            chars = frozenset(v for ch in chars for v in _case_variants(ch))
            return _Chars(has=lambda ch: any(v in chars for v in _case_variants(ch)),
                          listed=chars)
        return _Chars(has=chars.__contains__, listed=chars)

    def in_set(self, items: Any) -> _Chars:
        negate = False
        literals: set[str] = set()
        ranges: list[tuple[int, int]] = []
        categories: list[str] = []
        for op, value in items:
            name = str(getattr(op, "name", op))
            if name == "NEGATE":
                negate = True
            elif name == "LITERAL":
                literals.add(chr(value))
            elif name == "RANGE":
                ranges.append((value[0], value[1]))
            else:
                categories.append(str(getattr(value, "name", value)))
        tests = [self.category_test(category) for category in categories]
        caseless = bool(self.flags & re.IGNORECASE)

        def has(ch: str) -> bool:
            variants = _case_variants(ch) if caseless else (ch,)
            found = any(v in literals or any(lo <= ord(v) <= hi for lo, hi in ranges)
                        or any(test(v) for test in tests) for v in variants)
            return found != negate

        size = len(literals) + sum(hi - lo + 1 for lo, hi in ranges)
        if not negate and not categories and size <= _FINITE_LIMIT:
            listed = literals | {chr(c) for lo, hi in ranges for c in range(lo, hi + 1)}
            return self.listed(frozenset(listed))
        whole = categories[0] if len(categories) == 1 and not literals and not ranges else None
        if whole is not None and negate:
            whole = whole.replace("_NOT_", "_") if "_NOT_" in whole else (
                whole.replace("CATEGORY_", "CATEGORY_NOT_"))
        return _Chars(has=has, category=whole if whole in _CATEGORIES else None)

    def category_test(self, category: str) -> Callable[[str], bool]:
        source = _CATEGORIES.get(category)
        if source is None:
            return lambda ch: True  # a class this check does not know: read as anything
        flags = re.ASCII if self.flags & re.ASCII else 0
        return re.compile(source, flags).fullmatch  # type: ignore[return-value]


def _case_variants(ch: str) -> tuple[str, ...]:
    return (ch, ch.lower(), ch.upper(), ch.casefold(), ch.swapcase())


# -- where it can backtrack exponentially --------------------------------------------------


def _backtracking(node: _Node) -> Iterator[str]:
    """Why `node` can backtrack exponentially: one reason per repetition that can."""
    if node.kind == "repeat" and node.high > 1 and not node.possessive:
        yield from _repeated(node.children[0])
    for child in node.children:
        yield from _backtracking(child)


def _repeated(body: _Node) -> Iterator[str]:
    if _nullable(body):
        yield "a repeated part can match nothing"
        return
    for inner in _inside(body):
        if inner.kind == "backref":
            yield "a backreference is repeated"
        elif inner.kind == "branch" and _alternatives_overlap(inner):
            yield "a repeated part has alternatives that can start alike or match nothing"
        elif inner.kind == "repeat" and inner.low != inner.high and not inner.possessive \
                and not _delimited(body, inner):
            yield "a repeat inside a repeat can share characters between them"


def _inside(node: _Node) -> Iterator[_Node]:
    """The nodes within `node` that a backtracking match can re-enter (not within an atomic
    group, a possessive repeat or a lookaround)."""
    for child in node.children:
        yield child
        if child.kind not in ("atomic", "look") and not child.possessive:
            yield from _inside(child)


def _nullable(node: _Node) -> bool:
    if node.kind in ("look", "empty"):
        return True
    if node.kind in ("atom", "backref"):
        return node.kind == "backref"
    if node.kind == "branch":
        return any(_nullable(c) for c in node.children)
    if node.kind == "repeat":
        return node.low == 0 or _nullable(node.children[0])
    return all(_nullable(c) for c in node.children)  # sequence, atomic


def _atoms(node: _Node) -> list[_Node]:
    """The steps of `node` that read a character (a lookaround reads none)."""
    if node.kind in ("atom", "backref"):
        return [node]
    if node.kind == "look":
        return []
    return [atom for child in node.children for atom in _atoms(child)]


def _reads(node: _Node) -> list[_Chars]:
    """Every character class `node` may read (a backreference reads anything)."""
    return [atom.chars or _EVERYTHING for atom in _atoms(node)]


def _first(node: _Node) -> list[_Chars]:
    """The classes of the characters `node` may start with."""
    if node.kind in ("atom", "backref"):
        return _reads(node)
    if node.kind in ("look", "empty"):
        return []
    if node.kind in ("branch",):
        return [chars for child in node.children for chars in _first(child)]
    if node.kind == "sequence" or node.kind == "atomic":
        found: list[_Chars] = []
        for child in node.children:
            found += _first(child)
            if not _nullable(child):
                break
        return found
    return _first(node.children[0])  # repeat


def _alternatives_overlap(branch: _Node) -> bool:
    firsts = [_first(alternative) for alternative in branch.children]
    if any(_nullable(alternative) for alternative in branch.children):
        return True
    return any(not a.disjoint(b)
               for i, one in enumerate(firsts) for other in firsts[i + 1:]
               for a in one for b in other)


def _delimited(body: _Node, inner: _Node) -> bool:
    """Whether every other character `body` reads is one `inner` cannot read, and `body`
    reads one of them on every pass: then a run of `inner`'s characters is read by one pass
    of `inner` only."""
    own = {id(atom) for atom in _atoms(inner)}
    others = [atom.chars or _EVERYTHING for atom in _atoms(body) if id(atom) not in own]
    mine = _reads(inner)
    if any(not a.disjoint(b) for a in mine for b in others):
        return False
    return any(not _nullable(part) and not _holds(part, inner) for part in _parts(body))


def _parts(node: _Node) -> list[_Node]:
    """A sequence's parts, nested sequences (groups) opened."""
    if node.kind != "sequence":
        return [node]
    return [part for child in node.children for part in _parts(child)]


def _holds(node: _Node, wanted: _Node) -> bool:
    return node is wanted or any(_holds(child, wanted) for child in node.children)
