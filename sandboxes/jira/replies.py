"""replies.py - what a handler answers: a Reply (status, body, headers), and ApiError for the
error replies in Jira's shapes (ErrorCollection for the platform API, JSM's errorMessage for
the service desk API). Plain data; no I/O."""
import json

JSON_TYPE = "application/json;charset=UTF-8"


class Reply:
    """An HTTP reply. body is JSON-able data (sent as JSON), bytes (sent as is with
    content_type) or None (no body)."""

    def __init__(self, status, body=None, headers=None, content_type=JSON_TYPE):
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        self.content_type = content_type

    @property
    def is_json(self):
        return self.body is not None and not isinstance(self.body, bytes)

    def encode(self):
        """The body as bytes (b"" for none)."""
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class ApiError(Exception):
    """Raised by handlers to answer with an error reply."""

    def __init__(self, reply):
        super().__init__(reply.status)
        self.reply = reply


def error_collection(status, messages=(), errors=None, headers=None):
    """Jira's ErrorCollection reply: {"errorMessages": [...], "errors": {...}}."""
    return Reply(status, {"errorMessages": list(messages), "errors": dict(errors or {})},
                 headers=headers)


def fail(status, *messages, errors=None, headers=None):
    """Raises ApiError with an ErrorCollection."""
    raise ApiError(error_collection(status, messages, errors, headers))
