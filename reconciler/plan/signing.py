"""Keyed signatures of saved plans: HMAC-SHA256 with a key that never shows.

The checksum of a plan (`Plan.checksum`) is an unkeyed hash: it catches accidental edits,
corruption and a plan read from the wrong file, but anyone who edits a plan can compute it
again. A signature made with a secret key cannot be recomputed without the key: with a plan key
(`$RECONCILER_PLAN_KEY` or `--plan-key-file`), `plan --out` signs the plan and `apply --plan`
applies only a plan signed with that key. The key is held in a `Secret`; it is never written,
printed or logged, and error messages name only where it came from.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from reconciler.api.settings import Secret, read_key_file
from reconciler.errors import InputError, Problem
from reconciler.jsonio import canonical

PLAN_KEY_VARIABLE = "RECONCILER_PLAN_KEY"
SIGNATURE_PREFIX = "hmac-sha256:"
MIN_KEY_LENGTH = 16
UNSIGNED_FIELDS = ("checksum", "signature")


def read_plan_key(env: Mapping[str, str], key_file: str | None) -> Secret | None:
    """The plan key from `key_file`, else `$RECONCILER_PLAN_KEY`; None when neither is given.

    Raises InputError (never showing the key, nor the value given with `--plan-key-file`: a
    key typed there instead of a file name) when it cannot be read, is empty or is shorter
    than `MIN_KEY_LENGTH` characters.
    """
    if key_file is not None:
        source = "the file given with --plan-key-file"
        value = read_key_file(key_file, option="--plan-key-file")
    elif PLAN_KEY_VARIABLE in env:
        source = f"${PLAN_KEY_VARIABLE}"
        value = env[PLAN_KEY_VARIABLE].strip()
    else:
        return None
    if len(value) < MIN_KEY_LENGTH:
        raise InputError([Problem(
            f"{source}: a plan key must be at least {MIN_KEY_LENGTH} characters "
            "(a long random string, e.g. from `openssl rand -hex 32`)")])
    return Secret(value)


def known_plan_keys(env: Mapping[str, str], key_file: str | None) -> tuple[str, ...]:
    """The values the plan key may have in this run, for the console to mask and the loader
    to refuse in desired state, as the API key's. Never raises (`read_plan_key` reports)."""
    keys = [env.get(PLAN_KEY_VARIABLE, "").strip()]
    if key_file is not None:
        with contextlib.suppress(InputError):
            keys.append(read_key_file(key_file, option="--plan-key-file"))
    return tuple(key for key in keys if key)


def sign(document: Mapping[str, Any], key: Secret) -> str:
    """The signature of a plan document (every field but the checksum and the signature)."""
    body = {k: v for k, v in document.items() if k not in UNSIGNED_FIELDS}
    digest = hmac.new(key.reveal().encode("utf-8"), canonical(body), hashlib.sha256)
    return SIGNATURE_PREFIX + digest.hexdigest()


def check_signature(document: Mapping[str, Any], key: Secret | None, *, source: str) -> None:
    """Refuse a plan document whose signature does not fit `key`: a key and no signature, a
    signature and no key, or a signature made otherwise. Raises InputError."""
    signature = document.get("signature")
    if key is None and signature is None:
        return
    if key is None:
        problem = (f"{source} is signed, but no plan key was given (set {PLAN_KEY_VARIABLE} or "
                   "--plan-key-file): its signature cannot be checked; nothing was applied")
    elif signature is None:
        problem = (f"{source} is not signed, but a plan key was given: only plans signed with "
                   "that key are applied; make the plan with the same key (`reconciler plan "
                   "--out`); nothing was applied")
    elif not isinstance(signature, str) or not hmac.compare_digest(
            signature.encode("utf-8"), sign(document, key).encode("utf-8")):
        problem = (f"{source}: the signature does not match the plan key: the plan was changed "
                   "after it was signed, or signed with another key; nothing was applied")
    else:
        return
    raise InputError([Problem(problem)])
