"""Which outcomes a response cache keeps, and how an entry is stored: one rule for every store.

Answers are kept for ``[cache].ttl``. Final client errors (400, 404, 405, 410, 414, 422: asking
again gives the same answer) are kept for the shorter ``negative_ttl``. Anything that might succeed
later is never kept: 401/403 (credentials), 408/425/429 (timing), every 5xx, timeouts, connection
failures, and answers Enrich could not use.

An answer is stored as its body came (``Outcome.raw``), so what a later job reads is what the API
sent; an answer with no body of its own (an item of a bulk answer) is encoded again, and one that
cannot be (nested deeper than orjson writes, integers beyond 64 bits) is not stored, but counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum

import orjson

from service.calling.answers import encode_json, parse_json
from service.calling.outcome import Outcome
from service.calling.requests import Key
from service.errors import ErrorClass

NEGATIVE_STATUSES = frozenset({400, 404, 405, 410, 414, 422})


class EntryKind(IntEnum):
    """What a cache entry holds; the value is what the stores write."""

    ANSWER = 0
    CLIENT_ERROR = 1


Entry = tuple[str, EntryKind, bytes]  # the key's text, what the entry holds, its body


class UnstorableAnswerError(Exception):
    """An answer the cache keeps by rule but cannot encode."""


def entry_for(outcome: Outcome) -> tuple[EntryKind, bytes] | None:
    """The entry to store for ``outcome`` (its kind and body), or None when it is not kept.
    ``UnstorableAnswerError`` for an answer that is kept by rule but cannot be encoded."""
    if outcome.error is None:
        if outcome.raw is not None:
            return EntryKind.ANSWER, outcome.raw
        try:
            return EntryKind.ANSWER, encode_json(outcome.answer)
        except orjson.JSONEncodeError:
            raise UnstorableAnswerError from None
    if outcome.error is ErrorClass.HTTP_4XX and outcome.status in NEGATIVE_STATUSES:
        return EntryKind.CLIENT_ERROR, (outcome.message or "").encode()
    return None


def entries_for(outcomes: Iterable[tuple[Key, Outcome]]) -> tuple[list[Entry], int]:
    """The entries to store for ``outcomes``, and how many answers could not be stored."""
    entries: list[Entry] = []
    unstorable = 0
    for key, outcome in outcomes:
        try:
            entry = entry_for(outcome)
        except UnstorableAnswerError:
            unstorable += 1
            continue
        if entry is not None:
            entries.append((key_text(key), *entry))
    return entries, unstorable


def outcome_of(kind: int, body: bytes) -> Outcome | None:
    """The outcome a stored entry stands for (no request was made for it: 0 attempts); None for
    an entry that no longer reads as JSON (then it is asked for again)."""
    if kind == EntryKind.ANSWER:
        try:
            return Outcome(parse_json(body), 0, raw=body)
        except orjson.JSONDecodeError:
            return None
    return Outcome(None, 0, ErrorClass.HTTP_4XX, f"{body.decode(errors='replace')} (cached)")


def key_text(key: Key) -> str:
    """A key's stable text form, as stored."""
    return orjson.dumps(list(key), default=str).decode()
