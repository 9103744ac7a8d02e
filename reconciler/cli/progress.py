"""Progress bars on stderr while listing and applying (the one module that imports tqdm).

Shown only when stderr is a terminal and -q is off; otherwise every call here does nothing,
so CI logs stay clean.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TextIO

from tqdm import tqdm


class Progress:
    """A bar counting `unit`s towards `total` (None: a running count), or nothing."""

    def __init__(
        self, *, enabled: bool, stream: TextIO, description: str, unit: str,
        total: int | None = None,
    ) -> None:
        self._bar: tqdm[Any] | None = None
        self._stream = stream
        if enabled:
            self._bar = tqdm(total=total, desc=description, unit=f" {unit}", file=stream,
                             leave=False, dynamic_ncols=True)

    def advance(self, count: int = 1) -> None:
        """Count `count` more units done."""
        if self._bar is not None:
            self._bar.update(count)

    def show(self, done: int) -> None:
        """Set the count to `done`."""
        if self._bar is not None and done != self._bar.n:
            self._bar.update(done - self._bar.n)

    def note(self, text: str) -> None:
        """Show `text` after the bar (e.g. the time left at the run's pace)."""
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=True)

    def write(self, line: str) -> None:
        """Print a line above the bar (or plainly when there is no bar)."""
        if self._bar is not None:
            self._bar.write(line, file=self._stream)
        else:
            self._stream.write(line + "\n")
            self._stream.flush()

    def close(self) -> None:
        """Remove the bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


@asynccontextmanager
async def counting(
    *, enabled: bool, stream: TextIO, description: str, count: Callable[[], int],
    note: Callable[[], str] | None = None,
) -> AsyncIterator[None]:
    """While the block runs, show `count()` (e.g. requests made) as a running counter, and
    `note()` after it."""
    progress = Progress(enabled=enabled, stream=stream, description=description,
                        unit="requests")
    if not enabled:
        yield
        return

    async def refresh() -> None:
        while True:
            progress.show(count())
            if note is not None:
                progress.note(note())
            await asyncio.sleep(0.1)

    task = asyncio.create_task(refresh())
    try:
        yield
    finally:
        task.cancel()
        progress.close()
