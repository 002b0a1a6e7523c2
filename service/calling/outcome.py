"""The final result of the calls for one key."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson

from service.calling.answers import encode_json, exact_reader, parse_json
from service.errors import CallError, ErrorClass
from service.redact import shorten
from service.tables.mapping import AnswerMapper, MappedRow


class Outcome:
    """The final result for one key: the JSON answer, or an error class and a short message.

    ``raw`` is the answer's body: as received for one key per request (the cache keeps it as it
    came, rather than re-encoding the parsed document), or a bulk result's own, written as it
    arrived, when something keeps it. ``row`` is the answer already mapped to the output columns
    (``AnswerMapper.row``; ``rows`` for a bulk answer's results), when the caller mapped it as it
    arrived: then the parsed document is not kept, and ``answer`` reads ``raw`` again if asked
    (None when no body was kept).
    """

    __slots__ = ("_answer", "attempts", "error", "message", "raw", "row", "status")

    def __init__(
        self,
        answer: Any,
        attempts: int,
        error: ErrorClass | None = None,
        message: str | None = None,
        status: int | None = None,
        raw: bytes | None = None,
        row: MappedRow | None = None,
    ) -> None:
        self._answer = answer
        self.attempts = attempts
        self.error = error
        self.message = message
        self.status = status
        self.raw = raw
        self.row = row

    @property
    def answer(self) -> Any:
        """The parsed JSON answer (None for a failure, and for a bulk result mapped as it arrived
        when nothing kept its body: its ``row`` is what there is)."""
        if self._answer is None and self.row is not None and self.raw is not None:
            return parse_json(self.raw)
        return self._answer

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


class AnswerOutcomes:
    """Keys' outcomes made of their answers as they arrive: mapped to the output columns by
    ``mapper``, their parsed documents let go. A bulk result's own body is written only when
    something keeps it (``keep_bodies``: the cache, the answer log); else its outcome holds its
    row alone."""

    __slots__ = ("_keep_bodies", "_mapper")

    def __init__(self, mapper: AnswerMapper, *, keep_bodies: bool) -> None:
        self._mapper = mapper
        self._keep_bodies = keep_bodies

    def of_answer(self, answer: Any, attempts: int, raw: bytes) -> Outcome:
        """A key's outcome of its ``answer``; ``raw``, the body it came in, is read again exactly
        where a value may have lost digits."""
        return Outcome(None, attempts, raw=raw, row=self._mapper.row(answer, exact_reader(raw)))

    def of_results(self, results: Sequence[Any], attempts: int) -> list[Outcome]:
        """The outcomes of a bulk answer's ``results`` (one per key, made exact with their
        chunk), mapped together."""
        rows = self._mapper.rows(results)
        if not self._keep_bodies:
            return [Outcome(None, attempts, row=row) for row in rows]
        return [_with_body(result, attempts, row) for result, row in zip(results, rows, strict=True)]


def _with_body(result: Any, attempts: int, row: MappedRow) -> Outcome:
    try:
        return Outcome(None, attempts, raw=encode_json(result), row=row)
    except orjson.JSONEncodeError:  # deeper than orjson writes, or an integer beyond 64 bits
        return Outcome(result, attempts, row=row)
