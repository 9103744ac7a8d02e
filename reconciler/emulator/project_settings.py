"""`GET` and `POST /api/v1/projects/{projectId}/settings`: a project's settings.

The emulator keeps the conversation retention (`reconciler.emulator.retention`) and the
`no_answer_message` that answers from content say when nothing matches
(`reconciler.emulator.content`); the other settings are shown with the API's defaults and
accepted, but not kept. Only the account's owner may change them (403 for a team member's
key).
"""

from __future__ import annotations

from typing import Any

from reconciler.emulator import wire
from reconciler.emulator.api import Api, existing_project
from reconciler.emulator.content import NO_ANSWER_MESSAGE
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


MAX_NO_ANSWER = 1000  # the API's maxLength of `no_answer_message`


def get_settings(api: Api, request: Request, params: dict[str, str]) -> Response:
    """The project's settings, its conversation retention among them."""
    project = existing_project(api, params)
    retention = retention_of(api.store, project["id"])
    no_answer = api.store.no_answer_message(project["id"]) or NO_ANSWER_MESSAGE
    return wire.success({**DEFAULTS,
                         "no_answer_message": no_answer,
                         "conversation_retention_period": retention.period,
                         "conversation_retention_days": retention.days})


def update_settings(api: Api, request: Request, params: dict[str, str]) -> Response:
    """Change the project's settings (multipart as documented; a form or JSON also do): the
    retention and the "I don't know" message are kept, the rest accepted. Nothing changes
    when a value is refused. Raises ApiProblem 400 or 403."""
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
    no_answer = _no_answer(body)
    api.store.set_retention(project["id"], retention.period, retention.days)
    if "no_answer_message" in body:
        api.store.set_no_answer_message(project["id"], no_answer)
    return wire.success({"updated": True})


def _no_answer(body: dict[str, Any]) -> str | None:
    """`no_answer_message` as given: text of at most MAX_NO_ANSWER characters, or null (or
    blank) for the default. Raises ApiProblem(400)."""
    value = body.get("no_answer_message")
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiProblem(400, "The no_answer_message must be a string")
    if len(value) > MAX_NO_ANSWER:
        raise ApiProblem(400, f"The no_answer_message may not be greater than {MAX_NO_ANSWER} "
                              "characters")
    return value if value.strip() else None


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
