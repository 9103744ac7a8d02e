"""Reading form bodies: `application/x-www-form-urlencoded` and `multipart/form-data`.

Text fields come back as strings. Files are not kept: a form's files are described by name,
size and type (`Upload`), so a test can see what a request carried. The whole body is bounded
by the server (1 MiB); a form may hold at most `MAX_PARTS` fields and files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import Message
from urllib.parse import parse_qs

from reconciler.emulator.wire import ApiProblem

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
MAX_PARTS = 64
MAX_PART_HEAD = 8192  # bytes of headers one part may have


@dataclass(frozen=True)
class Upload:
    """A file sent in a multipart form: its field, file name, size in bytes and type."""

    field: str
    filename: str
    size: int
    content_type: str

    def describe(self) -> dict[str, str | int]:
        """The upload as JSON data."""
        return {"field": self.field, "filename": self.filename, "size": self.size,
                "content_type": self.content_type}


@dataclass(frozen=True)
class Form:
    """A form body's text fields (last value wins) and its files."""

    fields: dict[str, str] = field(default_factory=dict)
    files: tuple[Upload, ...] = ()


def is_form(content_type: str) -> bool:
    """Whether a `Content-Type` names one of the two form encodings."""
    return _kind(content_type) in FORM_TYPES


def form_fields(content_type: str, body: bytes) -> dict[str, str]:
    """The text fields of a form body; raises ApiProblem(400) if it cannot be read."""
    return read_form(content_type, body).fields


def read_form(content_type: str, body: bytes) -> Form:
    """A form body's fields and files; raises ApiProblem(400) if it is not a form or cannot be
    read, or holds more than `MAX_PARTS` parts."""
    kind = _kind(content_type)
    if kind == "application/x-www-form-urlencoded":
        return Form(fields=_urlencoded(body))
    if kind != "multipart/form-data":
        raise ApiProblem(400, "The body must be multipart/form-data")
    fields: dict[str, str] = {}
    files: list[Upload] = []
    for head, data in _parts(_boundary(content_type), body):
        name, filename, part_type = _disposition(head)
        if name is None:
            continue
        if filename is not None:
            files.append(Upload(name, filename, len(data), part_type))
        else:
            fields[name] = data.decode("utf-8", "replace")
    return Form(fields=fields, files=tuple(files))


def _boundary(content_type: str) -> bytes:
    """The boundary a multipart `Content-Type` names. Raises ApiProblem(400)."""
    header = Message()
    header["Content-Type"] = content_type
    boundary = header.get_boundary()
    if not boundary or len(boundary) > 70:
        raise ApiProblem(400, "The multipart body could not be read: no valid boundary")
    return boundary.encode("latin-1", "replace")


def _parts(boundary: bytes, body: bytes) -> list[tuple[bytes, bytes]]:
    """Each part's header block and content. One pass over the body (split at the
    delimiters, never line by line), so a large or hostile body costs little. Raises
    ApiProblem(400) for a body that is not multipart or has more than MAX_PARTS parts."""
    delimiter = b"\r\n--" + boundary
    # The preamble, at most MAX_PARTS parts, and what follows the closing delimiter ("--").
    pieces = (b"\r\n" + body).split(delimiter, MAX_PARTS + 1)
    if not pieces[-1].startswith(b"--"):
        if len(pieces) == MAX_PARTS + 2:
            raise ApiProblem(400, f"The form may not have more than {MAX_PARTS} parts")
        raise ApiProblem(400, "The multipart body could not be read")
    parts = []
    for piece in pieces[1:-1]:
        _padding, newline, rest = piece.partition(b"\r\n")
        head, separator, data = rest.partition(b"\r\n\r\n")
        if not newline or not separator or len(head) > MAX_PART_HEAD:
            raise ApiProblem(400, "The multipart body could not be read")
        parts.append((head, data))
    return parts


def _disposition(head: bytes) -> tuple[str | None, str | None, str]:
    """A part's field name, file name (None when it is a text field) and content type."""
    headers = Message()
    for line in head.decode("utf-8", "replace").split("\r\n"):
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip()] = value.strip()
    field_name = headers.get_param("name", header="content-disposition")
    return (field_name if isinstance(field_name, str) else None, headers.get_filename(),
            headers.get_content_type() if "content-type" in headers else "text/plain")


def _kind(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _urlencoded(body: bytes) -> dict[str, str]:
    try:
        pairs = parse_qs(body.decode("utf-8"), keep_blank_values=True,
                         max_num_fields=MAX_PARTS)
    except UnicodeDecodeError:
        raise ApiProblem(400, "The form body is not valid UTF-8") from None
    except ValueError:
        raise ApiProblem(400, f"The form may not have more than {MAX_PARTS} fields") from None
    return {key: values[-1] for key, values in pairs.items()}
