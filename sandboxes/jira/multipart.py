"""multipart.py - a small, bounded multipart/form-data parser (RFC 7578) for attachment uploads.

parse() takes the whole body (already read and size-checked by the HTTP layer) and the
Content-Type value, and returns its parts. It refuses, with MultipartError, what a careful
server refuses: no or bad boundary, a missing closing delimiter, part headers that are too
long or too many, too many parts, a part without a form-data name. The stdlib cgi module is
deprecated and email.parser buffers and guesses; this does neither. Stateless; thread-safe."""
import re
from urllib.parse import unquote

MAX_PARTS = 50
MAX_PART_HEADER_BYTES = 8192
MAX_PART_HEADERS = 20
BOUNDARY = re.compile(r"^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]\Z")


class MultipartError(ValueError):
    """A body that is not acceptable multipart/form-data; str(self) says why."""


class Part:
    def __init__(self, name, filename, content_type, data):
        self.name = name
        self.filename = filename
        self.content_type = content_type
        self.data = data


def _params(value):
    """The value and the parameters of a header like 'form-data; name="file"; filename=x'."""
    rest = ";" + value.split(";", 1)[1] if ";" in value else ""
    pieces = re.findall(r';\s*([^=;\s]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)', rest)
    params = {}
    for key, raw in pieces:
        raw = raw.strip()
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        params[key.lower()] = raw
    return value.split(";", 1)[0].strip().lower(), params


def boundary_of(content_type):
    """The boundary of a multipart/form-data Content-Type value. Raises MultipartError."""
    kind, params = _params(content_type or "")
    if kind != "multipart/form-data":
        raise MultipartError("Content-Type must be multipart/form-data")
    boundary = params.get("boundary", "")
    if not BOUNDARY.match(boundary):
        raise MultipartError("multipart boundary is missing or invalid")
    return boundary.encode("ascii")


def parse(body, content_type):
    """The parts of a multipart/form-data body (bytes). Raises MultipartError."""
    delimiter = b"--" + boundary_of(content_type)
    if body.startswith(delimiter):
        pos = len(delimiter)
    else:
        start = body.find(b"\r\n" + delimiter)
        if start < 0:
            raise MultipartError("multipart body has no opening boundary")
        pos = start + 2 + len(delimiter)
    parts = []
    while True:
        if body[pos:pos + 2] == b"--":
            return parts
        line_end = body.find(b"\r\n", pos)
        if line_end < 0 or body[pos:line_end].strip(b" \t"):
            raise MultipartError("multipart boundary is not followed by a line break")
        pos = line_end + 2
        if len(parts) >= MAX_PARTS:
            raise MultipartError(f"more than {MAX_PARTS} parts")
        head_end = body.find(b"\r\n\r\n", pos, pos + MAX_PART_HEADER_BYTES + 4)
        if body.startswith(b"\r\n", pos):
            head_end, head = pos - 2, b""
        elif head_end < 0:
            raise MultipartError("part headers are missing, unterminated or too long")
        else:
            head = body[pos:head_end]
        headers = {}
        for line in head.split(b"\r\n") if head else []:
            name, sep, value = line.partition(b":")
            if not sep or not name.strip():
                raise MultipartError("malformed part header")
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("utf-8",
                                                                                   "replace")
            if len(headers) > MAX_PART_HEADERS:
                raise MultipartError("too many part headers")
        data_start = head_end + 4
        data_end = body.find(b"\r\n" + delimiter, data_start)
        if data_end < 0:
            raise MultipartError("multipart body has no closing boundary")
        disposition, params = _params(headers.get("content-disposition", ""))
        if disposition != "form-data" or not params.get("name"):
            raise MultipartError("every part needs Content-Disposition: form-data with a name")
        filename = params.get("filename")
        star = params.get("filename*")
        if star and "''" in star:
            filename = unquote(star.split("''", 1)[1], errors="replace")
        if filename is not None:
            filename = re.split(r"[\\/]", filename)[-1].strip()
        parts.append(Part(params["name"], filename,
                          headers.get("content-type", "application/octet-stream"),
                          body[data_start:data_end]))
        pos = data_end + 2 + len(delimiter)
