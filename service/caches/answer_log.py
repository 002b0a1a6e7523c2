"""A job's answer log: every final outcome of the job, written as it arrives, read before any request.

It makes "every distinct key is requested once per job" hold with or without the shared response
cache, across batches, processes (Dask workers on one machine share the file) and kills. It is
the job's, not the cache's: it keeps every final outcome (failures too, with their attempts), so
a resumed job writes exactly the rows an uninterrupted one would have; and it has no expiry.

Outcomes are buffered and committed together (``FLUSH_EVERY_S`` or ``FLUSH_EVERY_ANSWERS``,
whichever comes first): a kill loses the requests in flight and the last fraction of a second,
and the hot path pays a list append. A buffered outcome is already visible to lookups, and the
``RECENT_ANSWERS`` last committed stay in memory for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sqlite3
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.to_thread
import orjson

from service.caches.answer_log_file import AnswerLogFile, LogRow, count_keys
from service.caches.entries import key_text
from service.calling.answers import encode_json, parse_json
from service.calling.outcome import Outcome
from service.calling.requests import Key
from service.errors import ErrorClass

FLUSH_EVERY_S = 0.25
FLUSH_EVERY_ANSWERS = 1000
# Committed outcomes kept in memory as well, the newest this many: a key repeated across batches
# (1M rows of 20,000 keys) is answered without SQLite or parsing its JSON again (8.0 s -> 6.0 s
# for that job, +9 MB).
RECENT_ANSWERS = 20_000
# Not an answer: the breaker stopped the job before this key was asked (or asked again).
_NOT_FINAL = frozenset({ErrorClass.CIRCUIT_OPEN})


class AnswerLog:
    """The log file; ``add`` is for the event loop, every other method blocks (use a thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()  # the buffers: held for microseconds, on the event loop too
        self._pending: dict[str, tuple[Key, Outcome]] = {}
        self._flushing: dict[str, tuple[Key, Outcome]] = {}  # visible until committed
        self._recent: dict[str, Outcome] = {}
        self._wake: anyio.Event | None = None
        try:
            self._file = AnswerLogFile(path)  # merges what a killed run left: a write
        except sqlite3.Error as exc:  # a full disk, a read-only folder, an I/O error
            raise OSError(f"{path}: cannot open the job's answer log ({exc})") from None
        self.unlogged = 0  # answers that could not be encoded (asked again after a kill)
        self._failure: OSError | None = None

    def add(self, key: Key, outcome: Outcome) -> None:
        """Log ``key``'s final outcome (committed with the next flush; visible to lookups now)."""
        if outcome.error in _NOT_FINAL:
            return
        if self._failure is not None:  # the log cannot be written: the job must not go on
            raise self._failure
        with self._lock:
            pending = self._pending
            pending[key_text(key)] = (key, outcome)
            full = len(pending) >= FLUSH_EVERY_ANSWERS
        if full and self._wake is not None:
            self._wake.set()

    def get_many(self, keys: Sequence[Key]) -> dict[Key, Outcome]:
        """The logged outcomes of those of ``keys`` this job already has."""
        found: dict[Key, Outcome] = {}
        by_text: dict[str, Key] = {}
        with self._lock:
            pending, flushing = self._pending, self._flushing
            for key in keys:
                text = key_text(key)
                logged = pending.get(text) or flushing.get(text)
                if logged is not None:
                    found[key] = logged[1]
                elif (recent := self._recent.get(text)) is not None:
                    found[key] = recent
                else:
                    by_text[text] = key
        if by_text:
            try:
                rows = self._file.find(list(by_text))
            except sqlite3.Error as exc:  # an I/O error, a lock held past the timeout
                raise OSError(f"{self.path}: cannot read the job's answer log ({exc})") from None
            for row in rows:
                outcome = _outcome_of(row)
                if outcome is not None:
                    found[by_text[row[0]]] = outcome
        return found

    def flush(self) -> None:
        """Commit every buffered outcome."""
        with self._lock:
            flushing = self._flushing = self._pending
            self._pending = {}
        if not flushing:
            return
        rows = []
        for text, (_, outcome) in flushing.items():
            row = _row_of(text, outcome)
            if row is None:
                self.unlogged += 1
            else:
                rows.append(row)
        try:
            self._file.append(rows)
        except sqlite3.Error as exc:  # a full disk, a read-only folder, an I/O error
            raise OSError(f"{self.path}: cannot write the job's answer log ({exc})") from None
        with self._lock:
            recent = self._recent
            recent.update((text, outcome) for text, (_, outcome) in flushing.items())
            for text in list(itertools.islice(recent, max(0, len(recent) - RECENT_ANSWERS))):
                del recent[text]
            self._flushing = {}

    async def flush_regularly(self) -> None:
        """Flush every ``FLUSH_EVERY_S``, or as soon as ``FLUSH_EVERY_ANSWERS`` wait; forever."""
        while True:
            self._wake = anyio.Event()
            with anyio.move_on_after(FLUSH_EVERY_S):
                await self._wake.wait()
            try:
                await anyio.to_thread.run_sync(self.flush)
            except OSError as exc:  # raised to the job by the next add: it stops there
                self._failure = exc
                return

    def close(self) -> None:
        """Flush, then close the file."""
        self.flush()
        self._file.close()


@asynccontextmanager
async def answer_log_open(path: Path) -> AsyncIterator[AnswerLog]:
    """The log at ``path``, flushed regularly while the block runs and once more at its end (also
    when it ends with an error: what was answered stays answered)."""
    log = await anyio.to_thread.run_sync(AnswerLog, path)
    # A task rather than a task group: the block's own errors must come out unwrapped.
    flusher = asyncio.get_running_loop().create_task(log.flush_regularly())
    try:
        yield log
    finally:
        flusher.cancel()
        with anyio.CancelScope(shield=True):
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
            await anyio.to_thread.run_sync(log.close)


def logged_keys(path: Path) -> int | None:
    """How many distinct keys the answer log at ``path`` holds (every key a job settled, in any of
    its runs); None when there is no log there."""
    if not path.exists():
        return None
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60)
    try:
        return count_keys(db)
    except sqlite3.Error:  # no table yet (nothing was logged), or not readable: not known
        return None
    finally:
        db.close()


def _row_of(text: str, outcome: Outcome) -> LogRow | None:
    body = outcome.raw
    if outcome.error is None and body is None:
        try:
            body = encode_json(outcome.answer)
        except orjson.JSONEncodeError:  # deeper than orjson writes: asked again after a kill
            return None
    error = None if outcome.error is None else outcome.error.value
    return (text, outcome.attempts, error, outcome.status, outcome.message, body)


def _outcome_of(row: LogRow) -> Outcome | None:
    _, attempts, error, status, message, body = row
    if error is not None:
        return Outcome(None, attempts, ErrorClass(error), message, status)
    assert body is not None
    try:
        return Outcome(parse_json(body), attempts, status=status, raw=body)
    except orjson.JSONDecodeError:
        return None
