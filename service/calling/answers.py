"""What an answer from the API means: its JSON, or a ``CallError`` saying why it cannot be used.

A pure function of the status and the body, so every sender classifies answers alike and the
rules are tested without a server. Beside it, ``service.errors`` draws the tree of what it raises.

orjson reads integers up to 64 bits exactly and turns larger ones into floats. ``parse_exact``
reads a body with Python's own parser instead, exact at any size and slower: used where a value
shows it may have lost digits (``service.tables.mapping``), or a bulk answer holds a run of
digits long enough to be such an integer (``may_hold_big_integers``, a cheap scan).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import orjson

from service.calling.sending import RawResponse
from service.errors import CallError, ErrorClass

_BOM = b"\xef\xbb\xbf"


def answer_of(response: RawResponse) -> Any:
    """The parsed JSON of a 2xx answer (None for an empty body). Raises ``CallError``: 429 is
    ``rate_limited``, 5xx ``http_5xx``, any other status ``http_4xx``, a 2xx body that is not JSON
    ``invalid_json``."""
    status = response.status
    if 200 <= status < 300:
        try:
            return parse_json(response.body)
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


def encode_json(document: Any) -> bytes:
    """``document`` as JSON bytes of their own size, for keeping (``orjson.JSONEncodeError`` if it
    cannot be written). orjson's own result sits in a buffer of at least 4 KiB (3.12 on), so a
    job's buffered answers of a few hundred bytes each took 4 KiB each: 130 MB for 31,000 of them
    waiting for the answer log's commit."""
    return bytes(memoryview(orjson.dumps(document)))


def parse_json(body: bytes) -> Any:
    """The JSON document of a body: None for a blank one, and a leading UTF-8 byte order mark
    ignored (RFC 8259 8.1 allows it); ``orjson.JSONDecodeError`` for anything else not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:  # the rare cases, checked only once orjson refused
        if not body.strip():
            return None
        if body.startswith(_BOM):
            return parse_json(body[len(_BOM) :])
        raise


# Enough of a body to show its start and to find whole any secret that starts within it.
_SNIPPET_BYTES = 4096


def http_message(status: int, body: bytes) -> str:
    """``HTTP 503: <the start of the body>``, on one line: long, until redacted and shortened
    (``failed_outcome``), so that a cut never leaves part of a secret behind."""
    snippet = " ".join(body[:_SNIPPET_BYTES].decode("utf-8", "replace").split())
    return f"HTTP {status}: {snippet}" if snippet else f"HTTP {status}"


_DIGITS = bytes(0x31 if 0x30 <= byte <= 0x39 else 0x30 for byte in range(256))  # digit -> "1"
# 19 digits: every integer orjson may not keep (below -2**63, or from 2**64) has at least as many.
_LONG_DIGIT_RUN = b"1" * 19


def may_hold_big_integers(body: bytes) -> bool:
    """Whether ``body`` holds a run of digits long enough to be an integer beyond 64 bits."""
    return _LONG_DIGIT_RUN in body.translate(_DIGITS)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_exact(body: bytes) -> Any:
    """The JSON document of ``body`` with every number exact (integers at any size); None for a
    blank body; ``ValueError`` (or ``RecursionError``) where orjson would refuse it too."""
    text = body.decode("utf-8").removeprefix("\ufeff")
    return json.loads(text, parse_constant=_no_constants) if text.strip() else None


def exact_reader(body: bytes | None) -> Callable[[], Any] | None:
    """What reads ``body`` again by ``parse_exact`` when called (None where it does not read: it is
    then as orjson has it); None without a body (a bulk result is made exact with its chunk)."""
    return None if body is None else functools.partial(_exact_or_none, body)


def _exact_or_none(body: bytes) -> Any:
    try:
        return parse_exact(body)
    except (ValueError, RecursionError):
        return None
