"""Answers from a project's own documents (`reconciler emulator --content DIR`).

Canned answers cannot make an answer check fail for a real reason. With a content directory,
`DIR/<project id>/` holds the project's text and markdown files, and the emulator answers a
prompt with the passages of those files that share the most words with it, citing the
documents it used, as a retrieval-backed agent does. No model is called, so the same files and
prompt always give the same answer.

What it promises:
- **Passages.** A passage is a paragraph (lines between blank lines), its whitespace collapsed;
  a markdown heading belongs to the paragraphs under it. A prompt's and a passage's words are
  runs of letters and digits, case-folded (NFKC), with English stop words and single letters
  left out and a plural `-s` folded ("refunds" is "refund").
- **Retrieval.** A passage answers when it shares at least one of the prompt's words and at
  least a third of them. The best shares the most; among equals, the one whose shared words
  are rarest in the project, then the first in file order. The runner-up joins it when it also
  answers and covers words the best does not. No passage: no answer (the caller says the
  project's "I don't know" message).
- **Citations.** Each document has an integer id from a hash of its project and its path in
  the project's folder: the same across restarts and edits of any file, new for a renamed one.
- **Freshness.** Files are listed on every answer and a file is read again when its size, times
  or inode change, so an edit shows in the next answer. A file changed in the last few seconds
  is read again anyway: a clock tick may hide an edit of the same size.
- **Bounds.** Only `.md`, `.markdown`, `.txt` and `.text` files are read, hidden names skipped;
  at most MAX_DOCUMENTS files, MAX_FILE_BYTES each and MAX_PROJECT_BYTES a project (in path
  order). Files with a NUL byte are binary and skipped; other bytes are read as UTF-8, bad
  sequences replaced. A symbolic link is followed only to a file inside DIR, never to a
  directory; only regular files are opened (never a FIFO or a device). Paths are made from the
  project's integer id and the names found in DIR, never from a request.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import stat
import threading
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

logger = logging.getLogger(__name__)

# The vendor's default `no_answer_message` (OpenAPI document of 2025, ProjectSettings).
NO_ANSWER_MESSAGE = "I'm sorry, I don't know the answer"

SUFFIXES = (".md", ".markdown", ".txt", ".text")
MAX_DOCUMENTS = 1000  # files read per project
MAX_FILE_BYTES = 1 << 20  # a larger file is skipped
MAX_PROJECT_BYTES = 32 << 20  # files past this total (in path order) are skipped
MAX_ENTRIES = 10_000  # directory entries looked at per project and answer
MAX_DEPTH = 8  # folders below the project's own
MAX_PASSAGE_CHARS = 1500  # a longer paragraph is cut at a word
DESCRIPTION_CHARS = 300
RACY_NS = 3_000_000_000  # a file changed this recently is read again (coarse clocks)
_ID_SPACE = 2**31 - 1  # citation ids from 1 to 2^31-1: a 32-bit integer in any client

# English words too common to tell passages apart, and the words of a request itself.
_STOP_WORDS = """
a about above after again against all am an and any are aren as at be because been before
being below between both but by can cannot could couldn did didn do does doesn doing don down
during each few for from further had hadn has hasn have haven having he her here hers herself
him himself his how i if in into is isn it its itself just let ll me more most my myself no nor
not now of off on once only or other ought our ours ourselves out over own re same shall she
should shouldn so some such than that the their theirs them themselves then there these they
this those through to too under until up us ve very was wasn we were weren what when where
which while who whom why will with won would wouldn you your yours yourself yourselves
tell explain describe please know also may might must
"""
STOP_WORDS = frozenset(_STOP_WORDS.split())

_WORD = re.compile(r"[^\W_]+")
_HEADING = re.compile(r"^ {0,3}#{1,6}(?:\s+|$)")


class ContentError(Exception):
    """The content directory cannot be used (missing, or not a directory)."""


@dataclass(frozen=True)
class Passage:
    """One paragraph of a document: its text as answered, and the words it is found by."""

    text: str
    terms: frozenset[str]


@dataclass(frozen=True)
class Document:
    """A project's file: its citation id, its path in the project's folder (`name`), its
    title (its first line's heading, or its name) and its passages."""

    id: int
    name: str
    title: str
    passages: tuple[Passage, ...]

    def metadata(self) -> dict[str, object]:
        """The document as the citations endpoint shows it (the API's `PageMetadata`): its
        path, percent-encoded, as a URL relative to the project's folder."""
        description = self.passages[0].text[:DESCRIPTION_CHARS] if self.passages else None
        return {"id": self.id, "url": quote(self.name), "title": self.title,
                "description": description, "image": None}


@dataclass(frozen=True)
class Reply:
    """An answer from content: its text and the ids of the documents it cites."""

    text: str
    citations: tuple[int, ...]


def terms(text: str) -> frozenset[str]:
    """The words of `text` that retrieval compares: letters and digits, NFKC and case-folded,
    stop words and single letters left out, a plural `-s` folded."""
    words = _WORD.findall(unicodedata.normalize("NFKC", text).casefold())
    return frozenset(_fold(word) for word in words
                     if word not in STOP_WORDS and (len(word) > 1 or word.isdigit()))


def _fold(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def parse(text: str, *, name: str) -> tuple[str, tuple[Passage, ...]]:
    """A document's title (the heading on its first line, else `name`) and its passages."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    first = next((line.strip() for line in lines if line.strip()), "")
    title = _heading(first) if _HEADING.match(first) else ""
    passages: list[Passage] = []
    heading = ""
    for block in re.split(r"\n[ \t]*\n", "\n".join(lines)):
        body: list[str] = []
        for line in (line.strip() for line in block.split("\n")):
            if _HEADING.match(line):
                heading = _heading(line)
            elif line:
                body.append(line)
        if body:
            said = " ".join(" ".join(body).split())
            passages.append(Passage(_cut(said), terms(heading + " " + said)))
    return title or name, tuple(passages)


def _heading(line: str) -> str:
    """The text of a markdown heading line: its opening and closing `#`s taken off."""
    return re.sub(r"(?:^|\s+)#+\s*$", "", _HEADING.sub("", line.strip())).strip()


def _cut(text: str) -> str:
    if len(text) <= MAX_PASSAGE_CHARS:
        return text
    cut = text[:MAX_PASSAGE_CHARS].rsplit(" ", 1)[0]
    return cut + " …"


def document_id(project_id: int, name: str) -> int:
    """The citation id of the project's document at path `name` (from 1 to 2^31-1)."""
    digest = hashlib.blake2b(f"{project_id}/".encode() + os.fsencode(name), digest_size=8)
    return int.from_bytes(digest.digest(), "big") % _ID_SPACE + 1


def best_passages(documents: Iterable[Document], prompt: str) -> Reply | None:
    """The answer to `prompt` from `documents` (in path order), or None when no passage shares
    enough of its words (see the module's docstring)."""
    wanted = terms(prompt)
    if not wanted:
        return None
    found = [(document, passage, wanted & passage.terms)
             for document in documents for passage in document.passages]
    found = [item for item in found if item[2]]
    needed = max(1, math.ceil(len(wanted) / 3))
    rarity = Counter(term for _, _, shared in found for term in shared)  # passages with it
    ranked = sorted((item for item in found if len(item[2]) >= needed),
                    key=lambda item: (-len(item[2]), sum(rarity[t] for t in item[2])))
    if not ranked:
        return None
    chosen = [ranked[0]]
    runner_up = next((item for item in ranked[1:] if item[2] - ranked[0][2]), None)
    if runner_up is not None:
        chosen.append(runner_up)
    citations = tuple(dict.fromkeys(document.id for document, _, _ in chosen))
    return Reply("\n\n".join(passage.text for _, passage, _ in chosen), citations)


@dataclass(frozen=True)
class _Read:
    """A file as last read: the stat that identified it, when it was read, and its document
    (None when it was skipped)."""

    key: tuple[int, ...]
    read_at: int
    document: Document | None

    def fresh(self, key: tuple[int, ...]) -> bool:
        """Whether the file, now identified by `key`, is still the one read: same size,
        times and inode, and last changed well before it was read (so an edit within the
        same clock tick cannot hide)."""
        return key == self.key and max(key[1], key[2]) + RACY_NS <= self.read_at


class Content:
    """The content directory: each project's documents, read when they change.

    Thread-safe: answers on several request threads share one cache.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        """Raises ContentError when `root` is not a directory."""
        self.root = Path(root)
        if not self.root.is_dir():
            raise ContentError(f"the content directory {self.root} does not exist or is not "
                               "a directory")
        self._real_root = os.path.join(os.path.realpath(self.root), "")  # with its "/"
        self._lock = threading.Lock()
        self._cache: dict[str, _Read] = {}
        self._warned: dict[str, tuple[int, ...]] = {}

    def __repr__(self) -> str:
        return f"Content(root={str(self.root)!r})"

    def answer(self, project_id: int, prompt: str) -> Reply | None:
        """The answer to `prompt` from the project's documents, None when nothing matches."""
        return best_passages(self.documents(project_id), prompt)

    def document(self, project_id: int, document_id: int) -> Document | None:
        """The project's document with this citation id, or None."""
        return next((document for document in self.documents(project_id)
                     if document.id == document_id), None)

    def documents(self, project_id: int) -> list[Document]:
        """The project's documents in path order, as the files are now (none when its folder
        is missing, or a link out of the content directory)."""
        folder = os.path.join(self.root, str(int(project_id)))
        if not self._inside(folder) or not os.path.isdir(folder):
            return []
        with self._lock:
            documents: list[Document] = []
            taken: set[int] = set()
            total = 0
            found = _files(folder, self._inside)
            for file in found:
                read = self._read(project_id, file, budget=MAX_PROJECT_BYTES - total)
                if read is None or read.document is None:
                    continue
                total += read.key[0]
                document = read.document
                while document.id in taken:  # two paths of one hash: the later one moves on
                    document = Document(document.id % _ID_SPACE + 1, document.name,
                                        document.title, document.passages)
                taken.add(document.id)
                documents.append(document)
            self._forget(folder, {file.path for file in found})
        return documents

    def _inside(self, path: str) -> bool:
        """Whether `path`, links resolved, lies inside the content directory."""
        return os.path.realpath(path).startswith(self._real_root)

    def _forget(self, folder: str, seen: set[str]) -> None:
        """Drop what is cached of the files of `folder` that are gone."""
        prefix = folder + os.sep
        for path in [path for path in self._cache if path.startswith(prefix)]:
            if path not in seen:
                del self._cache[path]
                self._warned.pop(path, None)

    def _read(self, project_id: int, file: _File, *, budget: int) -> _Read | None:
        """The file's document, from the cache while the file is unchanged; None when it is
        gone or past the project's bound."""
        try:
            key = _key(os.stat(file.target))
        except OSError:
            return None
        if key[0] > budget:
            self._skip(file, key, f"past the project's bound of {MAX_PROJECT_BYTES} bytes")
            return None
        cached = self._cache.get(file.path)
        if cached is not None and cached.fresh(key):
            return cached
        read_at = time.time_ns()
        data, problem = ("", f"larger than {MAX_FILE_BYTES} bytes") \
            if key[0] > MAX_FILE_BYTES else _contents(file.target)
        document = None
        if problem:
            self._skip(file, key, problem)
        else:
            title, passages = parse(data, name=_shown(file.name))
            document = Document(document_id(project_id, file.name), _shown(file.name), title,
                                passages)
        read = _Read(key, read_at, document)
        self._cache[file.path] = read
        return read

    def _skip(self, file: _File, key: tuple[int, ...], why: str) -> None:
        """Log once per version of a file that it is not used, and why."""
        if self._warned.get(file.path) != key:
            self._warned[file.path] = key
            logger.warning("content file %s skipped: %s", _shown(file.path)[:300], why)


def _key(status: os.stat_result) -> tuple[int, ...]:
    """What identifies a version of a file: size (first: the bounds read it), modification
    and change times, inode and device."""
    return (status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino,
            status.st_dev)


def _shown(name: str) -> str:
    """A path as text: bytes that are not UTF-8 become U+FFFD."""
    return os.fsencode(name).decode("utf-8", "replace")


@dataclass(frozen=True)
class _File:
    """A text file found in a project's folder: its path there (`name`, "/" between folders),
    the path it was found at, and the path to open (where a link leads)."""

    name: str
    path: str
    target: str


def _files(folder: str, inside: Callable[[str], bool]) -> list[_File]:
    """The text files under `folder`, sorted by path. Looks at MAX_ENTRIES entries and keeps
    MAX_DOCUMENTS files at most; skips hidden names and folders deeper than MAX_DEPTH; follows
    a link only to a file `inside` the content directory."""
    found: list[_File] = []
    budget = MAX_ENTRIES

    def listing(directory: str) -> list[os.DirEntry[str]]:
        nonlocal budget
        entries: list[os.DirEntry[str]] = []
        try:
            with os.scandir(directory) as scan:
                for entry in scan:
                    budget -= 1
                    if budget < 0:
                        break
                    entries.append(entry)
        except OSError:
            pass
        return sorted(entries, key=lambda entry: os.fsencode(entry.name))

    def walk(directory: str, prefix: str, depth: int) -> None:
        for entry in listing(directory):
            if len(found) >= MAX_DOCUMENTS or entry.name.startswith("."):
                continue
            name, text = prefix + entry.name, entry.name.lower().endswith(SUFFIXES)
            try:
                if entry.is_symlink():
                    if text and inside(entry.path) and entry.is_file():
                        found.append(_File(name, entry.path, os.path.realpath(entry.path)))
                elif entry.is_dir(follow_symlinks=False):
                    if depth < MAX_DEPTH:
                        walk(entry.path, name + "/", depth + 1)
                elif text and entry.is_file(follow_symlinks=False):
                    found.append(_File(name, entry.path, entry.path))
            except OSError:
                continue

    walk(folder, "", 0)
    return found


def _contents(path: str) -> tuple[str, str]:
    """The text of the regular file at `path` (a link is not followed) and "", or "" and why it
    cannot be used: larger than MAX_FILE_BYTES, binary (a NUL byte), not a regular file,
    unreadable. Opened without blocking, so a FIFO put in its place cannot hang the emulator."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(
        os, "O_CLOEXEC", 0)
    try:
        handle = os.open(path, flags)
    except OSError as problem:
        return "", problem.strerror or "it cannot be opened"
    try:
        if not stat.S_ISREG(os.fstat(handle).st_mode):
            return "", "not a regular file"
        with os.fdopen(handle, "rb", closefd=False) as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except OSError as problem:
        return "", problem.strerror or "it cannot be read"
    finally:
        os.close(handle)
    if len(data) > MAX_FILE_BYTES:
        return "", f"larger than {MAX_FILE_BYTES} bytes"
    if b"\0" in data:
        return "", "binary (it holds a NUL byte)"
    return data.decode("utf-8-sig", "replace"), ""
