"""The CustomGPT.ai API endpoints the emulator serves: projects, conversations, messages, user.

Each endpoint is a function `(api, request, params) -> Response`; `ROUTES` maps method and path
to them. Authentication and faults are applied by `reconciler.emulator.app` before these run.
"""

from __future__ import annotations

import html
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reconciler.emulator import wire
from reconciler.emulator.multipart import form_fields
from reconciler.emulator.store import ME, ConversationQuery, Store
from reconciler.emulator.variants import Variants
from reconciler.emulator.wire import ApiProblem, Request, Response

MAX_NAME = 255
MAX_EXTERNAL_ID = 128


CREDITS_EXHAUSTED = ("You have exhausted your current query credits. Please upgrade your plan "
                     "or wait for your credits to renew.")


@dataclass
class Api:
    """What the endpoints need: the store, the page size, the query credits left, and the
    variants of the real service to behave as.

    `query_credits` None means unlimited; otherwise each sent message spends one, and a send
    with none left is answered 429 as the API does. `queries_used` counts the messages sent.
    """

    store: Store
    page_size: int = 10
    query_credits: int | None = None
    queries_used: int = 0
    variants: Variants = field(default_factory=Variants)
    _credits_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def spend_credit(self) -> None:
        """Spend one query credit; raises ApiProblem(429) when none is left."""
        with self._credits_lock:
            if self.query_credits is not None:
                if self.query_credits <= 0:
                    raise ApiProblem(429, CREDITS_EXHAUSTED)
                self.query_credits -= 1
            self.queries_used += 1

    def usage(self) -> dict[str, int | None]:
        """The account's query credits as `GET /api/v1/limits/usage` reports them
        (`max_queries` null: unlimited)."""
        with self._credits_lock:
            limit = None if self.query_credits is None else self.query_credits + self.queries_used
            return {"max_queries": limit, "current_queries": self.queries_used}


Endpoint = Callable[[Api, Request, dict[str, str]], Response]


def _project_id(params: dict[str, str]) -> int | None:
    """The project id of the path, None for a number no project can have (over 2^63-1; 5,000
    digits are not even converted). Raises ApiProblem(400) when it is not a number."""
    raw = params["project"]
    if not (raw.isascii() and raw.isdigit()):
        raise ApiProblem(400, "Project id must be integer")
    return wire.bounded_number(raw, wire.MAX_ID)


def _existing_project(api: Api, params: dict[str, str]) -> dict[str, Any]:
    project_id = _project_id(params)
    project = api.store.get_project(project_id) if project_id is not None else None
    if project is None:
        raise ApiProblem(404, f"Project with id {params['project'][:40]} not found")
    return project


def _existing_conversation(api: Api, params: dict[str, str]) -> dict[str, Any]:
    project = _existing_project(api, params)
    found = api.store.get_conversation(project["id"], params["session"])
    if found is None:
        raise ApiProblem(404, f"Conversation with session id {params['session']} not found")
    return found


def _text_field(api: Api, body: Any, key: str, *, limit: int | None = None) -> str:
    """A required non-empty string of the body, as the service stores it (`trim_text`)."""
    if not isinstance(body, dict):
        raise ApiProblem(400, "The request body must be a JSON object")
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ApiProblem(400, f"The {key} field is required and must be a non-empty string")
    if limit is not None and len(value) > limit:
        raise ApiProblem(400, f"The {key} may not be greater than {limit} characters")
    return value.strip() if api.variants.trim_text else value


def _optional_text(body: dict[str, Any], key: str) -> None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise ApiProblem(400, f"The {key} must be a string")


def list_conversations(api: Api, request: Request, params: dict[str, str]) -> Response:
    """GET /api/v1/projects/{projectId}/conversations."""
    project = _existing_project(api, params)
    page = wire.page_number(request.query)
    query = ConversationQuery(
        project_id=project["id"],
        order=wire.choice(request.query, "order", ("asc", "desc"), "desc"),
        order_by=wire.choice(request.query, "orderBy", ("id", "created_at"), "id"),
        user_filter=_user_filter(api, request),
        name=request.query.get("name") or None,
        name_match=api.variants.name_filter,
    )
    listing = api.store.list_conversations(query, limit=api.page_size,
                                           offset=(page - 1) * api.page_size)
    listing.rows[:] = [wire.conversation(row, api.variants) for row in listing.rows]
    return wire.success(wire.paginated(listing, page=page, per_page=api.page_size,
                                       path_url=request.base_url + request.path))


def _user_filter(api: Api, request: Request) -> str:
    chosen = wire.choice(request.query, "userFilter", ("all", "anonymous", "team_member"), "all")
    if chosen == "team_member" and api.variants.team_filter_excludes_owner:
        return "team_member_but_owner"
    return chosen


