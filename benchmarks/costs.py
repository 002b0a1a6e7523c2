"""What one request costs in each piece of the hot path, in microseconds, on this machine.

    .venv/bin/python -m benchmarks.costs [--repeat 5]

Each figure is the best of ``--repeat`` runs of a tight loop (the least disturbed by the rest of
the machine), per call. They are the costs ``docs/architecture.md`` reasons with: what a request
may cost in our own code when the whole budget at zero latency is a bare aiohttp request.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import itertools
import timeit
from collections.abc import Callable

import httpx
import jmespath
import orjson
import tenacity
from yarl import URL

from service import SystemClock, parse_spec
from service.calling.answer_conditions import judge_for
from service.calling.answers import answer_of, may_hold_big_integers
from service.calling.bodies import BoundedBody
from service.calling.encoded_urls import EncodedUrls
from service.calling.rate_limit import RateLimiter
from service.calling.requests import RequestBuilder
from service.calling.retry_policy import RetryPolicy
from service.calling.sending import RawResponse
from service.tables.mapping import map_answers
from service.testing.mock_answers import answer_for

_SPEC = """
[api]
url = "http://127.0.0.1:9/v1/lookup/{k}"
[input]
key = "k"
[output.columns]
country = { path = "country.iso_code", type = "str" }
asn = { path = "asn", type = "i64" }
"""
_ANSWER = orjson.dumps({"key": "k1", "country": {"iso_code": "DE", "eu": True}, "asn": 3320, "tags": []})


def _semaphore_round_trips(loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
    """1,000 acquire/release pairs of an uncontended semaphore, on ``loop``."""
    semaphore = asyncio.Semaphore(64)

    async def many() -> None:
        for _ in range(1000):
            await semaphore.acquire()
            semaphore.release()

    return lambda: loop.run_until_complete(many())


def _inflate(body: bytes) -> bytes:
    reader = BoundedBody(16 * 1024**2, "gzip")
    reader.feed(body)
    return reader.finish()


Piece = tuple[Callable[[], object], int]  # a call, and how many of the measured thing it does


def _library_pieces(loop: asyncio.AbstractEventLoop) -> dict[str, Piece]:
    path = jmespath.compile("country.iso_code")
    counter = itertools.count()
    base = "http://127.0.0.1:9/v1/lookup/k"
    return {
        "httpx.Request(...) built": (lambda: httpx.Request("GET", "http://127.0.0.1:9/v1/lookup/k1"), 1),
        # A new string each time: yarl caches the URLs it has parsed.
        "yarl.URL(..., encoded=True), a new URL": (lambda: URL(f"{base}{next(counter)}", encoded=True), 1),
        "orjson.loads + compiled JMESPath": (lambda: path.search(orjson.loads(_ANSWER)), 1),
        "asyncio.Semaphore acquire + release": (_semaphore_round_trips(loop), 1000),
    }


def _enrich_pieces() -> dict[str, Piece]:
    spec = parse_spec(_SPEC, environ={})
    builder = RequestBuilder(spec.request, spec.key)
    limiter = RateLimiter(None, 1, SystemClock())
    response = RawResponse(200, _ANSWER, None)
    answers = [orjson.loads(_ANSWER)] * 1000
    present = [True] * 1000
    bulk = orjson.dumps({"results": [answer_for(f"10.0.0.{i}") for i in range(100)]})
    bulk_gzip = gzip.compress(bulk)
    inflating = f"enrich: inflating a gzip answer of 100 results ({len(bulk):,} B, {len(bulk_gzip):,} B sent)"
    counter = itertools.count()
    urls = EncodedUrls()
    return {
        "enrich: RequestBuilder.build": (lambda: builder.build(("k1",)), 1),
        # A new string each time, as for yarl.URL above.
        "enrich: EncodedUrls, the aiohttp sender's yarl URL, a new URL": (
            lambda: urls(f"http://127.0.0.1:9/v1/lookup/k{next(counter)}"),
            1,
        ),
        "enrich: RateLimiter.reserve (no rate)": (limiter.reserve, 1),
        "enrich: answer_of (a 2xx answer)": (lambda: answer_of(response), 1),
        "enrich: map_answers, per answer (2 columns)": (
            lambda: map_answers(answers, spec.columns, present),
            1000,
        ),
        inflating: (lambda: _inflate(bulk_gzip), 1),
        f"enrich: scanning a bulk answer of 100 results ({len(bulk):,} B) for long integers": (
            lambda: may_hold_big_integers(bulk),
            1,
        ),
    }


def _judging(conditions: str, retry: tenacity.retry_base | None = None) -> Callable[[], None]:
    """One answer judged by a spec with ``conditions`` (TOML lines of [api] and [retry])."""
    api, _, retry_lines = conditions.partition("[retry]\n")
    text = _SPEC.replace("[input]", api + "[input]") + ("[retry]\n" + retry_lines if retry_lines else "")
    spec = parse_spec(text, environ={})
    policy = RetryPolicy.for_spec(spec, random=lambda: 0.0, clock=SystemClock(), retry=retry)
    judge = judge_for(spec.conditions, policy)
    assert judge is not None
    answer = orjson.loads(_ANSWER)
    return lambda: judge.judge(answer, 1, 200, None)


def _judge_pieces() -> dict[str, Piece]:
    """What answer conditions cost per 2xx answer (a job without any has no judge at all)."""
    return {
        'enrich: judging an answer, error_when = "error"': (_judging('error_when = "error"\n'), 1),
        "enrich: judging an answer, retry_when = \"status == 'pending'\"": (
            _judging("[retry]\nretry_when = \"status == 'pending'\"\n"),
            1,
        ),
        "enrich: judging an answer, retry_if_result(...) from Python": (
            _judging("", tenacity.retry_if_result(lambda answer: answer.get("status") == "pending")),
            1,
        ),
    }


def measure(repeat: int) -> dict[str, float]:
    """Microseconds per call of each piece."""
    loop = asyncio.new_event_loop()
    costs = {}
    try:
        pieces = {**_library_pieces(loop), **_enrich_pieces(), **_judge_pieces()}
        for name, (call, per_call) in pieces.items():
            number = max(1, 20_000 // per_call)
            best = min(timeit.repeat(call, number=number, repeat=repeat))
            costs[name] = best / number / per_call * 1e6
    finally:
        loop.close()
    return costs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.costs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs of each loop; the best counts")
    args = parser.parse_args(argv)
    for name, micros in measure(args.repeat).items():
        print(f"{micros:8.2f} us  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
