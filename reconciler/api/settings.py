"""Where the API is and how to talk to it: base URL, the API key, timeouts, parallelism.

Settings come from command-line values and the environment; building them checks the URL
(plain http:// only to loopback hosts unless told otherwise) and reads the key without ever
showing it: `Secret` hides it from every repr, str, log line and pickle.
"""

from __future__ import annotations

import contextlib
import ipaddress
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from reconciler.api.pacer import PaceSettings
from reconciler.api.retry import RetryPolicy
from reconciler.errors import InputError, Problem
from reconciler.inputs import KEY_FILE_LIMIT, UnreadableFile, read_input
from reconciler.keys import API_KEY_VARIABLE

DEFAULT_BASE_URL: Final = "https://app.customgpt.ai"
BASE_URL_VARIABLE: Final = "CUSTOMGPT_BASE_URL"
# The largest answer body read, decoded: a page of the API is a few hundred KiB at most.
MAX_ANSWER_BYTES: Final = 64 * 1024 * 1024

class Secret:
    """A value (the API token) that never shows itself in a repr, str, log or traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The value itself, for the Authorization header only."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    def __str__(self) -> str:
        return "********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[Any, ...]:
        raise TypeError("a Secret cannot be pickled")


@dataclass(frozen=True)
class ClientSettings:
    """Where the API is and how to talk to it.

    Constructing it checks the base URL: plain http:// only to loopback hosts unless
    `insecure_http`; raises `InputError` otherwise. TLS certificates are always verified.
    `timeout` bounds each whole request (connecting, sending, the answer to its last byte);
    `retry.deadline` bounds each call with its retries and waits; `pace` is how much of the
    key's request budget the client may take; `max_answer_bytes` bounds an answer's body,
    decoded (a larger one fails the call).
    """

    api_key: Secret
    base_url: str = DEFAULT_BASE_URL
    timeout: float = 30.0
    parallelism: int = 8
    insecure_http: bool = False
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    pace: PaceSettings = field(default_factory=PaceSettings)
    send_timeout: float = 300.0  # how long a model may take to answer a sent message
    send_watch: float | None = None  # after a lost answer, how long to watch for the message
    max_answer_bytes: int = MAX_ANSWER_BYTES

    def __post_init__(self) -> None:
        problems = _url_problems(self.base_url, insecure_http=self.insecure_http)
        problems += timeout_problems(self.timeout)
        problems += [problem.replace("the timeout", "the send timeout")
                     for problem in timeout_problems(self.send_timeout)]
        if self.send_watch is not None and not 0 <= self.send_watch <= MAX_TIMEOUT:
            problems.append(f"the send watch must be between 0 and {MAX_TIMEOUT:g} seconds, "
                            f"not {self.send_watch}")
        if self.parallelism < 1:
            problems.append(f"the parallelism must be at least 1, not {self.parallelism}")
        if self.max_answer_bytes < 1:
            problems.append(f"the largest answer must be at least 1 byte, not "
                            f"{self.max_answer_bytes}")
        if problems:
            raise InputError(Problem(text) for text in problems)
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))

    @property
    def lost_send_watch(self) -> float:
        """Seconds to watch a transcript for a send whose answer was lost (the model may still
        be answering): `send_watch`, by default `send_timeout`."""
        return self.send_timeout if self.send_watch is None else self.send_watch

    @classmethod
    def from_environment(
        cls,
        env: Mapping[str, str],
        *,
        base_url: str | None = None,
        api_key_file: str | None = None,
        timeout: float | None = None,
        parallelism: int | None = None,
        insecure_http: bool = False,
        pace: PaceSettings | None = None,
        send_timeout: float | None = None,
    ) -> ClientSettings:
        """Settings from command-line values, falling back to the environment.

        The key comes from `api_key_file` (surrounding whitespace stripped), else
        `$CUSTOMGPT_API_KEY`; the base URL from `base_url`, else `$CUSTOMGPT_BASE_URL`, else
        the public API. Raises `InputError` for a missing key, an unreadable key file, a
        malformed URL, or http:// to a host that is not loopback without `insecure_http`.
        """
        key = _read_key(env, api_key_file)
        url = base_url or env.get(BASE_URL_VARIABLE, "").strip() or DEFAULT_BASE_URL
        return cls(
            api_key=key,
            base_url=url,
            timeout=30.0 if timeout is None else timeout,
            parallelism=8 if parallelism is None else parallelism,
            insecure_http=insecure_http,
            pace=pace or PaceSettings(),
            send_timeout=300.0 if send_timeout is None else send_timeout,
        )


MAX_TIMEOUT = 3600.0


def timeout_problems(timeout: float) -> list[str]:
    """What is wrong with a request timeout in seconds (empty when nothing is): it must be a
    finite number above 0 and at most an hour."""
    if not (isinstance(timeout, int | float) and math.isfinite(timeout)):
        return [f"the timeout must be a finite number of seconds, not {timeout!r}"]
    if not 0 < timeout <= MAX_TIMEOUT:
        return [f"the timeout must be positive and at most {MAX_TIMEOUT:g} seconds, "
                f"not {timeout:g}"]
    return []


def known_keys(env: Mapping[str, str], api_key_file: str | None) -> tuple[str, ...]:
    """The values the API key may have in this run: `$CUSTOMGPT_API_KEY` and the content of
    `api_key_file` (when it can be read). Never raises: a missing key is reported later, by
    whatever needs it."""
    keys = [env.get(API_KEY_VARIABLE, "").strip()]
    if api_key_file is not None:
        with contextlib.suppress(InputError):
            keys.append(read_key_file(api_key_file, option="--api-key-file"))
    return tuple(dict.fromkeys(key for key in keys if key))


def read_key_file(path: str, *, option: str) -> str:
    """The key in the file `path` given with `option` ("--api-key-file", "--plan-key-file"),
    without surrounding whitespace; read by `inputs.read_input` (a regular file of at most
    `KEY_FILE_LIMIT` bytes: a FIFO or a device is refused, never waited on or read whole).

    Raises InputError naming the option, never the path: the value of a key-file option is
    where a key is typed by mistake, so it is never repeated.
    """
    source = f"the file given with {option}"
    try:
        raw = read_input(path, limit=KEY_FILE_LIMIT)
    except UnreadableFile as error:
        raise InputError([Problem(f"cannot read {source}: {error.reason}")]) from None
    try:
        return raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise InputError([Problem(f"{source} is not UTF-8 text")]) from None


def _read_key(env: Mapping[str, str], api_key_file: str | None) -> Secret:
    """The API key from a file or the environment. Raises InputError (never showing it)."""
    if api_key_file is not None:
        value = read_key_file(api_key_file, option="--api-key-file")
        source = "the file given with --api-key-file"
    else:
        value = env.get(API_KEY_VARIABLE, "").strip()
        source = f"${API_KEY_VARIABLE}"
    if not value:
        raise InputError(
            [
                Problem(
                    f"no API key: {source} is empty; set {API_KEY_VARIABLE} or use --api-key-file"
                )
            ]
        )
    if not value.isascii() or not value.isprintable() or any(c.isspace() for c in value):
        raise InputError([Problem(f"{source} holds characters that an API key cannot contain")])
    return Secret(value)


def _url_problems(url: str, *, insecure_http: bool) -> list[str]:
    """What is wrong with a base URL (empty when nothing is). The messages never repeat the URL
    or a part of it: a mistyped URL can hold the key."""
    what = "the base URL (--base-url or $CUSTOMGPT_BASE_URL)"
    if "@" in url:
        return [f"{what} must not contain '@' (credentials in a URL are refused); "
                f"give the key with {API_KEY_VARIABLE} or --api-key-file"]
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises ValueError for a port that is not a number in range
    except ValueError:
        return [f"{what} is not a valid URL (its host or port cannot be read)"]
    if parts.scheme not in ("http", "https") or not host:
        return [f"{what} must look like https://host[:port]"]
    if parts.query or parts.fragment:
        return [f"{what} must not have a query or fragment"]
    if not url.isprintable() or any(c.isspace() for c in url):
        return [f"{what} holds spaces or control characters"]
    if parts.scheme == "http" and not insecure_http and not is_loopback(host):
        return [
            f"refusing plain http:// in {what}: its host is not a loopback host, and the API "
            "key would travel unencrypted; use https:// or pass --insecure-http"
        ]
    return []


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
