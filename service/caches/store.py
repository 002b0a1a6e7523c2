"""The response cache's one protocol, its statistics, and the namespace a spec's answers go in.

A cache is shared by every job whose spec makes the same requests: its namespace is a digest of
what decides an answer (``Spec.answer_identity``: the request as written, secrets unresolved, and
the key columns), so two specs calling the same API the same way share answers, and a changed
request does not. Store methods block: jobs call them from a worker thread, a frame at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from service.caches.entries import Entry, entries_for
from service.calling.outcome import Outcome
from service.calling.requests import Key
from service.spec import Spec, digest


@dataclass(frozen=True, slots=True)
class CacheStatistics:
    """What a cache holds."""

    path: str
    entries: int
    answers: int
    negative: int
    expired: int
    namespaces: int
    size_bytes: int


class AnswerStore(Protocol):
    """Where answers are cached: a SQLite file or Redis. Blocking methods."""

    @property
    def where(self) -> str:
        """The store's location, fit to print (no password)."""
        ...

    def get_many(self, keys: Sequence[Key]) -> dict[Key, Outcome]:
        """Unexpired outcomes for those of ``keys`` that are cached."""
        ...

    def put_entries(self, entries: Sequence[Entry]) -> None:
        """Store ``entries`` (made by ``service.caches.entries.entries_for``)."""
        ...

    def statistics(self) -> CacheStatistics:
        """Counts over the whole store (every namespace)."""
        ...

    def clear(self, *, expired_only: bool = False) -> int:
        """Delete every entry (or only expired ones); returns how many."""
        ...

    def close(self) -> None:
        """Release the store's connection."""
        ...


@dataclass(frozen=True, slots=True)
class Stored:
    """What storing a batch of outcomes did."""

    entries: int  # answers and client errors written
    unstorable: int  # answers kept by rule that could not be encoded (so not stored)


def store_outcomes(store: AnswerStore, outcomes: Iterable[tuple[Key, Outcome]]) -> Stored:
    """Store the cacheable ones among ``outcomes`` in ``store`` (blocking)."""
    entries, unstorable = entries_for(outcomes)
    if entries:
        store.put_entries(entries)
    return Stored(len(entries), unstorable)


def cache_namespace(spec: Spec) -> str:
    """The namespace of ``spec``'s answers in a shared cache."""
    return digest(spec.answer_identity())[:32]
