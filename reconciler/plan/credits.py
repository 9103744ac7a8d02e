"""The one read of the account's query credits, for every path that sends: `plan`, `apply -f`,
`apply --plan` and `restore` hand what it reads to the guards (`reconciler.plan.guards`)."""

from __future__ import annotations

import logging

from reconciler.api.protocol import ConversationApi
from reconciler.errors import ApiError, AuthError

log = logging.getLogger("reconciler.plan")


async def credits_left(client: ConversationApi, *, prompts: int) -> int | None:
    """The query credits the account has left, read (one request) only when `prompts` are to
    be sent. None when nothing is sent, when the API reports no limit or no credits (404), or
    when they cannot be read now: then a warning says the credit check is skipped, and the run
    goes on (what it sends is still bounded by `--max-sends`). Raises AuthError when the key is
    rejected."""
    if prompts <= 0:
        return None
    try:
        credits = await client.query_credits()
    except AuthError:
        raise
    except ApiError as error:
        log.warning("warning: could not read the account's query credits (%s): the credit "
                    "check is skipped, so the prompts to send are not checked against the "
                    "credits left (--max-sends still bounds them)", error)
        return None
    return None if credits is None else credits.left
