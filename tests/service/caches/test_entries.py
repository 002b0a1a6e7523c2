"""One rule for what a response cache keeps, whichever store: answers, and final client errors."""

from __future__ import annotations

import datetime as dt
import tracemalloc
from decimal import Decimal

import pytest

from service import ErrorClass, Outcome
from service.caches.entries import (
    NEGATIVE_STATUSES,
    EntryKind,
    UnstorableAnswerError,
    entries_for,
    entry_for,
    key_text,
    outcome_of,
)


def test_answers_are_kept_and_read_back_as_they_were() -> None:
    """An answer is stored as its JSON and comes back equal, with no attempt counted."""
    entry = entry_for(Outcome({"country": "DE", "n": [1, None]}, 3))
    assert entry is not None
    kind, body = entry
    assert kind is EntryKind.ANSWER
    back = outcome_of(kind, body)
    assert back is not None
    assert (back.answer, back.attempts, back.error) == ({"country": "DE", "n": [1, None]}, 0, None)


def test_exactly_the_final_client_errors_are_kept() -> None:
    """Of every status 400-599, only 400, 404, 405, 410, 414 and 422 are remembered: asking again
    would get the same answer. 401/403 (credentials), 408/425/429 (timing) and 5xx may change."""
    kept = {
        status
        for status in range(400, 600)
        if entry_for(Outcome(None, 1, ErrorClass.HTTP_4XX, f"HTTP {status}", status)) is not None
    }
    assert kept == {400, 404, 405, 410, 414, 422} == NEGATIVE_STATUSES


def test_a_kept_client_error_reads_back_as_cached() -> None:
    """A remembered 404 comes back as http_4xx with its message marked as cached."""
    entry = entry_for(Outcome(None, 1, ErrorClass.HTTP_4XX, "HTTP 404: no such key", 404))
    assert entry is not None
    back = outcome_of(*entry)
    assert back is not None
    assert (back.error, back.message, back.attempts) == (
        ErrorClass.HTTP_4XX,
        "HTTP 404: no such key (cached)",
        0,
    )


def test_failures_that_may_pass_later_are_never_kept() -> None:
    """Timeouts, connection failures, 5xx, 429, unusable answers and an open circuit: not kept."""
    for error in set(ErrorClass) - {ErrorClass.HTTP_4XX}:
        assert entry_for(Outcome(None, 1, error, "x", 503 if error is ErrorClass.HTTP_5XX else None)) is None


def test_an_answer_is_stored_as_it_came() -> None:
    """The body as received is the entry (spacing, key order, exact numbers), not a re-encoding."""
    body = b'{ "b": 1, "a": 123456789012345678901234567890 }'
    entry = entry_for(Outcome({"a": 1.2e29, "b": 1}, 1, raw=body))
    assert entry == (EntryKind.ANSWER, body)
    back = outcome_of(*entry)
    assert back is not None
    assert back.raw == body


def test_answers_no_encoder_writes_are_counted_not_stored() -> None:
    """An answer with no body of its own (a bulk item) too deep for orjson is skipped and counted;
    the others in the same batch are stored."""
    deep: object = 1
    for _ in range(300):
        deep = [deep]
    entries, unstorable = entries_for([(("deep",), Outcome(deep, 1)), (("fine",), Outcome({"v": 1}, 1))])
    assert unstorable == 1
    assert [text for text, _, _ in entries] == ['["fine"]']
    with pytest.raises(UnstorableAnswerError):
        entry_for(Outcome(deep, 1))


def test_an_entry_that_no_longer_reads_as_json_is_a_miss() -> None:
    """A damaged answer entry is not an outcome: the key is asked for again."""
    assert outcome_of(EntryKind.ANSWER, b'{"cut') is None


def test_a_kept_client_error_without_a_message_reads_back_as_cached() -> None:
    """No message: an empty entry, read back as just "(cached)"; bytes that are not UTF-8 are
    read back replaced, not refused."""
    entry = entry_for(Outcome(None, 1, ErrorClass.HTTP_4XX, None, 410))
    assert entry == (EntryKind.CLIENT_ERROR, b"")
    back = outcome_of(*entry)
    assert back is not None
    assert back.message == " (cached)"
    garbled = outcome_of(EntryKind.CLIENT_ERROR, b"gone \xff")
    assert garbled is not None
    assert garbled.message == "gone \ufffd (cached)"


def test_every_unstorable_answer_is_counted() -> None:
    """Two answers too deep to encode among three outcomes: one entry, two counted unstorable."""
    deep: object = []
    for _ in range(300):
        deep = [deep]
    entries, unstorable = entries_for(
        [(("a",), Outcome(deep, 1)), (("b",), Outcome({"ok": 1}, 1)), (("c",), Outcome(deep, 1))]
    )
    assert ([text for text, _, _ in entries], unstorable) == (['["b"]'], 2)


def test_a_keys_text_is_stable_for_every_value_type() -> None:
    """Strings, numbers, booleans, nulls, dates and decimals each have one text form."""
    assert key_text(("a", 1, 2.5, True, None)) == '["a",1,2.5,true,null]'
    assert key_text((dt.date(2024, 3, 1), Decimal("1.50"))) == '["2024-03-01","1.50"]'


def test_an_answer_encoded_again_holds_about_its_own_size() -> None:
    """Bulk items' answers encoded to be stored (entries wait in a store's buffer by thousands)
    take a few hundred bytes each, not the 4 KiB buffer orjson writes them into."""
    outcomes = [
        ((f"k{i}",), Outcome({"key": f"k{i}", "country": {"iso_code": "DE"}}, 1)) for i in range(2000)
    ]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        entries, _ = entries_for(outcomes)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(entries) == 2000
    assert held / len(entries) < 1024, f"{held / len(entries):.0f} bytes per entry"
