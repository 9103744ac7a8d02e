"""Where commands write: results on stdout, messages for people on stderr.

Commands receive a `Console` instead of touching sys.stdout, os.environ or stdin, so that tests
can run them in-process with their own streams and environment. Everything written goes through
`Console.clean`: the API key's known values are masked and control characters escaped, so that
no name or message from the API, a file or a server can hide text or drive the terminal.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TextIO

from reconciler.keys import MIN_MASKED_LENGTH
from reconciler.text import terminal_safe


@dataclass
class Console:
    """Streams, environment and verbosity of one command run."""

    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    quiet: bool = False
    verbose: int = 0
    no_color: bool = False
    secrets: tuple[str, ...] = ()  # the API key's known values, never to be written

    def clean(self, text: str) -> str:
        """`text` safe to write: every known secret masked, control characters escaped."""
        return terminal_safe(self._masked(text))

    def _masked(self, text: str) -> str:
        for secret in self.secrets:
            if len(secret) >= MIN_MASKED_LENGTH:
                text = text.replace(secret, "********")
        return text

    def result(self, text: str, *, painted: bool = False) -> None:
        """Write a command's result (what a pipeline reads) to stdout. `painted`: the text
        holds colours and was made terminal-safe by its renderer; only secrets are masked."""
        text = self.clean(text) if not painted else self._masked(text)
        self.out.write(text if text.endswith("\n") else text + "\n")
        self.out.flush()

    def info(self, text: str) -> None:
        """Write a message for people to stderr, unless -q."""
        if not self.quiet:
            self.err.write(self.clean(text) + "\n")
            self.err.flush()

    def warning(self, text: str) -> None:
        """Write a warning to stderr, -q or not: what is valid but may surprise."""
        self.error(text)

    def error(self, text: str) -> None:
        """Write an error to stderr, always."""
        self.err.write(self.clean(text) + "\n")
        self.err.flush()

    @property
    def color(self) -> bool:
        """Colour stdout only on a terminal, and never with NO_COLOR or --no-color."""
        return not self.no_color and "NO_COLOR" not in self.env and _isatty(self.out)

    @property
    def interactive(self) -> bool:
        """True when a person can answer a question on stdin."""
        return _isatty(self.stdin)

    @property
    def progress(self) -> bool:
        """Progress bars only on a terminal stderr, and not with -q."""
        return not self.quiet and _isatty(self.err)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
