"""The account's team: the users the emulator's keys belong to, and what each may change.

The API key (`api_key`) belongs to the account's owner, user 1. A second key (`member_key`)
may belong to a team member, user 2, whose role is `member`: members manage their own
conversations and read everyone's, but renaming, deleting or sending to a conversation another
user (or an anonymous visitor) started is refused with 403, as the vendor's basic roles say.
The owner may change every conversation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler.emulator.store import ME, TEAMMATE
from reconciler.emulator.wire import ApiProblem

FORBIDDEN = "This action is unauthorized."


@dataclass(frozen=True)
class User:
    """A user of the account: its id (as conversations' `created_by` hold it), profile, role."""

    id: str
    name: str
    email: str
    role: str  # owner | member

    def may_change(self, conversation: dict[str, Any]) -> bool:
        """Whether this user may rename, delete or send to `conversation` (a stored row)."""
        return self.role == "owner" or conversation["created_by"] == self.id


OWNER = User(id=ME, name="Emulator User", email="user@emulator.invalid", role="owner")
MEMBER = User(id=TEAMMATE, name="Team Member", email="member@emulator.invalid", role="member")
USERS = {user.id: user for user in (OWNER, MEMBER)}


def require_change(user_id: str, conversation: dict[str, Any]) -> None:
    """Raise ApiProblem(403) unless the user may change `conversation`."""
    if not USERS[user_id].may_change(conversation):
        raise ApiProblem(403, FORBIDDEN)
