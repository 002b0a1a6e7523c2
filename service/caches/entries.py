"""Which outcomes a response cache keeps, and how an entry is stored: one rule for every store.

Answers are kept for ``[cache].ttl``. Final client errors (400, 404, 405, 410, 414, 422: asking
again gives the same answer) are kept for the shorter ``negative_ttl``. Anything that might succeed
later is never kept: 401/403 (credentials), 408/425/429 (timing), every 5xx, timeouts, connection
failures, and answers Enrich could not use.
"""

from __future__ import annotations

from enum import IntEnum

import orjson

from service.calling.outcome import Outcome
from service.calling.requests import Key
from service.errors import ErrorClass

NEGATIVE_STATUSES = frozenset({400, 404, 405, 410, 414, 422})


class EntryKind(IntEnum):
    """What a cache entry holds; the value is what the stores write."""

    ANSWER = 0
    CLIENT_ERROR = 1


def entry_for(outcome: Outcome) -> tuple[EntryKind, bytes] | None:
    """The entry to store for ``outcome`` (its kind and body), or None when it is not kept."""
    if outcome.error is None:
        return EntryKind.ANSWER, orjson.dumps(outcome.answer)
    if outcome.error is ErrorClass.HTTP_4XX and outcome.status in NEGATIVE_STATUSES:
        return EntryKind.CLIENT_ERROR, (outcome.message or "").encode()
    return None


def outcome_of(kind: int, body: bytes) -> Outcome:
    """The outcome a stored entry stands for (no request was made for it: 0 attempts)."""
    if kind == EntryKind.ANSWER:
        return Outcome(orjson.loads(body), 0)
    return Outcome(None, 0, ErrorClass.HTTP_4XX, f"{body.decode()} (cached)")


def key_text(key: Key) -> str:
    """A key's stable text form, as stored."""
    return orjson.dumps(list(key), default=str).decode()
