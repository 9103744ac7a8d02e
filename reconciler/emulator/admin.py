"""Test controls under `/_emulator/` (only with `enable_admin`; no token needed).

POST /_emulator/projects {"id", "name"}           create a project with a chosen id
POST /_emulator/conversations {"project_id", "name", "as": "visitor"|"teammate"|"me"}
POST /_emulator/reset                             delete all data, counters and fault rules
GET  /_emulator/faults, PUT /_emulator/faults     read or change fault settings and rules
GET  /_emulator/stats                             requests served by method, faults injected,
                                                  per-minute budget counted and refused per key
POST /_emulator/age {"project_id", "session_id", "days"}
                                                  move a conversation's times back by N days
PUT  /_emulator/retention {"project_id", "period", "days"}
                                                  set a project's conversation retention
GET  /_emulator/sends?project_id=N&session_id=S   what each send to a conversation carried
                                                  beyond its prompt (options, files)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reconciler.emulator import wire
from reconciler.emulator.faults import FaultConfigError, FaultInjector
from reconciler.emulator.retention import MAX_DAYS, Retention, RetentionError
from reconciler.emulator.store import CREATORS, Store
from reconciler.emulator.throttle import FixedWindowThrottle
from reconciler.emulator.wire import ApiProblem, Request, Response

PREFIX = "/_emulator/"


@dataclass
class Admin:
    """What the admin endpoints act on."""

    store: Store
    injector: FaultInjector
    requests: Counter[str]
    throttle: FixedWindowThrottle


def _body(request: Request) -> dict[str, Any]:
    body = request.json()
    if not isinstance(body, dict):
        raise ApiProblem(400, "The request body must be a JSON object")
    return body


def _int_field(body: dict[str, Any], key: str) -> int:
    value = body.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= wire.MAX_ID:
        raise ApiProblem(400, f"{key} must be a positive integer")
    return value


def _name_field(body: dict[str, Any], key: str = "name") -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ApiProblem(400, f"{key} must be a non-empty string")
    return value


def add_project(admin: Admin, request: Request) -> Response:
    """Create (or keep) a project with a chosen id."""
    body = _body(request)
    project_id = _int_field(body, "id")
    name = body.get("name") or f"project-{project_id}"
    if not isinstance(name, str):
        raise ApiProblem(400, "name must be a string")
    return wire.success(wire.project(admin.store.ensure_project(project_id, name)), status=201)


def add_conversation(admin: Admin, request: Request) -> Response:
    """Create a conversation as the key's user, a teammate or an anonymous visitor."""
    body = _body(request)
    project_id = _int_field(body, "project_id")
    creator = body.get("as", "visitor")
    if creator not in CREATORS:
        raise ApiProblem(400, f"as must be one of: {', '.join(CREATORS)}")
    if admin.store.get_project(project_id) is None:
        raise ApiProblem(404, f"Project with id {project_id} not found")
    row = admin.store.create_conversation(project_id, _name_field(body),
                                          created_by=CREATORS[creator])
    return wire.success(wire.conversation(row), status=201)


def age_conversation(admin: Admin, request: Request) -> Response:
    """Move a conversation's created_at and updated_at back by `days` (to test retention)."""
    body = _body(request)
    project_id = _int_field(body, "project_id")
    days = body.get("days")
    if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= MAX_DAYS:
        raise ApiProblem(400, f"days must be a whole number from 0 to {MAX_DAYS}")
    row = admin.store.age_conversation(project_id, _name_field(body, "session_id"), days)
    if row is None:
        raise ApiProblem(404, "No such conversation in that project")
    return wire.success(wire.conversation(row))


def set_retention(admin: Admin, request: Request) -> Response:
    """Set a project's conversation retention: `period` custom|year|never, `days` (custom)."""
    body = _body(request)
    project_id = _int_field(body, "project_id")
    if admin.store.get_project(project_id) is None:
        raise ApiProblem(404, f"Project with id {project_id} not found")
    try:
        period = body.get("period", "year")
        retention = Retention(period, body.get("days", 0) if period == "custom" else 0)
    except RetentionError as problem:
        raise ApiProblem(400, str(problem)) from None
    admin.store.set_retention(project_id, retention.period, retention.days)
    return wire.success({"period": retention.period, "days": retention.days})


def sends(admin: Admin, request: Request) -> Response:
    """Each message of a conversation with what its send carried beyond the prompt."""
    project = wire.bounded_number(request.query.get("project_id", ""), wire.MAX_ID)
    found = admin.store.get_conversation(project or 0, request.query.get("session_id", ""))
    if found is None:
        raise ApiProblem(404, "No such conversation in that project")
    return wire.success(sent_with(admin.store, found["id"]))


def sent_with(store: Store, conversation_id: int) -> list[dict[str, Any]]:
    """The conversation's messages, oldest first: id, prompt, and the options of their send."""
    options = store.send_options(conversation_id)
    listing = store.list_messages(conversation_id, order="asc", limit=-1, offset=0)
    return [{"id": row["id"], "user_query": row["user_query"],
             "options": options.get(row["id"], {})} for row in listing.rows]


def reset(admin: Admin, request: Request) -> Response:
    """Delete all data, forget the counters and the fault rules."""
    admin.store.reset()
    admin.injector.faults.rules.clear()
    admin.injector.reset_counts()
    admin.requests.clear()
    admin.throttle.reset()
    return wire.success({"reset": True})


def get_faults(admin: Admin, request: Request) -> Response:
    """The current fault settings and rules."""
    return wire.success(admin.injector.faults.to_dict())


def put_faults(admin: Admin, request: Request) -> Response:
    """Change some fault settings and/or replace the rules."""
    try:
        admin.injector.faults.update(_body(request))
    except FaultConfigError as problem:
        raise ApiProblem(400, str(problem)) from None
    if "seed" in request.json():
        admin.injector.reseed()
    return wire.success(admin.injector.faults.to_dict())


def stats(admin: Admin, request: Request) -> Response:
    """Requests served by method, faults injected by kind, and per key (a fingerprint, never
    the key) the requests counted against the per-minute budget and those refused."""
    return wire.success({"requests": dict(admin.requests),
                         "faults": admin.injector.snapshot(),
                         "rate_limit": admin.throttle.snapshot()})


_ROUTES: dict[str, dict[str, Callable[[Admin, Request], Response]]] = {
    "projects": {"POST": add_project},
    "conversations": {"POST": add_conversation},
    "reset": {"POST": reset},
    "faults": {"GET": get_faults, "PUT": put_faults},
    "stats": {"GET": stats},
    "age": {"POST": age_conversation},
    "retention": {"PUT": set_retention},
    "sends": {"GET": sends},
}


def handle(admin: Admin, request: Request) -> Response:
    """Serve one admin request; raises ApiProblem for unknown paths or bad bodies."""
    methods = _ROUTES.get(request.path[len(PREFIX):].strip("/"))
    if methods is None:
        raise ApiProblem(404, "The requested resource was not found")
    endpoint = methods.get(request.method)
    if endpoint is None:
        raise ApiProblem(405, f"The {request.method} method is not supported for this route")
    return endpoint(admin, request)
