"""The final result of the calls for one key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from service.errors import CallError, ErrorClass
from service.redact import shorten


class Outcome:
    """The final result for one key: the JSON answer, or an error class and a short message.

    ``raw`` is the answer's body as received, when the answer is one whole body (one key per
    request): the cache keeps it as it came, rather than re-encoding the parsed document.
    """

    __slots__ = ("answer", "attempts", "error", "message", "raw", "status")

    def __init__(
        self,
        answer: Any,
        attempts: int,
        error: ErrorClass | None = None,
        message: str | None = None,
        status: int | None = None,
        raw: bytes | None = None,
    ) -> None:
        self.answer = answer
        self.attempts = attempts
        self.error = error
        self.message = message
        self.status = status
        self.raw = raw

    @property
    def ok(self) -> bool:
        """True when the key got an answer."""
        return self.error is None

    def __repr__(self) -> str:
        return f"Outcome(error={self.error}, attempts={self.attempts}, message={self.message!r})"


def failed_outcome(error: CallError, attempts: int, redact: Callable[[str], str]) -> Outcome:
    """The final outcome of a key whose last attempt failed with ``error``: its message redacted,
    then shortened to one line."""
    return Outcome(None, attempts, error.error_class, shorten(redact(error.message)), error.status)
