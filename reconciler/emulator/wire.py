"""The API's wire shapes: envelopes, error bodies, Laravel pagination and object formats."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlencode

from reconciler.emulator.store import ME, Listing
from reconciler.emulator.variants import Variants
from reconciler.jsonio import JsonError
from reconciler.jsonio import parse as parse_json

SPEC = Variants()
OBSERVED_MESSAGE_PAGE = 20  # per_page of message listings in the real service's answers


class ApiProblem(Exception):
    """A request the API refuses: becomes the error envelope with `status` and `message`."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.message = message
        self.headers = headers or {}
        super().__init__(message)


@dataclass(frozen=True)
class Request:
    """One parsed HTTP request."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    base_url: str  # scheme://host:port as the client addressed us
    raw_path: str = ""  # the path as sent, still percent-encoded
    user: str = ME  # the user the request's key belongs to (set once it is authenticated)

    @property
    def url(self) -> str:
        """The full request URL, as shown in error bodies."""
        path = self.raw_path or self.path
        return self.base_url + path + (_query_string(self.query) if self.query else "")

    def json(self) -> Any:
        """The body as JSON; raises ApiProblem(400) if it is not valid JSON (or is nested
        absurdly deep, or holds a number out of range)."""
        if not self.body.strip():
            return {}
        try:
            return parse_json(self.body)
        except JsonError:
            raise ApiProblem(400, "The request body is not valid JSON") from None


def _query_string(query: dict[str, str]) -> str:
    return "?" + urlencode(query)


def parse_query(raw: str) -> dict[str, str]:
    """Query parameters, last value wins."""
    return {key: values[-1] for key, values in parse_qs(raw, keep_blank_values=True).items()}


@dataclass
class Response:
    """An HTTP response to write."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def success(data: Any, *, status: int = 200) -> Response:
    """`{"status": "success", "data": ...}`."""
    return Response(status, _dump({"status": "success", "data": data}))


def error(request_url: str, status: int, message: str,
          headers: dict[str, str] | None = None) -> Response:
    """`{"status": "error", "url": ..., "data": {"code": ..., "message": ...}}`."""
    body = {"status": "error", "url": request_url, "data": {"code": status, "message": message}}
    return Response(status, _dump(body), headers=dict(headers or {}))


