"""The one exception hierarchy of reconciler.

Every error a user can cause (bad input, a refused API call, a stale plan) is a
`ReconcilerError`; the CLI prints its message and exits 1. Anything else is a bug and is shown
with its traceback.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Location:
    """A place in a desired-state file; line and column count from 1."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if self.line <= 0:
            return self.file
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, and where it is."""

    message: str
    location: Location | None = None

    def __str__(self) -> str:
        if self.location is None:
            return self.message
        return f"{self.location}: {self.message}"


class ReconcilerError(Exception):
    """Base class of every error reconciler reports to a user (exit 1, no traceback)."""


class InputError(ReconcilerError):
    """The desired state (files, flags, environment) is invalid; carries every problem found."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ApiError(ReconcilerError):
    """The CustomGPT.ai API refused or failed a call.

    `status` is the HTTP status (None when no response arrived). The message never contains
    the API token.
    """

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False) -> None:
        self.status = status
        self.retryable = retryable
        super().__init__(message)


class AuthError(ApiError):
    """401, or 403 on a read: the API key is missing, wrong or lacks access. Nothing else is
    attempted."""


class ForbiddenError(ApiError):
    """403 on a write: the key's role may not make this change (a team member's key may change
    only its own conversations). Only that operation fails; the others go on."""


class NotFoundError(ApiError):
    """404: a project or a conversation does not exist or is not visible to this key."""


class CreditsExhaustedError(ApiError):
    """429 on sending a message: the account has no query credits left."""


class ListingError(ApiError):
    """A listing could not be read completely and consistently; nothing is planned on it."""


class PlanRefusedError(ReconcilerError):
    """A plan with errors, or one the guards refuse, was given to apply; nothing was done."""


class StalePlanError(ReconcilerError):
    """A saved plan's preconditions no longer hold; nothing was applied."""


class RestoreRefused(ReconcilerError):
    """`restore` would send more prompts than `--max-sends` or the query credits left allow;
    nothing was restored."""


class RestoreConflict(ReconcilerError):
    """`restore` found the backup's name taken by another conversation; nothing was restored."""

    def __init__(self, project_id: int, name: str, sessions: list[str]) -> None:
        self.sessions = sessions
        super().__init__(
            f"the name {name!r} is taken in project {project_id} by session(s) "
            f"{', '.join(sessions)}, which a restore of this backup did not leave: nothing was "
            "restored. Rename or delete that conversation, then run restore again"
        )


def os_reason(error: OSError | ValueError) -> str:
    """Why a path could not be used, in lower case: "permission denied", "not a directory"
    (a ValueError is a path with a NUL byte)."""
    if isinstance(error, ValueError):
        return "not a valid path"
    return (error.strerror or type(error).__name__).lower()
