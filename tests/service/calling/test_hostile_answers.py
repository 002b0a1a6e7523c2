"""Hostile answers on loopback, on every sender: no answer takes the job's memory or its time."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import polars as pl
import pytest

from service import SENDER_NAMES, enrich_frame, parse_spec
from service.testing.mock_answers import answer_for
from tests.helpers import running_mock_api, server_stats

pytestmark = pytest.mark.integration

TRANSPORTS = SENDER_NAMES


@pytest.fixture(scope="module")
def hostile_api() -> Iterator[str]:
    """The mock API with hostile answers big enough to matter against a 1 MiB cap, kept small
    enough to stay quick: 64 MiB bombs and streams, a 3 s drip."""
    with running_mock_api("--bomb-mib", "64", "--stream-mib", "64", "--drip-s", "3") as url:
        yield url


@pytest.fixture
def hostile(hostile_api: str) -> str:
    """The hostile mock API, its counters reset for this test."""
    httpx.post(f"{hostile_api}/_reset", timeout=5).raise_for_status()
    return hostile_api


def spec_for(url: str, *, timeout_s: float = 10) -> str:
    """10 s by default: an answer's first attempt must not time out on a loaded machine (with 1 s,
    one run on three busy test workers retried every key, the good ones too)."""
    return f"""
[api]
url = "{url}/v1/lookup/{{ip}}"
timeout_s = {timeout_s}
max_response_bytes = "1 MiB"
[input]
key = "ip"
[output.columns]
country = {{ path = "country.iso_code", type = "str" }}
[retry]
attempts = 2
backoff = {{ initial_s = 0.01, max_s = 0.02 }}
"""


@pytest.mark.asyncio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_oversized_answers_fail_as_too_large_without_a_retry(hostile: str, transport: str) -> None:
    """A gzip bomb, a huge chunked body, a huge announced body and an endless body each fail their
    row as too_large on the first attempt; the good keys beside them are enriched."""
    keys = ["bomb-a", "huge-a", "sized-a", "endless-a", "gzip-a", "10.0.0.1"]
    spec = parse_spec(spec_for(hostile), environ={})
    out = (await enrich_frame(pl.DataFrame({"ip": keys}), spec, transport=transport)).frame
    assert out["_enrich_error"].to_list() == ["too_large"] * 4 + [None, None]
    assert out["_enrich_attempts"].to_list() == [1] * 6
    assert "1,048,576 bytes" in out["_enrich_message"][0]
    expected = [answer_for(key)["country"]["iso_code"] for key in keys[4:]]
    assert out["country"].to_list()[4:] == expected  # gzip-a inflated and read like any answer
    assert server_stats(hostile)["per_key"] == dict.fromkeys(keys, 1)


@pytest.mark.asyncio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_dripping_answer_times_out_at_timeout_s(hostile: str, transport: str) -> None:
    """A server sending its answer a byte at a time over 3 s, each byte well within a read
    timeout, still fails at the 1 s total timeout, on every attempt."""
    spec = parse_spec(spec_for(hostile, timeout_s=1), environ={})
    out = (await enrich_frame(pl.DataFrame({"ip": ["drip-a"]}), spec, transport=transport)).frame
    assert out["_enrich_error"].to_list() == ["timeout"]
    assert out["_enrich_attempts"].to_list() == [2]


@pytest.mark.asyncio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_huge_error_answer_keeps_its_class_and_a_short_message(hostile: str, transport: str) -> None:
    """Only the start of a non-2xx answer is read: a 503 with a 64 MiB body is still a 503,
    retried as one, with a one-line message."""
    spec = parse_spec(spec_for(hostile), environ={})
    out = (await enrich_frame(pl.DataFrame({"ip": ["bigerror-a"]}), spec, transport=transport)).frame
    assert out["_enrich_error"].to_list() == ["http_5xx"]
    assert out["_enrich_attempts"].to_list() == [2]
    assert out["_enrich_message"].to_list() == ["HTTP 503"]  # its start was only spaces