def create_conversation(api: Api, request: Request, params: dict[str, str]) -> Response:
    """POST /api/v1/projects/{projectId}/conversations (the real service's answers of 2023
    also nest the project)."""
    project = _existing_project(api, params)
    name = _text_field(api, request.json(), "name", limit=MAX_NAME)
    row = api.store.create_conversation(project["id"], name, created_by=ME)
    created = wire.conversation(row, api.variants)
    if api.variants.observed:
        created["project"] = wire.project(project, api.variants)
    return wire.success(created, status=201)


def update_conversation(api: Api, request: Request, params: dict[str, str]) -> Response:
    """PUT /api/v1/projects/{projectId}/conversations/{sessionId}."""
    found = _existing_conversation(api, params)
    name = _text_field(api, request.json(), "name", limit=MAX_NAME)
    row = api.store.rename_conversation(int(found["project_id"]), found["session_id"], name)
    if row is None:  # deleted concurrently
        raise ApiProblem(404, f"Conversation with session id {params['session']} not found")
    return wire.success(wire.conversation(row, api.variants))


def delete_conversation(api: Api, request: Request, params: dict[str, str]) -> Response:
    """DELETE /api/v1/projects/{projectId}/conversations/{sessionId} (messages included)."""
    found = _existing_conversation(api, params)
    if not api.store.delete_conversation(int(found["project_id"]), found["session_id"]):
        raise ApiProblem(404, f"Conversation with session id {params['session']} not found")
    return wire.success({"deleted": True})


def list_messages(api: Api, request: Request, params: dict[str, str]) -> Response:
    """GET .../conversations/{sessionId}/messages: data.conversation and data.messages."""
    found = _existing_conversation(api, params)
    page = wire.page_number(request.query)
    order = wire.choice(request.query, "order", ("asc", "desc"), "desc")
    per_page = wire.OBSERVED_MESSAGE_PAGE if api.variants.observed else api.page_size
    listing = api.store.list_messages(found["id"], order=order, limit=per_page,
                                      offset=(page - 1) * per_page)
    listing.rows[:] = [wire.message(row, api.variants, listed=True) for row in listing.rows]
    messages = wire.paginated(listing, page=page, per_page=per_page,
                              path_url=request.base_url + request.path)
    return wire.success({"conversation": wire.conversation(found, api.variants),
                         "messages": messages})


def send_message(api: Api, request: Request, params: dict[str, str]) -> Response:
    """POST .../conversations/{sessionId}/messages (stream=0 JSON, stream=1 event stream;
    `stream` in the query or in the JSON body)."""
    found = _existing_conversation(api, params)
    body = request.json()
    prompt = _text_field(api, body, "prompt")
    if api.variants.escape_prompts:
        prompt = html.escape(prompt, quote=False)
    for key in ("custom_persona", "chatbot_model", "response_source"):
        _optional_text(body, key)
    stream = _flag(request.query.get("stream", "0")) or _body_flag(body.get("stream"))
    external_id = request.query.get("external_id")
    if external_id is not None and len(external_id) > MAX_EXTERNAL_ID:
        raise ApiProblem(400, f"The external_id may not be greater than {MAX_EXTERNAL_ID} "
                              "characters")
    api.spend_credit()
    message = _cached_answer(api, request, int(found["project_id"]), prompt)
    if message is None:
        metadata = {"user_ip": "127.0.0.1", "user_agent": request.headers.get("user-agent", ""),
                    "external_id": external_id, "request_source": "api"}
        message = _answer(api, found["id"], prompt, metadata)
    if stream:
        return _event_stream(api.variants, message, found["session_id"])
    return wire.success(wire.message(message, api.variants))


def _cached_answer(
    api: Api, request: Request, project_id: int, prompt: str
) -> dict[str, Any] | None:
    """With `cache_repeated_prompts`, the project's earlier message with this prompt, unless the
    request says `Cache-Control: no-cache`."""
    if not api.variants.cache_repeated_prompts:
        return None
    if "no-cache" in request.headers.get("cache-control", "").lower():
        return None
    return api.store.find_prompt(project_id, prompt)


def _answer(
    api: Api, conversation_id: int, prompt: str, metadata: dict[str, Any]
) -> dict[str, Any]:
    """Store the exchange; a slow model (`send_delay_ms`) stores it at the start or at the end
    of the time it takes to answer."""
    delay = api.variants.send_delay_ms / 1000.0
    late = api.variants.send_commits == "end"
    if delay and late:
        time.sleep(delay)
    message = api.store.add_message(conversation_id, user_id=int(ME), prompt=prompt,
                                    answer=wire.canned_answer(prompt), metadata=metadata)
    if delay and not late:
        time.sleep(delay)
    return message


