"""The CustomGPT.ai API endpoints the emulator serves: projects, conversations, messages, user.

Each endpoint is a function `(api, request, params) -> Response`; `reconciler.emulator.routes`
maps method and path to them. Authentication and faults are applied by
`reconciler.emulator.app` before these run; `request.user` is the user the key belongs to.
"""

from __future__ import annotations

import html
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reconciler.emulator import wire
from reconciler.emulator.content import NO_ANSWER_MESSAGE, Content, Reply
from reconciler.emulator.multipart import form_fields
from reconciler.emulator.retention import forget_expired
from reconciler.emulator.sends import body_of, send_options
from reconciler.emulator.store import ConversationQuery, Store
from reconciler.emulator.team import USERS, require_change
from reconciler.emulator.variants import MAX_PER_PAGE, Variants
from reconciler.emulator.wire import ApiProblem, Request, Response

MAX_NAME = 255
MAX_EXTERNAL_ID = 128


CREDITS_EXHAUSTED = ("You have exhausted your current query credits. Please upgrade your plan "
                     "or wait for your credits to renew.")


MAX_PROJECTS = 100  # the account's limits as `GET /api/v1/limits/usage` reports them
MAX_STORAGE_CREDITS = 5_000_000


@dataclass
class Api:
    """What the endpoints need: the store, the page size, the query credits left, the
    variants of the real service to behave as, and the projects' documents to answer from.

    `query_credits` None means unlimited; otherwise each sent message spends one, and a send
    with none left is answered 429 as the API does. `queries_used` counts the messages sent.
    `content` None means canned answers (`wire.canned_answer`).
    """

    store: Store
    page_size: int = 10
    query_credits: int | None = None
    queries_used: int = 0
    variants: Variants = field(default_factory=Variants)
    content: Content | None = None
    _credits_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def spend_credit(self) -> None:
        """Spend one query credit; raises ApiProblem(429) when none is left."""
        with self._credits_lock:
            if self.query_credits is not None:
                if self.query_credits <= 0:
                    raise ApiProblem(429, CREDITS_EXHAUSTED)
                self.query_credits -= 1
            self.queries_used += 1

    def reply(self, project_id: int, prompt: str) -> Reply:
        """The answer to a prompt sent to the project: canned without content; with it, the
        passages of the project's documents that match, or the project's "I don't know"
        message."""
        if self.content is None:
            return Reply(wire.canned_answer(prompt), ())
        found = self.content.answer(project_id, prompt)
        if found is not None:
            return found
        return Reply(self.store.no_answer_message(project_id) or NO_ANSWER_MESSAGE, ())

    @property
    def canned(self) -> bool:
        """Whether answers are canned (no content), and so are the citations the variants of
        the real service show."""
        return self.content is None

    def usage(self) -> dict[str, int | None]:
        """The account's limits and use as `GET /api/v1/limits/usage` reports them: projects,
        storage credits (none used: the emulator indexes no content) and query credits
        (`max_queries` null: unlimited)."""
        projects = self.store.count_projects()
        with self._credits_lock:
            limit = None if self.query_credits is None else self.query_credits + self.queries_used
            return {"max_projects_num": MAX_PROJECTS, "current_projects_num": projects,
                    "max_total_storage_credits": MAX_STORAGE_CREDITS,
                    "current_total_storage_credits": 0,
                    "max_queries": limit, "current_queries": self.queries_used}


Endpoint = Callable[[Api, Request, dict[str, str]], Response]


def _project_id(api: Api, params: dict[str, str]) -> int | None:
    """The project id of the path, None for a number no project can have (over 2^63-1; 5,000
    digits are not even converted). Raises ApiProblem(400) when it is not a number."""
    raw = params["project"]
    if not (raw.isascii() and raw.isdigit()):
        raise ApiProblem(400, f"{api.variants.agent} id must be integer")
    return wire.bounded_number(raw, wire.MAX_ID)


def existing_project(api: Api, params: dict[str, str]) -> dict[str, Any]:
    """The project of the path, once its conversations past their retention are forgotten.
    Raises ApiProblem 400 or 404."""
    project_id = _project_id(api, params)
    project = api.store.get_project(project_id) if project_id is not None else None
    if project is None:
        raise ApiProblem(404, f"{api.variants.agent} with id {params['project'][:40]} not found")
    forget_expired(api.store, project["id"])
    return project


