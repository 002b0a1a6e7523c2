"""What an answer from the API means: its JSON, or a ``CallError`` saying why it cannot be used.

A pure function of the status and the body, so every sender classifies answers alike and the
rules are tested without a server. Beside it, ``service.errors`` draws the tree of what it raises.
"""

from __future__ import annotations

from typing import Any

import orjson

from service.calling.transport import RawResponse
from service.errors import CallError, ErrorClass


def answer_of(response: RawResponse) -> Any:
    """The parsed JSON of a 2xx answer (None for an empty body). Raises ``CallError``: 429 is
    ``rate_limited``, 5xx ``http_5xx``, any other status ``http_4xx``, a 2xx body that is not JSON
    ``invalid_json``."""
    status = response.status
    if 200 <= status < 300:
        body = response.body
        try:
            return orjson.loads(body) if body.strip() else None
        except orjson.JSONDecodeError as exc:
            # Raised where it is made, never held in a local: a local would tie the error to this
            # frame through its traceback, a reference cycle per failed attempt.
            raise CallError(ErrorClass.INVALID_JSON, f"answer is not JSON ({exc})", status=status) from None
    if status == 429:
        error_class = ErrorClass.RATE_LIMITED
    elif status >= 500:
        error_class = ErrorClass.HTTP_5XX
    else:
        error_class = ErrorClass.HTTP_4XX
    raise CallError(
        error_class, http_message(status, response.body), status=status, retry_after=response.retry_after
    )


def http_message(status: int, body: bytes) -> str:
    """``HTTP 503: <the start of the body>``, on one line, at most about 120 characters."""
    snippet = body[:200].decode("utf-8", "replace").strip().replace("\n", " ")
    if len(snippet) > 120:
        snippet = snippet[:117] + "..."
    return f"HTTP {status}: {snippet}" if snippet else f"HTTP {status}"
