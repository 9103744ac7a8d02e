"""Which endpoint serves a request: method and path to the functions of `api.py`,
`completions.py` and `project_settings.py`."""

from __future__ import annotations

import re

from reconciler.emulator import api, completions, project_settings
from reconciler.emulator.api import Endpoint
from reconciler.emulator.wire import ApiProblem

_PROJECT = r"/api/v1/projects/(?P<project>[^/]+)"
_SESSION = _PROJECT + r"/conversations/(?P<session>[^/]+)"
_MESSAGE = _SESSION + r"/messages/(?P<prompt>[^/]+)"

ROUTES: list[tuple[re.Pattern[str], dict[str, Endpoint]]] = [
    (re.compile(r"/api/v1/projects/?"), {"GET": api.list_projects, "POST": api.create_project}),
    (re.compile(_PROJECT + "/?"), {"GET": api.get_project}),
    (re.compile(_PROJECT + r"/settings/?"),
     {"GET": project_settings.get_settings, "POST": project_settings.update_settings}),
    (re.compile(_PROJECT + r"/chat/completions/?"), {"POST": completions.chat_completions}),
    (re.compile(_PROJECT + r"/citations/(?P<citation>[^/]+)/?"), {"GET": api.get_citation}),
    (re.compile(_PROJECT + r"/conversations/?"),
     {"GET": api.list_conversations, "POST": api.create_conversation}),
    (re.compile(_SESSION + "/?"),
     {"PUT": api.update_conversation, "DELETE": api.delete_conversation}),
    (re.compile(_SESSION + r"/messages/?"), {"GET": api.list_messages, "POST": api.send_message}),
    (re.compile(_MESSAGE + "/?"), {"GET": api.get_message}),
    (re.compile(_MESSAGE + r"/feedback/?"), {"PUT": api.update_feedback}),
    (re.compile(r"/api/v1/user/?"), {"GET": api.get_user}),
    (re.compile(r"/api/v1/limits/usage/?"), {"GET": api.get_usage}),
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
