"""`GET` and `POST /api/v1/projects/{projectId}/settings`: a project's settings.

The emulator keeps only the conversation retention (`reconciler.emulator.retention`); the other
settings are shown with the API's defaults and accepted, but not kept. Only the account's
owner may change them (403 for a team member's key).
"""

from __future__ import annotations

from typing import Any

from reconciler.emulator import wire
from reconciler.emulator.api import Api, existing_project
from reconciler.emulator.retention import Retention, RetentionError, retention_of
from reconciler.emulator.sends import body_of
from reconciler.emulator.team import FORBIDDEN, USERS
from reconciler.emulator.wire import ApiProblem, Request, Response

# What a new project's settings show (the API's defaults and the 2023 answers' values).
DEFAULTS: dict[str, Any] = {
    "chatbot_avatar": "",
    "chatbot_background": "",
    "default_prompt": "Ask Me Anything ...",
    "example_questions": None,
    "response_source": "default",
    "chatbot_msg_lang": "en",
    "remove_branding": False,
    "persona_instructions": None,
    "chatbot_model": "gpt-4-o",
    "agent_capability": "optimal-choice",
    "enable_feedbacks": True,
    "conversation_time_window": False,
}


def get_settings(api: Api, request: Request, params: dict[str, str]) -> Response:
    """The project's settings, its conversation retention among them."""
    project = existing_project(api, params)
    retention = retention_of(api.store, project["id"])
    return wire.success({**DEFAULTS,
                         "conversation_retention_period": retention.period,
                         "conversation_retention_days": retention.days})


def update_settings(api: Api, request: Request, params: dict[str, str]) -> Response:
    """Change the project's settings (multipart as documented; a form or JSON also do): the
    retention is kept, the rest accepted. Raises ApiProblem 400 or 403."""
    project = existing_project(api, params)
    if USERS[request.user].role != "owner":
        raise ApiProblem(403, FORBIDDEN)
    body, _ = body_of(request)
    if not isinstance(body, dict):
        raise ApiProblem(400, "The request body must be an object")
    current = retention_of(api.store, project["id"])
    period = body.get("conversation_retention_period") or current.period
    days = _days(body.get("conversation_retention_days"), current.days)
    try:
        retention = Retention(period, days if period == "custom" else 0)
    except RetentionError as problem:
        raise ApiProblem(400, str(problem)) from None
    api.store.set_retention(project["id"], retention.period, retention.days)
    return wire.success({"updated": True})


def _days(value: Any, current: int) -> int:
    """`conversation_retention_days` as given (a number, or its digits in a form), else the
    current value. Raises ApiProblem(400)."""
    if value is None:
        return current
    if isinstance(value, str):
        number = wire.bounded_number(value.strip(), wire.MAX_ID)
        if number is None:
            raise ApiProblem(400, "The conversation_retention_days must be a whole number")
        return number
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiProblem(400, "The conversation_retention_days must be a whole number")
    return value