def existing_conversation(api: Api, params: dict[str, str]) -> dict[str, Any]:
    """The conversation of the path, in the project of the path. Raises ApiProblem 400 or
    404."""
    project = existing_project(api, params)
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


def list_conversations(api: Api, request: Request, params: dict[str, str]) -> Response:
    """GET /api/v1/projects/{projectId}/conversations."""
    project = existing_project(api, params)
    page = wire.page_number(request.query)
    per_page = _per_page(api, request)
    query = ConversationQuery(
        project_id=project["id"],
        order=wire.choice(request.query, "order", ("asc", "desc"), "desc"),
        order_by=wire.choice(request.query, "orderBy", ("id", "created_at"), "id"),
        user_filter=_user_filter(api, request),
        user=request.user,
        name=request.query.get("name") or None,
        name_match=api.variants.name_filter,
    )
    listing = api.store.list_conversations(query, limit=per_page, offset=(page - 1) * per_page)
    listing.rows[:] = [wire.conversation(row, api.variants) for row in listing.rows]
    return wire.success(wire.paginated(listing, page=page, per_page=per_page,
                                       path_url=request.base_url + request.path))


def _user_filter(api: Api, request: Request) -> str:
    """The `userFilter`: `me` only where the service knows it (`user_filter_me`)."""
    known: tuple[str, ...] = ("all", "anonymous", "team_member")
    if api.variants.user_filter_me == "supported":
        known += ("me",)
    chosen = wire.choice(request.query, "userFilter", known, "all")
    if chosen == "team_member" and api.variants.team_filter_excludes_owner:
        return "team_member_but_owner"
    return chosen


def _per_page(api: Api, request: Request) -> int:
    """The page size of a conversation listing: the server's, or where the service honours
    `per_page` the one asked for, at most MAX_PER_PAGE. Raises ApiProblem(400) for a
    `per_page` that is not a positive whole number (only where it is honoured)."""
    raw = request.query.get("per_page", "").strip()
    if api.variants.per_page != "honoured" or not raw:
        return api.page_size
    value = wire.bounded_number(raw, wire.MAX_PAGE)
    if value is None or value < 1:
        raise ApiProblem(400, "The per page must be a positive integer")
    return min(value, MAX_PER_PAGE)


def create_conversation(api: Api, request: Request, params: dict[str, str]) -> Response:
    """POST /api/v1/projects/{projectId}/conversations (the real service's answers of 2023
    also nest the project)."""
    project = existing_project(api, params)
    name = _text_field(api, body_of(request)[0], "name", limit=MAX_NAME)
    row = api.store.create_conversation(project["id"], name, created_by=request.user)
    created = wire.conversation(row, api.variants)
    if api.variants.observed:
        created["project"] = wire.project(project, api.variants)
    return wire.success(created, status=201)


def update_conversation(api: Api, request: Request, params: dict[str, str]) -> Response:
    """PUT /api/v1/projects/{projectId}/conversations/{sessionId} (403 for a team member's
    key on a conversation another user started)."""
    found = existing_conversation(api, params)
    require_change(request.user, found)
    name = _text_field(api, request.json(), "name", limit=MAX_NAME)
    row = api.store.rename_conversation(int(found["project_id"]), found["session_id"], name)
    if row is None:  # deleted concurrently
        raise ApiProblem(404, f"Conversation with session id {params['session']} not found")
    return wire.success(wire.conversation(row, api.variants))


def delete_conversation(api: Api, request: Request, params: dict[str, str]) -> Response:
    """DELETE /api/v1/projects/{projectId}/conversations/{sessionId} (messages included; 403
    for a team member's key on a conversation another user started)."""
    found = existing_conversation(api, params)
    require_change(request.user, found)
    if not api.store.delete_conversation(int(found["project_id"]), found["session_id"]):
        raise ApiProblem(404, f"Conversation with session id {params['session']} not found")
    return wire.success({"deleted": True})


