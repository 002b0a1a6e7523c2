"""Where a key's outcome may already be, before any request: the job's answer log, then the
response cache; and where a new outcome goes: the log at once, the cache a frame at a time."""

from __future__ import annotations

from collections.abc import Sequence

import anyio.to_thread

from service.caches.answer_log import AnswerLog
from service.caches.store import AnswerStore, store_outcomes
from service.calling.outcome import Outcome
from service.calling.requests import Key
from service.stats import StatsRecorder


class KnownAnswers:
    """A caller's answer log and response cache (either may be None); what they answer is counted
    in the asking call's ``StatsRecorder``."""

    def __init__(self, log: AnswerLog | None, cache: AnswerStore | None) -> None:
        self._log = log
        self._cache = cache

    @property
    def keeps_bodies(self) -> bool:
        """Whether an answer's body is kept (in the log or the cache), so must be at hand."""
        return self._log is not None or self._cache is not None

    async def lookup(self, keys: Sequence[Key], stats: StatsRecorder) -> dict[Key, Outcome]:
        """The outcomes of those of ``keys`` this job already has, or the cache holds."""
        known: dict[Key, Outcome] = {}
        log, cache = self._log, self._cache
        if log is not None and keys:
            known = await anyio.to_thread.run_sync(log.get_many, keys)
            stats.answers_reused += len(known)
        if cache is not None and len(known) < len(keys):
            asked = [key for key in keys if key not in known] if known else keys
            hits = await anyio.to_thread.run_sync(cache.get_many, asked)
            stats.cache_hits += len(hits)
            for key, outcome in hits.items():
                self.remember(key, outcome)  # the job's rows then stay the same if the cache expires
            known.update(hits)
        return known

    def remember(self, key: Key, outcome: Outcome) -> None:
        """Log ``key``'s final outcome for the rest of the job (a no-op without a log)."""
        if self._log is not None:
            self._log.add(key, outcome)

    async def store(self, fetched: dict[Key, Outcome], stats: StatsRecorder) -> None:
        """Put the cacheable ones of ``fetched`` in the response cache (without one, nothing)."""
        cache = self._cache
        if cache is not None and fetched:
            stored = await anyio.to_thread.run_sync(store_outcomes, cache, list(fetched.items()))
            stats.uncacheable += stored.unstorable