def _dump(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


MAX_ID = 2**63 - 1
MAX_PAGE = 10**9


def bounded_number(text: str, maximum: int) -> int | None:
    """`text` as a whole number from 0 to `maximum`, or None when it is not one (never
    converts more digits than `maximum` has, so 5,000 digits cost nothing)."""
    digits = text.lstrip("0") or "0"
    if not (text.isascii() and text.isdigit()) or len(digits) > len(str(maximum)):
        return None
    value = int(digits)
    return value if value <= maximum else None


def page_number(query: dict[str, str]) -> int:
    """The `page` parameter (default 1); raises ApiProblem(400) if it is not a positive integer."""
    raw = query.get("page", "1").strip() or "1"
    value = bounded_number(raw, MAX_PAGE)
    if value is None or value < 1:
        raise ApiProblem(400, "The page must be a positive integer")
    return value


def choice(query: dict[str, str], key: str, allowed: tuple[str, ...], default: str) -> str:
    """A query parameter restricted to `allowed`; raises ApiProblem(400) otherwise."""
    value = query.get(key, default) or default
    if value not in allowed:
        raise ApiProblem(400, f"The {key} must be one of: {', '.join(allowed)}")
    return value


def paginated(listing: Listing, *, page: int, per_page: int, path_url: str) -> dict[str, Any]:
    """The Laravel pagination object for one page of a listing."""
    last_page = max(1, math.ceil(listing.total / per_page))
    count = len(listing.rows)
    first = (page - 1) * per_page + 1

    def url(number: int) -> str:
        return f"{path_url}?page={number}"

    return {
        "current_page": page,
        "data": listing.rows,
        "first_page_url": url(1),
        "from": first if count else None,
        "last_page": last_page,
        "last_page_url": url(last_page),
        "next_page_url": url(page + 1) if page < last_page else None,
        "path": path_url,
        "per_page": per_page,
        "prev_page_url": url(page - 1) if page > 1 else None,
        "to": first + count - 1 if count else None,
        "total": listing.total,
    }


def conversation(row: dict[str, Any], variants: Variants = SPEC) -> dict[str, Any]:
    """A conversation row in the API's shape: the documented one (`project_id` and `created_by`
    as strings, "YYYY-MM-DD HH:MM:SS" times) or, with `wire: observed-2023`, the real service's
    (integer ids, ISO times with microseconds and `Z`, no `deleted_at`)."""
    if variants.observed:
        creator = row["created_by"]
        return {
            "id": row["id"],
            "created_at": iso_time(row["created_at"]),
            "updated_at": iso_time(row["updated_at"]),
            "session_id": row["session_id"],
            "project_id": int(row["project_id"]),
            "created_by": None if creator is None else int(creator),
            "name": row["name"],
        }
    return {
        "id": row["id"],
        "session_id": row["session_id"],
        "name": row["name"],
        "project_id": str(row["project_id"]),
        "created_by": row["created_by"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "deleted_at": None,
    }


def message(stored: dict[str, Any], variants: Variants = SPEC, *,
            listed: bool = False, canned: bool = True) -> dict[str, Any]:
    """A stored message in the API's shape, its `response_feedback` included (null when no
    reaction was given). With `wire: observed-2026`, integer citations. With `wire:
    observed-2023`: no `conversation_id`, `metadata` or `response_feedback`, citations as
    strings ("12061.0"), ISO times, and in a listing (`listed`) the "25 Jun 2023 05:01:11"
    form the real service once sent. The citations are the stored ones (the documents an
    answer from content used); with `canned` answers, the variants of the real service show
    made-up ids, as the real service's answers carried some."""
    cited: list[int] = stored["citations"]
    if variants.named_events:
        return {**stored, "citations": integer_citations(stored["id"]) if canned else cited}
    if not variants.observed:
        return stored
    stamp = listing_time if listed else iso_time
    return {
        "id": stored["id"],
        "created_at": stamp(stored["created_at"]),
        "updated_at": stamp(stored["updated_at"]),
        "user_id": stored["user_id"],
        "user_query": stored["user_query"],
        "openai_response": stored["openai_response"],
        "citations": observed_citations(stored["id"]) if canned else [
            f"{citation}.0" for citation in cited],
    }


def observed_citations(message_id: int) -> list[str]:
    """Canned citations as the real service wrote them: numbers in strings ("12061.0")."""
    return [f"{12000 + message_id % 1000}.0", f"{11000 + message_id % 1000}.0"]


def integer_citations(message_id: int) -> list[int]:
    """The same canned citations as integer ids, as the clients of 2025-2026 read them."""
    return [12000 + message_id % 1000, 11000 + message_id % 1000]


def iso_time(stamp: str) -> str:
    """A stored time as the real service wrote it: "2023-06-25T17:00:31.000000Z"."""
    return stamp.replace(" ", "T") + ".000000Z"


def listing_time(stamp: str) -> str:
    """A stored time as one real message listing wrote it: "25 Jun 2023 05:01:11" (a
    12-hour clock without AM or PM)."""
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").strftime("%d %b %Y %I:%M:%S")


def project(row: dict[str, Any], variants: Variants = SPEC) -> dict[str, Any]:
    """A project row in the API's shape (ISO times with `wire: observed-2023`)."""
    stamp = iso_time if variants.observed else str
    return {
        "id": row["id"],
        "project_name": row["name"],
        "sitemap_path": None,
        "is_chat_active": True,
        "user_id": int(ME),
        "created_at": stamp(row["created_at"]),
        "updated_at": stamp(row["updated_at"]),
        "deleted_at": None,
        "type": "SITEMAP",
        "is_shared": False,
        "shareable_slug": None,
        "shareable_link": None,
        "embed_code": None,
        "live_chat_code": None,
    }


def user(variants: Variants = SPEC, *, user_id: str = ME, name: str = "Emulator User",
         email: str = "user@emulator.invalid") -> dict[str, Any]:
    """A user of the account (by default the API key's, the owner)."""
    stamp = iso_time if variants.observed else str
    initials = "+".join(word[0] for word in name.split())
    return {
        "id": int(user_id),
        "name": name,
        "email": email,
        "profile_photo_url": f"https://ui-avatars.com/api/?name={initials}",
        "created_at": stamp("2024-01-01 00:00:00"),
        "updated_at": stamp("2024-01-01 00:00:00"),
    }


def canned_answer(prompt: str) -> str:
    """The deterministic answer the emulator gives to a prompt (no model is called)."""
    words = len(prompt.split())
    return f'Emulated answer to "{prompt}" ({words} words).'
