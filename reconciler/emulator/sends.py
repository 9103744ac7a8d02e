"""Request bodies of creates and sends (JSON, form-encoded or multipart), and what a send carries
beyond its prompt.

A send may carry `custom_persona`, `chatbot_model`, `response_source`, `custom_context`,
`agent_capability` and, in a multipart body, files. They are checked as the 2025 OpenAPI
document says (enumerations where it gives them; `custom_context` at most 500 characters, the
limit a 2026 client states) and stored with the message. The API shows none of them in a
message; a test reads them back with `Emulator.sends` or `GET /_emulator/sends`.
"""

from __future__ import annotations

from typing import Any

from reconciler.emulator.multipart import Upload, is_form, read_form
from reconciler.emulator.wire import ApiProblem, Request

CHATBOT_MODELS = ("gpt-4-o", "gpt-4-1", "gpt-4o-mini", "gpt-4-1-mini", "claude-3-sonnet",
                  "claude-3.5-sonnet", "gpt-o4-mini-low", "gpt-o4-mini-medium",
                  "gpt-o4-mini-high")
RESPONSE_SOURCES = ("default", "own_content", "openai_content")
AGENT_CAPABILITIES = ("fastest-responses", "optimal-choice", "advanced-reasoning",
                      "complex-tasks")
MAX_CUSTOM_CONTEXT = 500

# The optional fields of a send: None means any string, a tuple the values allowed.
_OPTIONS: dict[str, tuple[str, ...] | None] = {
    "custom_persona": None,
    "chatbot_model": CHATBOT_MODELS,
    "response_source": RESPONSE_SOURCES,
    "custom_context": None,
    "agent_capability": AGENT_CAPABILITIES,
}
_LIMITS = {"custom_context": MAX_CUSTOM_CONTEXT}


def body_of(request: Request) -> tuple[Any, tuple[Upload, ...]]:
    """The request's body, from JSON or from a form (its text fields, an empty one read as
    null as Laravel does), and the files a multipart form carried. Raises ApiProblem(400)
    when it cannot be read."""
    content_type = request.headers.get("content-type", "")
    if not is_form(content_type):
        return request.json(), ()
    form = read_form(content_type, request.body)
    return {key: value or None for key, value in form.fields.items()}, form.files


def send_options(body: dict[str, Any], files: tuple[Upload, ...],
                 query: dict[str, str]) -> dict[str, Any]:
    """What a send carries beyond its prompt: the optional fields given (not null), the
    query's `lang`, and the files. Raises ApiProblem(400) for a value the API does not take."""
    options: dict[str, Any] = {}
    for key, allowed in _OPTIONS.items():
        value = body.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise ApiProblem(400, f"The {key} must be a string")
        if allowed is not None and value not in allowed:
            raise ApiProblem(400, f"The selected {key} is invalid: it must be one of "
                                  f"{', '.join(allowed)}")
        limit = _LIMITS.get(key)
        if limit is not None and len(value) > limit:
            raise ApiProblem(400, f"The {key} may not be greater than {limit} characters")
        options[key] = value
    if "lang" in query:
        options["lang"] = query["lang"]
    if files:
        options["files"] = [upload.describe() for upload in files]
    return options
