"""Whatever a server answers, the row gets an outcome and the job goes on: properties over answers.

Statuses, ``Retry-After`` values and bodies are drawn by Hypothesis, the odd ones weighted in:
nesting deeper than any encoder writes, NaN and Infinity, invalid UTF-8, a byte order mark,
numbers beyond 64 bits, blank bodies.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from service import Caller, ErrorClass, enrich_frame, parse_spec
from service.caches.location import open_store
from service.caches.store import cache_namespace
from service.calling.backoff import parse_retry_after
from service.testing import MockClock

SPEC = """
[api]
url = "http://api.test/v1/{k}"
[input]
key = "k"
[output.columns]
s = { path = "v", type = "str" }
i = { path = "v", type = "i64" }
f = { path = "v", type = "f64" }
b = { path = "v", type = "bool" }
t = { path = "v", type = "timestamp" }
j = { path = "@", type = "json" }
[retry]
attempts = 2
backoff = { initial_s = 0.01, max_s = 0.02 }
[circuit]
enabled = false
"""
CLASSES = {e.value for e in ErrorClass}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=12,
)
# The standard encoder: orjson cannot write integers beyond 64 bits, and those are wanted here.
documents = json_values.map(lambda v: json.dumps({"v": v}).encode())
bodies = st.one_of(
    documents,
    st.builds(lambda d: b"\xef\xbb\xbf" + d, documents),  # a byte order mark before the JSON
    st.integers(min_value=1, max_value=1500).map(lambda n: b"[" * n + b"]" * n),  # nested n deep
    st.integers(min_value=1, max_value=1500).map(lambda n: b'{"v":' * n + b"1" + b"}" * n),
    st.sampled_from([b"", b"   \n", b"NaN", b'{"v": Infinity}', b'{"v": 1e400}', b'{"v": "\xff"}', b"{"]),
    st.integers(min_value=2**64, max_value=2**200).map(lambda n: b'{"v": %d}' % n),
    st.binary(max_size=64),
)
retry_afters = st.one_of(
    st.none(),
    st.sampled_from(
        ["²", "١٢", "-1", "1.5", "9" * 400, "Fri, 31 Dec 9999 23:59:59 GMT", "Mon, 01 Jan 1900 00:00:00 GMT"]
    ),
    st.text(max_size=30),
)
statuses = st.sampled_from([200, 201, 204, 301, 400, 401, 404, 410, 422, 429, 500, 503]) | st.integers(
    100, 599
)


def run(
    status: int, retry_after: str | None, body: bytes, cache_dir: Path | None, spec_text: str = SPEC
) -> pl.DataFrame:
    """The enriched row of one key answered with (status, Retry-After, body) on every attempt."""
    headers = {} if retry_after is None else {"Retry-After": retry_after}

    def answer(request: httpx.Request) -> httpx.Response:
        try:
            return httpx.Response(status, headers=headers, content=body)
        except (UnicodeEncodeError, ValueError):  # a header httpx itself cannot send: send none
            return httpx.Response(status, content=body)

    spec = parse_spec(spec_text, environ={})
    cache = None
    if cache_dir is not None:
        cache = open_store(cache_dir, cache_namespace(spec), ttl_s=3600, negative_ttl_s=3600)

    async def enrich() -> pl.DataFrame:
        async with Caller(
            spec, transport=httpx.MockTransport(answer), clock=MockClock(), cache=cache
        ) as caller:
            return (await enrich_frame(pl.DataFrame({"k": ["a"]}), spec, caller=caller)).frame

    try:
        return asyncio.run(enrich())
    finally:
        if cache is not None:
            cache.close()


def comparable(frame: pl.DataFrame) -> dict[str, Any]:
    """The row without what a cache hit changes on purpose (no attempt, '(cached)' said)."""
    return frame.drop("_enrich_attempts", "_enrich_message").row(0, named=True)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(status=statuses, retry_after=retry_afters, body=bodies)
def test_any_answer_gives_its_row_an_outcome_with_or_without_the_cache(
    status: int, retry_after: str | None, body: bytes
) -> None:
    """One row out, ok or failed with a known class; a second job reading the cache agrees."""
    alone = run(status, retry_after, body, cache_dir=None)
    assert alone.height == 1
    status_text, error = alone["_enrich_status"][0], alone["_enrich_error"][0]
    assert (status_text, error) == ("ok", None) or (status_text == "failed" and error in CLASSES)
    with tempfile.TemporaryDirectory() as directory:
        run(status, retry_after, body, cache_dir=Path(directory))
        again = run(status, retry_after, body, cache_dir=Path(directory))
    assert comparable(again) == comparable(alone)


@given(st.text(max_size=60))
@example("²")  # str.isdigit() is true for it, float() refuses it: it once ended a job
@example("١٢")
@example("Fri, 31 Dec 9999 23:59:59 -2359")
def test_any_retry_after_is_a_wait_or_nothing(value: str) -> None:
    """Any header text gives None (back off) or a number of seconds >= 0, never an exception."""
    seconds = parse_retry_after(value, 1_700_000_000.0)
    assert seconds is None or seconds >= 0


@given(st.integers(min_value=0, max_value=10**30))
def test_delay_seconds_are_read_exactly(seconds: int) -> None:
    """ASCII digits are seconds to wait, however many."""
    assert parse_retry_after(f" {seconds} ", 0.0) == float(seconds)


# Nesting orjson reads (up to 1,024 levels) but no encoder writes back (orjson stops at 254,
# Python's json at about 1,000 levels, more under Hypothesis, which raises the recursion limit):
# these once crashed a job, or every rerun of it through the cache. Not drawn by Hypothesis there.
DEEP = 1010


def one_column(column: str) -> str:
    """SPEC with only ``column`` (TOML: name = { path, type }) to take from the answer."""
    head, _, tail = SPEC.partition("[output.columns]\n")
    return head + "[output.columns]\n" + column + "\n" + tail[tail.index("[retry]") :]


@pytest.mark.parametrize(
    ("body", "column", "outcome"),
    [
        # No encoder writes it back as a json column, nor shows it in the message of a str column.
        (b"[" * DEEP + b"]" * DEEP, 'j = { path = "@", type = "json" }', ("failed", "mapping")),
        (
            b'{"v":' + b"[" * DEEP + b"]" * DEEP + b"}",
            's = { path = "v", type = "str" }',
            ("failed", "mapping"),
        ),
        # Too deep for orjson's encoder only: a json column, and an answer stored as it came.
        (b'{"v":' * 300 + b"1" + b"}" * 300, 'j = { path = "@", type = "json" }', ("ok", None)),
        (b'\xef\xbb\xbf{"v": "7"}', 's = { path = "v", type = "str" }', ("ok", None)),  # RFC 8259 8.1
    ],
)
def test_answers_that_once_crashed_a_job(body: bytes, column: str, outcome: tuple[str, str | None]) -> None:
    """Each gives its row the outcome it deserves, the same read again through the cache."""
    spec_text = one_column(column)
    alone = run(200, None, body, cache_dir=None, spec_text=spec_text)
    assert (alone["_enrich_status"][0], alone["_enrich_error"][0]) == outcome
    with tempfile.TemporaryDirectory() as directory:
        run(200, None, body, cache_dir=Path(directory), spec_text=spec_text)
        again = run(200, None, body, cache_dir=Path(directory), spec_text=spec_text)
    assert comparable(again) == comparable(alone)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=-(2**200), max_value=2**200))
@example(123456789012345678901234567890)
@example(-9_300_000_000_000_000_000)  # below -2**63 with 19 digits
@example(2**64)
def test_an_integer_of_any_size_is_exact_text_in_a_str_column(n: int) -> None:
    """A str column gets the integer's exact decimal digits, an i64 column the integer or a
    mapping error, a json column its exact text; the same through the cache."""
    columns = [
        's = { path = "v", type = "str" }',
        'i = { path = "v", type = "i64" }',
        'j = { path = "@", type = "json" }',
    ]
    spec_text = one_column("\n".join(columns))
    body = b'{"v": %d}' % n
    alone = run(200, None, body, cache_dir=None, spec_text=spec_text)
    fits = -(2**63) <= n < 2**63
    assert (alone["s"][0], alone["j"][0]) == (str(n), f'{{"v":{n}}}')
    assert alone["i"][0] == (n if fits else None)
    assert alone["_enrich_error"][0] == (None if fits else "mapping")
    with tempfile.TemporaryDirectory() as directory:
        run(200, None, body, cache_dir=Path(directory), spec_text=spec_text)
        again = run(200, None, body, cache_dir=Path(directory), spec_text=spec_text)
    assert comparable(again) == comparable(alone)