def list_messages(api: Api, request: Request, params: dict[str, str]) -> Response:
    """GET .../conversations/{sessionId}/messages: data.conversation and data.messages."""
    found = existing_conversation(api, params)
    page = wire.page_number(request.query)
    order = wire.choice(request.query, "order", ("asc", "desc"), "desc")
    per_page = wire.OBSERVED_MESSAGE_PAGE if api.variants.observed else api.page_size
    listing = api.store.list_messages(found["id"], order=order, limit=per_page,
                                      offset=(page - 1) * per_page)
    listing.rows[:] = [wire.message(row, api.variants, listed=True, canned=api.canned)
                       for row in listing.rows]
    messages = wire.paginated(listing, page=page, per_page=per_page,
                              path_url=request.base_url + request.path)
    return wire.success({"conversation": wire.conversation(found, api.variants),
                         "messages": messages})


def send_message(api: Api, request: Request, params: dict[str, str]) -> Response:
    """POST .../conversations/{sessionId}/messages (stream=0 JSON, stream=1 event stream;
    `stream` in the query or in the body; the body JSON, form-encoded or multipart with files;
    403 for a team member's key on a conversation another user started)."""
    found = existing_conversation(api, params)
    require_change(request.user, found)
    body, files = body_of(request)
    prompt = stored_prompt(api, _text_field(api, body, "prompt"))
    options = send_options(body, files, request.query)
    stream = _flag(request.query.get("stream", "0")) or body_flag(body.get("stream"))
    external_id = external_id_of(request.query.get("external_id"))
    api.spend_credit()
    message = _cached_answer(api, request, int(found["project_id"]), prompt)
    if message is None:
        message = answer(api, request, found, prompt, external_id=external_id,
                         options=options)
    if stream:
        return _event_stream(api, message, found["session_id"])
    return wire.success(wire.message(message, api.variants, canned=api.canned))


def stored_prompt(api: Api, prompt: str) -> str:
    """A prompt as the service stores it (`escape_prompts`; `trim_text` is applied when the
    field is read)."""
    return html.escape(prompt, quote=False) if api.variants.escape_prompts else prompt


def external_id_of(value: object) -> str | None:
    """A send's `external_id` (at most 128 characters). Raises ApiProblem(400)."""
    if value is not None and not isinstance(value, str):
        raise ApiProblem(400, "The external_id must be a string")
    if value is not None and len(value) > MAX_EXTERNAL_ID:
        raise ApiProblem(400, f"The external_id may not be greater than {MAX_EXTERNAL_ID} "
                              "characters")
    return value


def answer(
    api: Api, request: Request, conversation: dict[str, Any], prompt: str, *,
    external_id: str | None, options: dict[str, Any],
) -> dict[str, Any]:
    """Answer a prompt sent by the request's user to a conversation (its row) and store the
    exchange, with its metadata and the options the send carried."""
    metadata = {"user_ip": "127.0.0.1", "user_agent": request.headers.get("user-agent", ""),
                "external_id": external_id, "request_source": "api"}
    return _answer(api, conversation, prompt, metadata, user_id=int(request.user),
                   options=options)


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
    api: Api, conversation: dict[str, Any], prompt: str, metadata: dict[str, Any], *,
    user_id: int, options: dict[str, Any],
) -> dict[str, Any]:
    """Store the exchange; a slow model (`send_delay_ms`) stores it at the start or at the end
    of the time it takes to answer."""
    delay = api.variants.send_delay_ms / 1000.0
    late = api.variants.send_commits == "end"
    if delay and late:
        time.sleep(delay)
    reply = api.reply(int(conversation["project_id"]), prompt)
    message = api.store.add_message(conversation["id"], user_id=user_id, prompt=prompt,
                                    answer=reply.text, metadata=metadata, options=options,
                                    citations=reply.citations)
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


def body_flag(value: Any) -> bool:
    """`stream` given in the JSON body: a boolean, 0 or 1, or their text."""
    if value is None or value is False or value == 0:
        return False
    if value is True or value == 1:
        return True
    if isinstance(value, str):
        return _flag(value)
    raise ApiProblem(400, "The stream must be 0 or 1")


