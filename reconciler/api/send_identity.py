"""A send's identity: its external id, whether a message is that send, the prompts already sent.

The one place that decides "is this message that send?", for the client (finding its own send
after an ambiguous failure), the send and react kinds (a plan's precondition, the message to
react to), planning (which declared prompts a transcript holds, `answers` too) and restore (the
prompts a conversation it left already holds).

A send of reconciler carries an `external_id` derived from what it is (`send_external_id`:
project, conversation, position of the message, prompt as sent), followed, when the
conversation declares values for its sends, by a short digest of each (`external_id_carrying`).
Where the service echoes external ids, a message is that send when it carries its identity,
whatever the service did to the prompt (trimmed, HTML-escaped); where it does not, when its
prompt is the send's in normal form (see `reconciler.text`), as stored or with the service's
HTML escapes undone (`same_prompt`). Pure.
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from reconciler.api.live import Message
from reconciler.desired.model import SEND_VALUES
from reconciler.text import normal_form

_PREFIX = "reconciler-"
_IDENTITY_LENGTH = len(_PREFIX) + 36
_DIGEST_LENGTH = 6
_UNSET = "x" * _DIGEST_LENGTH


def send_external_id(project_id: int, session_id: str, position: int, prompt: str) -> str:
    """The identity of a send, its `external_id`: derived from what it is (project,
    conversation, position of the message, prompt as sent), so that every attempt of one send
    carries the same id, a check after an ambiguous failure can find it, and a plan can tell
    the message it made whatever the service did to the prompt. 47 characters (the API allows
    128)."""
    digest = hashlib.sha256(
        f"{project_id}\n{session_id}\n{position}\n{prompt}".encode()).hexdigest()
    return f"{_PREFIX}{digest[:36]}"


def value_digest(value: str) -> str:
    """What an external id records of a declared send value: 6 hex digits of its sha256."""
    return hashlib.sha256(value.encode()).hexdigest()[:_DIGEST_LENGTH]


def external_id_carrying(identity: str, values: Mapping[str, str]) -> str:
    """The `external_id` of a send with identity `identity` (`send_external_id`) carrying
    `values` (by `SEND_VALUES` field): the identity alone when there are none, else followed by
    "-" and each field's digest in `SEND_VALUES` order ("xxxxxx": not set). 78 characters."""
    if not values:
        return identity
    return identity + "-" + "".join(
        value_digest(values[key]) if key in values else _UNSET for key in SEND_VALUES)


def sent_identity(external_id: str | None) -> str | None:
    """The identity (`send_external_id`) in an external id a send of reconciler carried; the
    external id itself when it is not one of those."""
    if external_id is not None and external_id.startswith(_PREFIX) and \
            len(external_id) == _IDENTITY_LENGTH + 1 + _DIGEST_LENGTH * len(SEND_VALUES):
        return external_id[:_IDENTITY_LENGTH]
    return external_id


def carried_values(external_id: str | None) -> dict[str, str] | None:
    """What a message sent by reconciler says it carried: each `SEND_VALUES` field's digest
    (`value_digest`, "" when not set). None when its external id does not say (not
    reconciler's, or sent without declared values)."""
    if external_id is None or sent_identity(external_id) == external_id:
        return None
    tail = external_id[_IDENTITY_LENGTH + 1:]
    digests = [tail[i:i + _DIGEST_LENGTH] for i in range(0, len(tail), _DIGEST_LENGTH)]
    return {key: "" if digest == _UNSET else digest
            for key, digest in zip(SEND_VALUES, digests, strict=True)}


def carries(message: Message, identity: str) -> bool:
    """Whether `message` carries the send identity `identity` (with or without values)."""
    return sent_identity(message.external_id) == identity


def same_prompt(stored: str, prompt: str) -> bool:
    """Whether a prompt the service stored is `prompt`: the same in normal form, as stored or
    with HTML escapes undone (a service may store `Q&amp;A` for `Q&A`)."""
    wanted = normal_form(prompt)
    return normal_form(stored) == wanted or _unescaped(stored) == wanted


def _unescaped(stored: str) -> str | None:
    """A stored prompt in normal form with its HTML escapes undone; None when it holds none."""
    if "&" not in stored or (plain := html.unescape(stored)) == stored:
        return None
    return normal_form(plain)


def is_send(message: Message, identity: str, prompt: str) -> bool:
    """Whether `message` is (a copy of) the send of `prompt` whose identity is `identity`: it
    carries that identity, or its prompt is `prompt` (`same_prompt`)."""
    return carries(message, identity) or same_prompt(message.user_query, prompt)


def own_send(
    messages: Sequence[Message], prompt: str, external_id: str | None, *, after: int
) -> Message | None:
    """The message a send made, looked for after an ambiguous failure: the one carrying its
    `external_id` when the server echoes external ids, else the first with the same prompt (in
    normal form) newer than `after` (the newest message id before the send)."""
    if external_id is not None:
        for message in messages:
            if message.external_id == external_id:
                return message
    new = [m for m in messages if m.id > after and same_prompt(m.user_query, prompt)]
    return new[0] if new else None


def sent_copy(
    messages: Sequence[Message], identity: str, prompt: str, *, occurrence: int
) -> Message | None:
    """The message a send of `prompt` (identity `identity`) made: the one carrying the
    identity, else (a service that does not echo external ids) copy `occurrence` (from 1) of
    the prompt in normal form; None when there is none."""
    for message in messages:
        if carries(message, identity):
            return message
    copies = [m for m in messages if same_prompt(m.user_query, prompt)]
    return copies[occurrence - 1] if len(copies) >= occurrence else None


def as_declared(
    project_id: int, session_id: str, prompts: Iterable[str], messages: tuple[Message, ...]
) -> tuple[Message, ...]:
    """`messages` of conversation `session_id`, in order, each one that carries the identity
    of a send of `prompts` (declared messages 1, 2, ... of that conversation), or whose prompt
    is one of them only once its HTML escapes are undone (`same_prompt`), standing as that
    declared prompt (its `user_query`), whatever the service stored for it: the prompts
    already sent, as a plan counts them."""
    declared = list(prompts)
    ours = {send_external_id(project_id, session_id, position, prompt): prompt
            for position, prompt in enumerate(declared, start=1)}
    if not ours:
        return messages
    unescaped = {normal_form(prompt): prompt for prompt in declared}

    def standing(message: Message) -> str | None:
        prompt = ours.get(sent_identity(message.external_id) or "")
        if prompt is None and (plain := _unescaped(message.user_query)) is not None:
            prompt = unescaped.get(plain)
        return prompt

    return tuple(
        message if (prompt := standing(message)) is None
        else replace(message, user_query=prompt) for message in messages)
