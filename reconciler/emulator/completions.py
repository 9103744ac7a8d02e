"""`POST /api/v1/projects/{projectId}/chat/completions`: a send in OpenAI's chat format.

This is how a customer's production integration often uses the same key as everything else:
each call starts a NEW conversation, created by the key's user and named after the prompt
(the real service's naming is not documented), with the last `user` message as its prompt and
the answer stored as its message. The answer is an OpenAI `chat.completion` object, not the
API's envelope (errors keep the envelope); with `stream: true`, `chat.completion.chunk` events
and `data: [DONE]`.
"""

from __future__ import annotations

import json
import time
from typing import Any

from reconciler.emulator.api import (
    MAX_NAME,
    Api,
    answer,
    body_flag,
    existing_project,
    external_id_of,
    stored_prompt,
)
from reconciler.emulator.wire import ApiProblem, Request, Response

ROLES = ("system", "user", "assistant")
# OpenAI parameters the service does not take: 501, as the API documents for audio.
UNSUPPORTED = ("audio", "tools", "tool_choice", "functions", "function_call")


def chat_completions(api: Api, request: Request, params: dict[str, str]) -> Response:
    """Answer the conversation's last user message in a new conversation of the key's user."""
    project = existing_project(api, params)
    body = request.json()
    if not isinstance(body, dict):
        raise ApiProblem(400, "The request body must be a JSON object")
    for key in UNSUPPORTED:
        if key in body:
            raise ApiProblem(501, f"{key} is not yet supported. Please remove them from your "
                                  "request and try again.")
    prompt = _last_user_message(body.get("messages"))
    if api.variants.trim_text:
        prompt = prompt.strip()
    stream = body_flag(body.get("stream"))
    model = _optional_text(body, "model")
    options: dict[str, Any] = {key: value for key in ("lang", "model")
               if (value := _optional_text(body, key)) is not None}
    inline = body.get("is_inline_citation", False)
    if not isinstance(inline, bool):
        raise ApiProblem(400, "The is_inline_citation must be true or false")
    if inline:
        options["is_inline_citation"] = True
    external_id = external_id_of(body.get("external_id"))
    api.spend_credit()
    conversation = api.store.create_conversation(project["id"], prompt[:MAX_NAME],
                                                 created_by=request.user)
    message = answer(api, request, conversation, stored_prompt(api, prompt),
                     external_id=external_id, options=options)
    if stream:
        return _chunks(message, model)
    return Response(200, _dump(_completion(message, model)))


def _last_user_message(messages: Any) -> str:
    """The content of the last `user` message. Raises ApiProblem(400) for messages that are
    not a list of {role, content} objects with at least one user message."""
    if not isinstance(messages, list) or not messages:
        raise ApiProblem(400, "The messages field is required and must be a non-empty list")
    prompt: str | None = None
    for item in messages:
        if not isinstance(item, dict) or item.get("role") not in ROLES:
            raise ApiProblem(400, f"Each message must have a role ({', '.join(ROLES)}) "
                                  "and a content")
        content = item.get("content")
        if not isinstance(content, str):
            raise ApiProblem(400, "The content of each message must be a string")
        if item["role"] == "user":
            prompt = content
    if prompt is None or not prompt.strip():
        raise ApiProblem(400, "The messages must end with a non-empty user message")
    return prompt


def _optional_text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise ApiProblem(400, f"The {key} must be a string")
    return value


def _completion(message: dict[str, Any], model: str | None) -> dict[str, Any]:
    """The message as an OpenAI `chat.completion` (no tokens are counted)."""
    return {
        "id": str(message["id"]),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant",
                                             "content": message["openai_response"]},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0,
                  "completion_tokens_details": {"reasoning_tokens": 0,
                                                "accepted_prediction_tokens": 0,
                                                "rejected_prediction_tokens": 0}},
    }


def _chunks(message: dict[str, Any], model: str | None) -> Response:
    """The answer as OpenAI `chat.completion.chunk` events, one per word, then `[DONE]`."""
    words = str(message["openai_response"]).split(" ")
    created = int(time.time())

    def chunk(delta: dict[str, str], finish: str | None) -> str:
        event = {"id": str(message["id"]), "object": "chat.completion.chunk",
                 "created": created, "model": model,
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return f"data: {json.dumps(event, ensure_ascii=False)}\n\n"

    parts = [chunk({"role": "assistant", "content": ""}, None)]
    parts += [chunk({"content": word + (" " if index < len(words) - 1 else "")}, None)
              for index, word in enumerate(words)]
    parts += [chunk({}, "stop"), "data: [DONE]\n\n"]
    return Response(200, "".join(parts).encode("utf-8"), content_type="text/event-stream",
                    headers={"Cache-Control": "no-cache"})


def _dump(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