def _flag(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true"):
        return True
    if value in ("0", "false", ""):
        return False
    raise ApiProblem(400, "The stream must be 0 or 1")


def _body_flag(value: Any) -> bool:
    """`stream` given in the JSON body: a boolean, 0 or 1, or their text."""
    if value is None or value is False or value == 0:
        return False
    if value is True or value == 1:
        return True
    if isinstance(value, str):
        return _flag(value)
    raise ApiProblem(400, "The stream must be 0 or 1")


def _event_stream(variants: Variants, message: dict[str, Any], session_id: str) -> Response:
    """Data-only server-sent events: `progress` chunks of the answer, then `finish`. The real
    service (`wire: observed-2023`) starts with a `start` event carrying the prompt, and its
    `finish` event does not repeat the text."""
    answer: str = message["openai_response"]
    words = answer.split(" ")
    chunks = [word + (" " if index < len(words) - 1 else "") for index, word in enumerate(words)]
    events: list[dict[str, Any]] = [{"status": "progress", "message": chunk} for chunk in chunks]
    if variants.observed:
        events.insert(0, {"status": "start", "prompt": message["user_query"]})
        events.append({"status": "finish", "id": message["id"],
                       "created_at": wire.iso_time(message["created_at"]),
                       "session_id": session_id,
                       "citations": wire.observed_citations(message["id"])})
    else:
        events.append({"status": "finish", "message": "", "citations": message["citations"],
                       "id": message["id"], "prompt_id": message["id"]})
    text = "".join(f"data: {json.dumps(event, ensure_ascii=False)}\n\n" for event in events)
    return Response(200, text.encode("utf-8"), content_type="text/event-stream",
                    headers={"Cache-Control": "no-cache"})


def list_projects(api: Api, request: Request, params: dict[str, str]) -> Response:
    """GET /api/v1/projects (paginated)."""
    page = wire.page_number(request.query)
    order = wire.choice(request.query, "order", ("asc", "desc"), "desc")
    listing = api.store.list_projects(order=order, limit=api.page_size,
                                      offset=(page - 1) * api.page_size)
    listing.rows[:] = [wire.project(row, api.variants) for row in listing.rows]
    return wire.success(wire.paginated(listing, page=page, per_page=api.page_size,
                                       path_url=request.base_url + request.path))


def get_project(api: Api, request: Request, params: dict[str, str]) -> Response:
    """GET /api/v1/projects/{projectId}."""
    return wire.success(wire.project(_existing_project(api, params), api.variants))


def create_project(api: Api, request: Request, params: dict[str, str]) -> Response:
    """POST /api/v1/projects (multipart or form `project_name`)."""
    fields = form_fields(request.headers.get("content-type", ""), request.body)
    name = fields.get("project_name", "").strip()
    if not name:
        raise ApiProblem(400, "The project_name field is required")
    if len(name) > MAX_NAME:
        raise ApiProblem(400, f"The project_name may not be greater than {MAX_NAME} characters")
    return wire.success(wire.project(api.store.create_project(name), api.variants), status=201)


def get_user(api: Api, request: Request, params: dict[str, str]) -> Response:
    """GET /api/v1/user."""
    return wire.success(wire.user(api.variants))


def get_usage(api: Api, request: Request, params: dict[str, str]) -> Response:
    """GET /api/v1/limits/usage: the query credits of the account."""
    return wire.success(api.usage())


_PROJECT = r"/api/v1/projects/(?P<project>[^/]+)"
_SESSION = _PROJECT + r"/conversations/(?P<session>[^/]+)"

ROUTES: list[tuple[re.Pattern[str], dict[str, Endpoint]]] = [
    (re.compile(r"/api/v1/projects/?"), {"GET": list_projects, "POST": create_project}),
    (re.compile(_PROJECT + "/?"), {"GET": get_project}),
    (re.compile(_PROJECT + r"/conversations/?"),
     {"GET": list_conversations, "POST": create_conversation}),
    (re.compile(_SESSION + "/?"), {"PUT": update_conversation, "DELETE": delete_conversation}),
    (re.compile(_SESSION + r"/messages/?"), {"GET": list_messages, "POST": send_message}),
    (re.compile(r"/api/v1/user/?"), {"GET": get_user}),
    (re.compile(r"/api/v1/limits/usage/?"), {"GET": get_usage}),
]
WRITES = frozenset({"POST", "PUT", "DELETE", "PATCH"})


def route(method: str, path: str) -> tuple[Endpoint, dict[str, str]]:
    """The endpoint and path parameters for a request; raises ApiProblem 404/405."""
    for pattern, methods in ROUTES:
        match = pattern.fullmatch(path)
        if match is None:
            continue
        endpoint = methods.get(method)
        if endpoint is None:
            raise ApiProblem(405, f"The {method} method is not supported for this route",
                             headers={"Allow": ", ".join(sorted(methods))})
        return endpoint, match.groupdict()
    raise ApiProblem(404, "The requested resource was not found")
