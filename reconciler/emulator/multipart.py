"""Reading the text fields of a `multipart/form-data` or urlencoded form body (no files kept)."""

from __future__ import annotations

from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import parse_qs

from reconciler.emulator.wire import ApiProblem


def form_fields(content_type: str, body: bytes) -> dict[str, str]:
    """The text fields of a form body; raises ApiProblem(400) if it cannot be read."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qs(body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            raise ApiProblem(400, "The form body is not valid UTF-8") from None
        return {key: values[-1] for key, values in pairs.items()}
    if kind != "multipart/form-data":
        raise ApiProblem(400, "The body must be multipart/form-data")
    header = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1",
                                                                                "replace")
    message = BytesParser(policy=HTTP).parsebytes(header + body)
    if not message.is_multipart():
        raise ApiProblem(400, "The multipart body could not be read")
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or part.get_filename() is not None:
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            fields[name] = payload.decode("utf-8", "replace")
    return fields