def _event_stream(api: Api, message: dict[str, Any], session_id: str) -> Response:
    """Data-only server-sent events: `progress` chunks of the answer, then `finish`. The real
    service (`wire: observed-2023`) starts with a `start` event carrying the prompt, and its
    `finish` event does not repeat the text. With `wire: observed-2026` each event also has an
    SSE `event:` line naming its status, and the finish event's citations are integers."""
    variants = api.variants
    text: str = message["openai_response"]
    words = text.split(" ")
    chunks = [word + (" " if index < len(words) - 1 else "") for index, word in enumerate(words)]
    events: list[dict[str, Any]] = [{"status": "progress", "message": chunk} for chunk in chunks]
    if variants.observed or variants.named_events:
        citations = wire.message(message, variants, canned=api.canned)["citations"]
        events.insert(0, {"status": "start", "prompt": message["user_query"]})
        events.append({"status": "finish", "id": message["id"],
                       "created_at": wire.iso_time(message["created_at"]),
                       "session_id": session_id, "citations": citations})
    else:
        events.append({"status": "finish", "message": "", "citations": message["citations"],
                       "id": message["id"], "prompt_id": message["id"]})
    named = variants.named_events
    body = "".join((f"event: {event['status']}\n" if named else "")
                   + f"data: {json.dumps(event, ensure_ascii=False)}\n\n" for event in events)
    return Response(200, body.encode("utf-8"), content_type="text/event-stream",
                    headers={"Cache-Control": "no-cache"})


def get_message(api: Api, request: Request, params: dict[str, str]) -> Response:
    """GET .../conversations/{sessionId}/messages/{promptId}: one message."""
    found = existing_conversation(api, params)
    message = api.store.get_message(found["id"], _prompt_id(params))
    if message is None:
        raise ApiProblem(404, f"Conversation message with id {params['prompt'][:40]} not found")
    return wire.success(wire.message(message, api.variants, canned=api.canned))


REACTIONS = ("liked", "disliked", "neutral")


def update_feedback(api: Api, request: Request, params: dict[str, str]) -> Response:
    """PUT .../messages/{promptId}/feedback `{"reaction": "liked"|"disliked"|"neutral"}`, or
    null (as the vendor's widget sends) to clear it; answers the message."""
    found = existing_conversation(api, params)
    body = request.json()
    if not isinstance(body, dict):
        raise ApiProblem(400, "The request body must be a JSON object")
    reaction = body.get("reaction")
    if reaction is not None and reaction not in REACTIONS:
        raise ApiProblem(400, f"The selected reaction is invalid: it must be one of "
                              f"{', '.join(REACTIONS)} or null")
    message = api.store.set_feedback(found["id"], _prompt_id(params), reaction=reaction,
                                     user_id=int(request.user))
    if message is None:
        raise ApiProblem(404, f"Conversation message with id {params['prompt'][:40]} not found")
    return wire.success(wire.message(message, api.variants, canned=api.canned))


def _prompt_id(params: dict[str, str]) -> int:
    """The message id of the path (0, which no message has, for a number too large).
    Raises ApiProblem(400) when it is not a number."""
    raw = params["prompt"]
    if not (raw.isascii() and raw.isdigit()):
        raise ApiProblem(400, "Conversation message id must be integer")
    return wire.bounded_number(raw, wire.MAX_ID) or 0


def get_citation(api: Api, request: Request, params: dict[str, str]) -> Response:
    """GET /api/v1/projects/{projectId}/citations/{citationId}: the document an answer cited
    (the API's `PageMetadata`: id, url, title, description, image). Raises ApiProblem 400 or
    404 (also for every id when the emulator answers without content)."""
    project = existing_project(api, params)
    raw = params["citation"]
    if not (raw.isascii() and raw.isdigit()):
        raise ApiProblem(400, "Citation id must be integer")
    citation = wire.bounded_number(raw, wire.MAX_ID) or 0
    document = None if api.content is None else api.content.document(project["id"], citation)
    if document is None:
        raise ApiProblem(404, f"Page with id {raw[:40]} not found")
    return wire.success(document.metadata())


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
    return wire.success(wire.project(existing_project(api, params), api.variants))


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
    """GET /api/v1/user: the user the key belongs to."""
    user = USERS[request.user]
    return wire.success(wire.user(api.variants, user_id=user.id, name=user.name,
                                  email=user.email))


def get_usage(api: Api, request: Request, params: dict[str, str]) -> Response:
    """GET /api/v1/limits/usage: the account's limits and what it uses of them."""
    return wire.success(api.usage())
