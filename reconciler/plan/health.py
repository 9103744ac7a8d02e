"""Answer checks: whether a stored answer still says what a message's `expect:` requires.

Pure: given `Expectations` and an `Answer` (its text, the ids of the sources it cites, the
project's "I don't know" message), one `CheckResult` per expectation, passed, failed or not
checked, with its reason in a reader's words. Nothing here reads the network or a file.

An answer is text an agent wrote and is untrusted: only its first `EVALUATED_CHARS`
characters are searched and compared (its length is counted whole), and a `matches` runs
under a time bound (`regex` with `timeout=`): a match that takes longer fails, saying so.
Phrases compare in the normal form of names (`reconciler.text`) and case-insensitively
(`str.casefold`). `similar_to` is rapidfuzz's `fuzz.ratio` (the Indel similarity: one minus
the characters inserted and deleted to turn one text into the other, over both lengths) of
the two texts casefolded with their runs of whitespace made one space, over 100; of the
answer, its first `SIMILAR_CHARS` characters are compared (the time it takes grows with the
product of the two lengths).
`cites` compares source ids (integers) with the ids an answer cites. A source named by text
is compared with the sources the answer cites as the API describes them (`CitedSources`, read
before judging: nothing here reads them), as `source_matches` says; where they were not read
(a plan does not read them) or one could not be read, that check is not checked, saying why.

`judge` judges what planning or `check` read of a project (`StoredAnswers`): each declared
message's latest answer in its conversation's transcript.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import unquote, urlsplit

import regex
from rapidfuzz import fuzz

from reconciler.api.live import CitedSource, Message
from reconciler.desired.model import ConversationSpec, Expectations, MessageSpec
from reconciler.text import normal_form, shown_briefly

EVALUATED_CHARS = 1 << 20  # the part of an answer that is searched and compared
SHOWN_CHARS = 4_000  # the part of an answer kept to show beside its checks
# The part of an answer compared with a `similar_to` text (at most 10,000 characters, as the
# schema bounds a phrase): the Indel distance takes time in the product of the two lengths.
SIMILAR_CHARS = 20_000
MATCH_SECONDS = 1.0  # the longest a `matches` may run on one answer
# The vendor's default "I don't know" message, when a project says none.
DEFAULT_NO_ANSWER = "I'm sorry, I don't know the answer"

_SPACES = re.compile(r"\s+")
SHOWN_SOURCES = 5  # the cited sources a failed `cites` by name shows
# Why a source named by text is not checked where the sources cited were not read: a plan
# makes no request for them (`render.health.plan_line` counts these checks apart).
SOURCES_NOT_READ = ("a plan does not read the sources an answer cites: `reconciler check` "
                    "checks a source named by text")


class Status(enum.Enum):
    """What became of one check."""

    PASSED = "passed"
    FAILED = "failed"
    NOT_CHECKED = "not checked"


@dataclass(frozen=True)
class CitedSources:
    """What was read of the sources a project's answers cite, for `cites` by name: each id
    read, with its source (None: the API shows no source of that id), and each id that could
    not be read, with why ("HTTP 500 ...", "more than 50 ...")."""

    read: Mapping[int, CitedSource | None] = field(default_factory=dict)
    unread: Mapping[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Answer:
    """A stored answer: its text, the ids of the sources it cites, the project's "I don't
    know" message (None: the vendor's default), and what was read of the sources it cites
    (None: nothing was read, so a source named by text is not checked)."""

    text: str
    citations: tuple[int, ...] = ()
    no_answer_message: str | None = None
    sources: CitedSources | None = None


@dataclass(frozen=True)
class CheckResult:
    """One expectation checked: its key (`contains`, `matches`, ...), the value expected as
    the file wrote it (shown), its status, and why, in words ("does not contain '30 days'")."""

    key: str
    expected: str
    status: Status
    reason: str

    @property
    def passed(self) -> bool:
        return self.status is Status.PASSED


@dataclass(frozen=True)
class MessageCheck:
    """The checks of one declared message: its conversation's name, its prompt, the
    results (None: not checked, the prompt was not sent yet), the answer judged, its
    first `SHOWN_CHARS` characters (None: no answer), and where that answer is: the
    conversation's session id and the message's id (None: not known, or not sent)."""

    conversation: str
    prompt: str
    results: tuple[CheckResult, ...] | None
    answer: str | None = None
    session_id: str | None = None
    message_id: int | None = None


@dataclass(frozen=True)
class Flip:
    """A check whose status changed since an earlier run: where it is (project, conversation,
    prompt), which check (key and expected value), and its status then and now."""

    project_id: int
    conversation: str
    prompt: str
    key: str
    expected: str
    was: Status
    now: Status


@dataclass(frozen=True)
class ProjectHealth:
    """One project's answer checks, or the error that stopped reading it."""

    project_id: int
    label: str
    messages: tuple[MessageCheck, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class StoredConversation:
    """A declared conversation with `expect:` and what is stored of it: its session (None:
    not live) and its messages as planning reads them, each of its sends counted as the
    declared prompt (None: not read)."""

    declared: ConversationSpec
    session_id: str | None
    messages: tuple[Message, ...] | None


@dataclass(frozen=True)
class StoredAnswers:
    """What one project has stored for its answer checks: its conversations that declare
    `expect:`, in declared order, or the error that stopped reading it."""

    project_id: int
    label: str
    conversations: tuple[StoredConversation, ...] = ()
    error: str | None = None

    def named_citations(self) -> tuple[int, ...]:
        """The distinct ids cited by the answers judged with a `cites` that names a source by
        text, in declared order: the only sources a check reads."""
        cited: dict[int, None] = {}
        for conversation in self.conversations:
            for message in conversation.declared.messages:
                if message.expect is None or not names_sources(message.expect):
                    continue
                _, answer = _latest(conversation, message.prompt)
                cited.update(dict.fromkeys(answer.citations if answer else ()))
        return tuple(cited)

    @property
    def asks_no_answer(self) -> bool:
        """Whether a `no_answer` check is declared (only then are the settings read)."""
        return any(m.expect is not None and m.expect.no_answer is not None
                   for c in self.conversations for m in c.declared.messages)


def judge(stored: StoredAnswers, no_answer: str | None, *,
          sources: CitedSources | None = None) -> ProjectHealth:
    """The checks of `stored`, each declared message's latest stored answer judged, with the
    project's "I don't know" message `no_answer` (None: the vendor's default) and what was
    read of the sources its answers cite (None: nothing)."""
    if stored.error is not None:
        return ProjectHealth(stored.project_id, stored.label, error=stored.error)
    checks = [judge_message(c.declared.name, message, *_latest(c, message.prompt), no_answer,
                            sources=sources)
              for c in stored.conversations for message in c.declared.messages
              if message.expect is not None]
    return ProjectHealth(stored.project_id, stored.label, tuple(checks))


def judge_message(conversation: str, declared: MessageSpec, session_id: str | None,
                  answer: Message | None, no_answer: str | None, *,
                  sources: CitedSources | None = None) -> MessageCheck:
    """The checks of one declared message on `answer`, the message that holds its answer in
    conversation `session_id` (None: not sent, nothing is judged), with what was read of the
    sources it cites (None: nothing)."""
    if answer is None or declared.expect is None:
        return MessageCheck(conversation, declared.prompt, None, session_id=session_id)
    results = evaluate(declared.expect,
                       Answer(answer.openai_response, answer.citations, no_answer, sources))
    return MessageCheck(conversation, declared.prompt, results,
                        shown_answer(answer.openai_response), session_id, answer.id)


def not_judged(check: MessageCheck, key: str, reason: str) -> MessageCheck:
    """`check` with its results of `key` not checked, for `reason` (what they needed could
    not be read)."""
    if check.results is None:
        return check
    results = tuple(CheckResult(r.key, r.expected, Status.NOT_CHECKED, reason)
                    if r.key == key else r for r in check.results)
    return replace(check, results=results)


def _latest(stored: StoredConversation, prompt: str) -> tuple[str | None, Message | None]:
    """The session and its latest message that is `prompt` (in normal form)."""
    wanted = normal_form(prompt)
    found = None
    for message in stored.messages or ():
        if normal_form(message.user_query) == wanted:
            found = message
    return stored.session_id, found


def evaluate(expect: Expectations, answer: Answer, *,
             match_seconds: float = MATCH_SECONDS) -> tuple[CheckResult, ...]:
    """Every check of `expect` on `answer`, in the order the keys are documented: contains,
    not_contains, matches, cites, no_answer, max_chars, similar_to. Raises nothing: a pattern
    the matcher refuses or a match that runs out of time is a failed check."""
    text = normal_form(_bounded(answer.text))
    folded = text.casefold()
    results: list[CheckResult] = []
    for phrase in expect.contains:
        found = phrase.casefold() in folded
        results.append(_result("contains", shown_briefly(phrase), found,
                               f"contains {shown_briefly(phrase)}",
                               f"does not contain {shown_briefly(phrase)}"))
    for phrase in expect.not_contains:
        found = phrase.casefold() in folded
        results.append(_result("not_contains", shown_briefly(phrase), not found,
                               f"does not contain {shown_briefly(phrase)}",
                               f"contains {shown_briefly(phrase)}"))
    if expect.matches is not None:
        results.append(_matches(expect.matches, text, match_seconds))
    if expect.cites is not None:
        results.extend(_cites(expect.cites, answer.citations, answer.sources))
    if expect.no_answer is not None:
        results.append(_no_answer(expect.no_answer, text, answer.no_answer_message))
    if expect.max_chars is not None:
        length = len(normal_form(answer.text)) if len(answer.text) <= EVALUATED_CHARS else (
            len(answer.text))
        results.append(_result(
            "max_chars", f"{expect.max_chars:,}", length <= expect.max_chars,
            f"is {length:,} characters, at most {expect.max_chars:,}",
            f"is {length:,} characters, over {expect.max_chars:,}"))
    if expect.similar_to is not None:
        wanted = expect.similar_to
        score = similarity(text, wanted.text)
        results.append(_result(
            "similar_to", f"{shown_briefly(wanted.text)} (min {wanted.min:g})",
            score >= wanted.min, f"similarity {score:.2f} ≥ {wanted.min:g}",
            f"similarity {score:.2f} < {wanted.min:g}"))
    return tuple(results)


def flips(before: list[ProjectHealth], after: list[ProjectHealth]) -> tuple[Flip, ...]:
    """The checks judged in both runs (same project, conversation, prompt, key and expected
    value) whose status is not the same, in the order of `after`. A check in only one of the
    runs, or not judged in one (a prompt not sent), is no flip."""
    earlier: dict[tuple[int, str, str, str, str], Status] = {}
    for project_id, message, result in _judged(before):
        earlier.setdefault(_where(project_id, message, result), result.status)
    changed = []
    for project_id, message, result in _judged(after):
        was = earlier.get(_where(project_id, message, result))
        if was is not None and was is not result.status:
            changed.append(Flip(project_id, message.conversation, message.prompt, result.key,
                                result.expected, was, result.status))
    return tuple(changed)


def _judged(projects: list[ProjectHealth]) -> list[tuple[int, MessageCheck, CheckResult]]:
    return [(project.project_id, message, result) for project in projects
            for message in project.messages for result in message.results or ()]


def _where(project_id: int, message: MessageCheck,
           result: CheckResult) -> tuple[int, str, str, str, str]:
    return (project_id, normal_form(message.conversation), normal_form(message.prompt),
            result.key, result.expected)


def shown_answer(text: str) -> str:
    """The part of an answer kept to show beside its checks: its first `SHOWN_CHARS`
    characters, and an ellipsis when there was more."""
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "…"


def similarity(text: str, reference: str) -> float:
    """How alike two texts are, 0 to 1: rapidfuzz's `fuzz.ratio` of both casefolded, runs of
    whitespace made one space, over 100; of `text`, its first `SIMILAR_CHARS` characters."""
    return float(fuzz.ratio(_plain(text[:SIMILAR_CHARS]), _plain(reference))) / 100


def _plain(text: str) -> str:
    return _SPACES.sub(" ", normal_form(text)).casefold()


def _bounded(text: str) -> str:
    return text[:EVALUATED_CHARS]


def _result(key: str, expected: str, passed: bool, why_passed: str,
            why_failed: str) -> CheckResult:
    return CheckResult(key, expected, Status.PASSED if passed else Status.FAILED,
                       why_passed if passed else why_failed)


def _matches(pattern: str, text: str, seconds: float) -> CheckResult:
    shown = shown_briefly(pattern)
    try:
        found = regex.search(pattern, text, timeout=seconds) is not None
    except TimeoutError:
        return CheckResult("matches", shown, Status.FAILED,
                           f"matching {shown} took longer than {seconds:g} s; not judged")
    except (regex.error, RecursionError, MemoryError) as error:
        return CheckResult("matches", shown, Status.FAILED,
                           f"{shown} cannot be matched: {error}")
    return _result("matches", shown, found, f"matches {shown}", f"matches no {shown}")


def names_sources(expect: Expectations) -> bool:
    """Whether `expect` has a `cites` that names a source by text (only then are the sources
    an answer cites read)."""
    return isinstance(expect.cites, tuple) and any(isinstance(c, str) for c in expect.cites)


def source_matches(name: str, source: CitedSource) -> bool:
    """Whether `name`, a source named by text, is the cited `source`: in the normal form and
    casefolded, `name` equals its title, its URL, or the last segment of its URL's path
    (percent-decoded, a trailing slash ignored: `refunds.md` of `https://x.example/refunds.md`
    or `docs/refunds.md`); or `name` is itself an http(s) URL equal to its URL but for a
    trailing slash. A missing title or URL matches nothing."""
    wanted = _folded(name)
    if not wanted:
        return False
    if source.title is not None and wanted == _folded(source.title):
        return True
    if source.url is None:
        return False
    url = _folded(source.url)
    if wanted in (url, _folded(_last_segment(source.url))):
        return True
    return _is_url(wanted) and wanted.rstrip("/") == url.rstrip("/")


def _folded(text: str) -> str:
    return normal_form(text).casefold()


def _last_segment(url: str) -> str:
    """The last segment of `url`'s path, percent-decoded, a trailing slash ignored ("" when
    the URL cannot be split)."""
    try:
        path = urlsplit(url).path
    except ValueError:  # an odd URL (a bracket out of place): no segment
        return ""
    return unquote(path.rstrip("/").rsplit("/", 1)[-1])


def _is_url(text: str) -> bool:
    return text.startswith(("http://", "https://")) and len(text) > len("https://")


def _cites(cites: bool | tuple[str | int, ...], cited: tuple[int, ...],
           sources: CitedSources | None) -> list[CheckResult]:
    count = len(cited)
    sources_word = f"{count} source" + ("" if count == 1 else "s")
    if cites is True:
        return [_result("cites", "true", count > 0, f"cites {sources_word}", "cites nothing")]
    if cites is False:
        return [_result("cites", "false", count == 0, "cites nothing",
                        f"cites {sources_word}, none expected")]
    results = []
    for source in cites:
        if isinstance(source, int) and not isinstance(source, bool):
            results.append(_result("cites", str(source), source in cited,
                                   f"cites source {source}",
                                   f"does not cite source {source}"
                                   + (f" (cites {_ids(cited)})" if cited else "")))
        else:
            results.append(_cites_named(str(source), cited, sources))
    return results


def _cites_named(name: str, cited: tuple[int, ...],
                 sources: CitedSources | None) -> CheckResult:
    """A `cites` of a source named by text: passed when a cited source matches it
    (`source_matches`), failed when every cited source was read and none does, else not
    checked, saying which source could not be read."""
    shown_name = shown_briefly(name)
    if sources is None:
        return CheckResult("cites", shown_name, Status.NOT_CHECKED, SOURCES_NOT_READ)
    distinct = tuple(dict.fromkeys(cited))
    for citation in distinct:
        found = sources.read.get(citation)
        if found is not None and source_matches(name, found):
            return CheckResult("cites", shown_name, Status.PASSED,
                               f"cites {shown_name} (source {citation})")
    unread = [c for c in distinct if c not in sources.read]
    if unread:
        why = sources.unread.get(unread[0], "it was not read")
        more = f" (and {len(unread) - 1} more)" if len(unread) > 1 else ""
        return CheckResult("cites", shown_name, Status.NOT_CHECKED,
                           f"the cited source {unread[0]}{more} could not be read: {why}")
    return CheckResult("cites", shown_name, Status.FAILED,
                       f"does not cite {shown_name} (cites {_sources(distinct, sources)})")


def _sources(cited: tuple[int, ...], sources: CitedSources) -> str:
    """The cited sources as a reader knows them, the first `SHOWN_SOURCES` of them."""
    if not cited:
        return "nothing"
    shown = ", ".join(_source_label(c, sources.read.get(c)) for c in cited[:SHOWN_SOURCES])
    return shown + (", …" if len(cited) > SHOWN_SOURCES else "")


def _source_label(citation: int, source: CitedSource | None) -> str:
    """A cited source by the name a file would give it: its URL's last path segment, else
    its title, else its URL, else its id."""
    if source is None:
        return f"source {citation}, which the API does not show"
    for name in (_last_segment(source.url) if source.url else None, source.title, source.url):
        if name and name.strip():
            return shown_briefly(name)
    return f"source {citation}"


def _ids(cited: tuple[int, ...]) -> str:
    shown = ", ".join(str(i) for i in cited[:10])
    return shown + (", …" if len(cited) > 10 else "")


def _no_answer(wanted: bool, text: str, message: str | None) -> CheckResult:
    own = normal_form(message) if message and normal_form(message) else DEFAULT_NO_ANSWER
    is_it = _plain(text) == _plain(own)
    if wanted:
        return _result("no_answer", "true", is_it, "is the agent's 'I don't know' answer",
                       f"is not the agent's 'I don't know' answer {shown_briefly(own)}")
    return _result("no_answer", "false", not is_it, "is an answer",
                   "is the agent's 'I don't know' answer")
