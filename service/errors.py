"""The one exception tree of Enrich, and the per-row error classes.

    EnrichError
    ├── SpecError            the spec file is unreadable or invalid (names the field, or the TOML line)
    ├── InputError           the input does not match the spec (missing column, unusable type, bad file)
    ├── CacheUnavailableError  the response cache named (a Redis) cannot be reached at the start
    ├── CircuitOpenError     the API kept failing: the job stopped instead of hammering it
    └── CallError            one request failed (carries the error class, status, and Retry-After)

A ``CallError`` never escapes the engine: it becomes the row's ``_enrich_error`` and
``_enrich_message``. Third-party exceptions (aiohttp, httpx) are translated into ``CallError`` in
exactly one place, ``service.calling.transport``, and an answer the API gave is classified in
exactly one, ``service.calling.answers``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorClass(StrEnum):
    """Why a row failed; the value is what ``_enrich_error`` holds."""

    HTTP_4XX = "http_4xx"
    HTTP_5XX = "http_5xx"
    RATE_LIMITED = "rate_limited"
    TIMEOUT = "timeout"
    CONNECT = "connect"
    INVALID_JSON = "invalid_json"
    MAPPING = "mapping"
    CIRCUIT_OPEN = "circuit_open"
    # An answer over [api].max_response_bytes, as received or decompressed: final, never cached.
    TOO_LARGE = "too_large"
    # A 3xx the [api].redirects policy does not follow (final: the next attempt would get it too).
    REDIRECT = "redirect"
    # Beyond the HTTP and mapping classes: a null key, or an empty value in a URL path segment, cannot be
    # requested at all; calling it a mapping or HTTP error would send users looking in the wrong place.
    INVALID_KEY = "invalid_key"
    # A 2xx answer that says it failed ([api].error_when), or still says "not yet" after the last
    # attempt ([retry].retry_when): final, never cached, and no sign of an API that is down.
    API_ERROR = "api_error"


# No answer came at all: worth another attempt (``service.calling.retry_policy``), and, in a row,
# the sign of an API that is down (``service.calling.circuit``).
NO_ANSWER = frozenset({ErrorClass.CONNECT, ErrorClass.TIMEOUT})


class EnrichError(Exception):
    """Base of every error Enrich raises on purpose."""


class SpecError(EnrichError):
    """The spec is invalid. ``field`` is the dotted path of the offending field, when known."""

    def __init__(self, message: str, *, field: str | None = None, line: int | None = None) -> None:
        self.field = field
        self.line = line
        where = ""
        if field:
            where = f"{field}: "
        elif line is not None:
            where = f"line {line}: "
        super().__init__(f"{where}{message}")


class InputError(EnrichError):
    """The input data cannot be enriched with this spec (missing column, unusable type, bad file)."""


class CacheUnavailableError(EnrichError):
    """The response cache the job was given cannot be reached (named without its password)."""


class CircuitOpenError(EnrichError):
    """The API kept failing, so the job stopped.

    ``partial`` is the enrich result for the rows handled so far (rows never requested carry
    ``circuit_open``), when the error comes out of ``enrich_frame``.
    """

    def __init__(self, message: str, partial: Any = None) -> None:
        super().__init__(message)
        self.partial = partial


class CallError(EnrichError):
    """One attempt at a request failed: why (``error_class``, ``status``, ``Retry-After``, whether the
    retry condition already chose to retry its answer), and, once
    the caller knows them, the ``key`` it was for and its ``url`` with secrets redacted.

    The message is short; callers redact it before it reaches a row, a log or a file.
    """

    def __init__(
        self,
        error_class: ErrorClass,
        message: str,
        *,
        status: int | None = None,
        retry_after: str | None = None,
        key: tuple[Any, ...] | None = None,
        url: str | None = None,
        retry_chosen: bool = False,
    ) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.message = message
        self.status = status
        self.retry_after = retry_after
        # The retry condition read this answer and chose another attempt ([retry].retry_when).
        self.retry_chosen = retry_chosen
        self.key = key
        self.url = url


def error_leaves(exc: BaseException) -> list[BaseException]:
    """The errors ``exc`` holds, exception groups (task groups raise them, one error per task)
    opened all the way down; ``[exc]`` for an error that is not a group."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in error_leaves(inner)]
    return [exc]
