"""enrich_frame over httpx.MockTransport and respx, on a fake clock: no network, no real sleep."""

from __future__ import annotations

import asyncio
import random
import tracemalloc
from collections import Counter
from collections.abc import Awaitable, Callable

import httpx
import orjson
import polars as pl
import pytest
import respx

from service import Caller, CircuitOpenError, InputError, enrich_frame
from service.testing import MockClock
from tests.helpers import make_spec

Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]

RETRY = "[retry]\nattempts = 4\nbackoff = { initial_s = 1, max_s = 8, jitter = 0 }\n"


class Api:
    """A scripted API: answers per key, counting requests per key and the most in flight."""

    def __init__(self, answer: Callable[[str, int], httpx.Response] | None = None) -> None:
        self.answer = answer or (lambda key, n: httpx.Response(200, json={"name": key.upper()}))
        self.calls: Counter[str] = Counter()
        self.in_flight = 0
        self.most_in_flight = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        key = request.url.path.rsplit("/", 1)[-1]
        key = httpx.URL(f"http://x/{key}").path[1:]  # percent-decoded
        self.calls[key] += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            for _ in range(3):
                await asyncio.sleep(0)  # let other requests overlap
            return self.answer(key, self.calls[key])
        finally:
            self.in_flight -= 1

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


@pytest.mark.asyncio
async def test_rows_keep_order_and_each_distinct_key_is_requested_once(clock: MockClock) -> None:
    """Every input row comes back once, in input order, and duplicates cost no request."""
    api = Api()
    keys = [f"k{i % 7}" for i in range(100)]
    frame = pl.DataFrame({"k": keys, "row": range(100)})
    result = await enrich_frame(frame, make_spec(), transport=api.transport, clock=clock)
    out = result.frame
    assert out["row"].to_list() == list(range(100))
    assert out["k"].to_list() == keys
    assert out["name"].to_list() == [k.upper() for k in keys]
    assert set(out["_enrich_status"]) == {"ok"}
    assert out.columns == [
        "k",
        "row",
        "name",
        "_enrich_status",
        "_enrich_error",
        "_enrich_message",
        "_enrich_attempts",
    ]
    assert api.calls == Counter({f"k{i}": 1 for i in range(7)})
    assert result.stats.requests == 7
    assert result.stats.distinct_keys == 7
    assert result.stats.rows_ok == 100


@pytest.mark.asyncio
async def test_answers_are_mapped_as_they_arrive_not_held_to_the_frames_end(clock: MockClock) -> None:
    """Once its columns are read, an answer's parsed document is let go: a frame whose answers
    carry a large part no column reads holds their bodies, not their documents (which are about
    seven times bigger here). Asked for, an outcome still gives its answer's document."""
    document = {"name": "x", "unread": list(range(1_000, 4_000))}
    body = orjson.dumps(document)
    document_bytes = _allocated(lambda: orjson.loads(body))
    api = Api(lambda key, n: httpx.Response(200, content=body))
    spec = make_spec()
    tracemalloc.start()
    try:
        async with Caller(spec, transport=api.transport, clock=clock) as caller:
            tracemalloc.reset_peak()
            result = await enrich_frame(
                pl.DataFrame({"k": [f"k{i}" for i in range(200)]}), spec, caller=caller
            )
            peak = tracemalloc.get_traced_memory()[1]
            outcome = (await caller.outcomes([("k1",)]))[("k1",)]
    finally:
        tracemalloc.stop()
    assert result.frame["name"].to_list() == ["x"] * 200
    assert document_bytes > 5 * len(body)
    assert peak < 200 * document_bytes / 2  # held to the end, 200 documents would be there at once
    assert outcome.answer == document


@pytest.mark.asyncio
async def test_concurrency_cap_holds_and_is_reached(clock: MockClock) -> None:
    """No more than limits.concurrency requests are in flight at once, frames sharing the caller
    together, and that many are: the API holds every answer until 4 requests are in flight (with a
    cap below 4 it would wait for ever, and the test fail on its timeout)."""
    four_at_once = asyncio.Event()
    in_flight = most = 0
    calls: Counter[str] = Counter()

    async def holding(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most
        calls[request.url.path] += 1
        in_flight += 1
        most = max(most, in_flight)
        if in_flight == 4:
            four_at_once.set()
        try:
            if sum(calls.values()) > 1:  # the first goes alone (its answer may tell a quota)
                await four_at_once.wait()
            for _ in range(3):
                await asyncio.sleep(0)  # let other requests overlap
            return httpx.Response(200, json={"name": "x"})
        finally:
            in_flight -= 1

    spec = make_spec("[limits]\nconcurrency = 4\n")
    frames = [pl.DataFrame({"k": [f"{name}{i}" for i in range(100)]}) for name in "ab"]
    # Two frames on one caller, as a job's batches are: 8 workers between them, 4 slots.
    async with (
        asyncio.timeout(10),
        Caller(spec, transport=httpx.MockTransport(holding), clock=clock) as caller,
    ):
        await asyncio.gather(*(enrich_frame(frame, spec, caller=caller) for frame in frames))
    assert most == 4
    assert sum(calls.values()) == 200


@pytest.mark.asyncio
async def test_retries_then_succeeds_with_exponential_backoff(clock: MockClock) -> None:
    """503, 503, then 200: three attempts, sleeps of 1 s and 2 s (no jitter)."""
    api = Api(lambda key, n: httpx.Response(503) if n < 3 else httpx.Response(200, json={"name": "ok"}))
    result = await enrich_frame(
        pl.DataFrame({"k": ["a"]}), make_spec(RETRY), transport=api.transport, clock=clock
    )
    row = result.frame.row(0, named=True)
    assert (row["_enrich_status"], row["name"], row["_enrich_attempts"]) == ("ok", "ok", 3)
    assert clock.sleeps == [1.0, 2.0]
    assert result.stats.retries == 2
    assert result.stats.requests == 3


@pytest.mark.asyncio
async def test_failures_are_classified_and_retried_only_when_retryable(clock: MockClock) -> None:
    """Each failure class ends in the right status, error class and attempt count."""

    def answer(key: str, n: int) -> httpx.Response:
        if key == "notfound":
            return httpx.Response(404, text="no such key")
        if key == "down":
            return httpx.Response(503)
        if key == "garbled":
            return httpx.Response(200, content=b'{"name": ')
        if key == "badtype":
            return httpx.Response(200, json={"name": {"nested": True}})
        if key == "refused":
            raise httpx.ConnectError("refused")
        if key == "slow":
            raise httpx.ReadTimeout("slow")
        if key == "limited":
            return httpx.Response(429, headers={"Retry-After": "2"})
        return httpx.Response(200, json={"name": key})

    api = Api(answer)
    keys = ["notfound", "down", "garbled", "badtype", "refused", "slow", "limited", "fine"]
    result = await enrich_frame(
        pl.DataFrame({"k": keys}), make_spec(RETRY), transport=api.transport, clock=clock
    )
    rows = {r["k"]: r for r in result.frame.iter_rows(named=True)}
    expected = {
        "notfound": ("failed", "http_4xx", 1),
        "down": ("failed", "http_5xx", 4),
        "garbled": ("failed", "invalid_json", 1),
        "badtype": ("failed", "mapping", 1),
        "refused": ("failed", "connect", 4),
        "slow": ("failed", "timeout", 4),
        "limited": ("failed", "rate_limited", 4),
        "fine": ("ok", None, 1),
    }
    for key, (status, error, attempts) in expected.items():
        row = rows[key]
        assert (row["_enrich_status"], row["_enrich_error"], row["_enrich_attempts"]) == (
            status,
            error,
            attempts,
        ), key
        assert api.calls[key] == attempts, key
    assert rows["notfound"]["_enrich_message"] == "HTTP 404: no such key"
    assert rows["badtype"]["_enrich_message"].startswith("column 'name': expected str")
    assert result.stats.rows_failed_by_class["http_5xx"] == 1
    assert result.stats.outcomes["connect"] == 4


class OrderedApi(Api):
    """An ``Api`` that also records the order in which keys were requested."""

    def __init__(self, answer: Callable[[str, int], httpx.Response]) -> None:
        super().__init__(answer)
        self.order: list[str] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.order.append(request.url.path.rsplit("/", 1)[-1])
        return await super().__call__(request)


@pytest.mark.asyncio
async def test_a_key_waiting_out_its_backoff_does_not_hold_back_fresh_keys(clock: MockClock) -> None:
    """With one request at a time, the fresh keys go while the failed one waits; then its retry."""
    api = OrderedApi(
        lambda key, n: (
            httpx.Response(503) if (key, n) == ("a", 1) else httpx.Response(200, json={"name": key})
        )
    )
    spec = make_spec("[limits]\nconcurrency = 1\n" + RETRY)
    result = await enrich_frame(
        pl.DataFrame({"k": ["a", "b", "c", "d"]}), spec, transport=api.transport, clock=clock
    )
    assert api.order == ["a", "b", "c", "d", "a"]
    assert clock.sleeps == [1.0]  # the only wait: until a's retry was due
    assert result.frame["_enrich_attempts"].to_list() == [2, 1, 1, 1]
    assert result.stats.retries == 1


@pytest.mark.asyncio
async def test_fresh_keys_wait_while_too_many_retries_are_waiting(clock: MockClock) -> None:
    """With 256 keys waiting for a retry (the cap at concurrency 1), the next fresh key waits for
    the earliest retry to go first: a failing API is not piled on."""
    api = OrderedApi(
        lambda key, n: httpx.Response(503) if n == 1 else httpx.Response(200, json={"name": key})
    )
    # Every first attempt fails: the retry budget (tested on its own) is lifted to see the cap.
    spec = make_spec("[limits]\nconcurrency = 1\n[circuit]\nenabled = false\n" + RETRY + "budget = 10\n")
    keys = [f"k{i}" for i in range(300)]
    result = await enrich_frame(pl.DataFrame({"k": keys}), spec, transport=api.transport, clock=clock)
    # 256 first attempts fill the waiting list; their retries (all due at once on this clock) go
    # before the 257th fresh key; the last 44 keys then fail and retry without reaching the cap.
    assert api.order == keys[:256] + keys[:256] + keys[256:] + keys[256:]
    assert result.frame["_enrich_status"].to_list() == ["ok"] * 300
    assert sum(api.calls.values()) == 600


@pytest.mark.asyncio
async def test_keys_waiting_for_a_retry_when_the_circuit_opens_keep_their_attempts(clock: MockClock) -> None:
    """The breaker opens while failed keys wait: they end circuit_open with the attempts they made,
    keys never requested with none."""
    api = Api(lambda key, n: (_ for _ in ()).throw(httpx.ConnectError("refused")))
    spec = make_spec("[limits]\nconcurrency = 1\n[circuit]\nconsecutive_failures = 3\n" + RETRY)
    frame = pl.DataFrame({"k": [f"k{i}" for i in range(6)]})
    with pytest.raises(CircuitOpenError) as info:
        await enrich_frame(frame, spec, transport=api.transport, clock=clock)
    partial = info.value.partial.frame
    assert partial["_enrich_error"].to_list() == ["circuit_open"] * 6
    assert partial["_enrich_attempts"].to_list() == [1, 1, 1, 0, 0, 0]
    assert api.calls == Counter({"k0": 1, "k1": 1, "k2": 1})


@pytest.mark.asyncio
async def test_retry_after_is_honoured_and_pauses_the_job(clock: MockClock) -> None:
    """A 429 with Retry-After: 2 on key a: every request after it (a's retry, and b and c, which
    were not refused) goes 2 s later at the earliest: the limiter paused the whole job."""
    sent: list[tuple[str, float]] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        key = request.url.path.rsplit("/", 1)[-1]
        sent.append((key, clock.now()))
        if key == "a" and [k for k, _ in sent].count("a") == 1:
            return httpx.Response(429, headers={"Retry-After": "2"})
        return httpx.Response(200, json={"name": key})

    spec = make_spec(RETRY + "[limits]\nconcurrency = 1\n")
    async with Caller(spec, transport=httpx.MockTransport(handler), clock=clock) as caller:
        result = await enrich_frame(pl.DataFrame({"k": ["a", "b", "c"]}), spec, caller=caller)
        assert caller.limiter.statistics().pauses == 1
    refused_at = sent[0][1]
    assert sorted(key for key, _ in sent[1:]) == ["a", "b", "c"]
    assert all(at >= refused_at + 2.0 for _, at in sent[1:]), sent
    assert result.frame["_enrich_attempts"].to_list() == [2, 1, 1]
    assert result.frame["_enrich_status"].to_list() == ["ok", "ok", "ok"]


@pytest.mark.asyncio
async def test_retry_after_http_date_is_capped(clock: MockClock) -> None:
    """A Retry-After far in the future is honoured only up to retry_after_cap_s."""
    import email.utils

    later = email.utils.formatdate(clock.wall() + 7200, usegmt=True)
    api = Api(
        lambda key, n: (
            httpx.Response(503, headers={"Retry-After": later})
            if n == 1
            else httpx.Response(200, json={"name": key})
        )
    )
    spec = make_spec("[retry]\nattempts = 2\nretry_after_cap_s = 30\n")
    result = await enrich_frame(pl.DataFrame({"k": ["a"]}), spec, transport=api.transport, clock=clock)
    assert result.frame["_enrich_status"].to_list() == ["ok"]
    assert clock.sleeps == [30.0]


@pytest.mark.asyncio
async def test_key_in_flight_is_awaited_not_requested_again(clock: MockClock) -> None:
    """Two frames sharing a caller and a key: the key is requested once, both get the answer."""
    started = asyncio.Event()
    release = asyncio.Event()
    calls: Counter[str] = Counter()

    async def handler(request: httpx.Request) -> httpx.Response:
        key = request.url.path.rsplit("/", 1)[-1]
        calls[key] += 1
        if key == "shared":
            started.set()
            await release.wait()
        return httpx.Response(200, json={"name": key})

    spec = make_spec()
    async with Caller(spec, transport=httpx.MockTransport(handler), clock=clock) as caller:
        first = asyncio.create_task(enrich_frame(pl.DataFrame({"k": ["shared", "a"]}), spec, caller=caller))
        await asyncio.wait_for(started.wait(), timeout=5)
        second = asyncio.create_task(enrich_frame(pl.DataFrame({"k": ["b", "shared"]}), spec, caller=caller))
        for _ in range(20):
            await asyncio.sleep(0)  # let the second frame claim its keys while "shared" is in flight
        release.set()
        one, two = await asyncio.wait_for(asyncio.gather(first, second), timeout=5)
    assert calls == Counter({"shared": 1, "a": 1, "b": 1})
    assert one.frame["name"].to_list() == ["shared", "a"]
    assert two.frame["name"].to_list() == ["b", "shared"]


@pytest.mark.asyncio
async def test_calls_on_a_shared_caller_report_their_own_figures(clock: MockClock) -> None:
    """A second call on a shared caller reports its own rows, keys and requests; the caller's
    statistics hold both calls."""
    api = Api()
    spec = make_spec()
    async with Caller(spec, transport=api.transport, clock=clock) as caller:
        first = await enrich_frame(pl.DataFrame({"k": ["a", "b", "c", "a"]}), spec, caller=caller)
        second = await enrich_frame(pl.DataFrame({"k": ["d", "e"]}), spec, caller=caller)
        both = caller.statistics()
    assert (first.stats.rows, first.stats.distinct_keys, first.stats.requests) == (4, 3, 3)
    assert (second.stats.rows, second.stats.distinct_keys, second.stats.requests) == (2, 2, 2)
    assert second.stats.outcomes == {"ok": 2}
    assert (both.rows, both.requests, both.outcomes) == (6, 5, {"ok": 5})


@pytest.mark.asyncio
async def test_circuit_opens_and_stops_the_job(clock: MockClock) -> None:
    """An API that refuses every connection trips the breaker; most keys are never requested."""
    api = Api(lambda key, n: (_ for _ in ()).throw(httpx.ConnectError("refused")))
    spec = make_spec("[limits]\nconcurrency = 2\n[circuit]\nconsecutive_failures = 5\n" + RETRY)
    frame = pl.DataFrame({"k": [f"k{i}" for i in range(500)]})
    with pytest.raises(CircuitOpenError, match="connection failures or timeouts in a row") as info:
        await enrich_frame(frame, spec, transport=api.transport, clock=clock)
    assert sum(api.calls.values()) < 20
    partial = info.value.partial.frame
    assert partial.height == 500
    assert partial["k"].to_list() == frame["k"].to_list()
    errors = Counter(partial["_enrich_error"].to_list())
    assert errors["circuit_open"] >= 490
    assert set(errors) <= {"circuit_open", "connect"}


@pytest.mark.asyncio
async def test_secrets_never_reach_messages(clock: MockClock) -> None:
    """An API echoing the token in an error body: the row's message shows *** instead."""
    token = "tok-9f8e7d6c5b4a"

    def answer(key: str, n: int) -> httpx.Response:
        return httpx.Response(401, text=f"invalid token {token} for {key}")

    spec = make_spec(
        '[api]\nurl = "http://api.test/v1/lookup/{k}"\nheaders = { Authorization = "Bearer ${TOKEN}" }\n',
        TOKEN=token,
    )
    result = await enrich_frame(
        pl.DataFrame({"k": ["a"]}), spec, transport=Api(answer).transport, clock=clock
    )
    message = result.frame["_enrich_message"][0]
    assert token not in message
    assert message == "HTTP 401: invalid token *** for a"


@pytest.mark.asyncio
async def test_bad_frame_fails_before_any_request(clock: MockClock) -> None:
    """A missing key column is an InputError and no request is sent."""
    api = Api()
    with pytest.raises(InputError, match=r"input\.key column 'k' is not in the input"):
        await enrich_frame(pl.DataFrame({"other": ["a"]}), make_spec(), transport=api.transport, clock=clock)
    assert not api.calls


@pytest.mark.asyncio
async def test_null_keys_fail_without_a_request(clock: MockClock) -> None:
    """A null key is an invalid_key row; other rows are unaffected."""
    api = Api()
    frame = pl.DataFrame({"k": ["a", None, "a"]})
    out = (await enrich_frame(frame, make_spec(), transport=api.transport, clock=clock)).frame
    assert out["_enrich_error"].to_list() == [None, "invalid_key", None]
    assert out["name"].to_list() == ["A", None, "A"]
    assert api.calls == Counter({"a": 1})


@pytest.mark.asyncio
@respx.mock
async def test_respx_routes_through_the_httpx_transport(clock: MockClock) -> None:
    """With transport='httpx', respx intercepts the requests; params are sent encoded."""
    route = respx.get("http://api.test/v1/lookup/a%2Fb").mock(
        return_value=httpx.Response(200, json={"name": "slash"})
    )
    result = await enrich_frame(pl.DataFrame({"k": ["a/b"]}), make_spec(), transport="httpx", clock=clock)
    assert route.call_count == 1
    assert result.frame["name"].to_list() == ["slash"]


BULK = """
[api]
method = "POST"
url = "http://api.test/v1/lookup"
body = { keys = "{@keys}" }
[bulk]
size = 4
results = "results"
match = "key"
[retry]
attempts = 2
backoff = { initial_s = 1, max_s = 1, jitter = 0 }
"""


class BulkApi:
    """A bulk endpoint: rejects any request holding a 'poison' key, omits 'ghost' keys."""

    def __init__(self) -> None:
        self.requests: list[list[str]] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        keys = orjson.loads(request.content)["keys"]
        self.requests.append(keys)
        if any(k.startswith("poison") for k in keys):
            return httpx.Response(400, text="bad key in request")
        return httpx.Response(
            200, json={"results": [{"key": k, "name": k.upper()} for k in reversed(keys) if k != "ghost"]}
        )


@pytest.mark.asyncio
async def test_bulk_matches_answers_back_by_key(clock: MockClock) -> None:
    """Answers in any order match their keys; a key missing from the answer is a mapping error."""
    api = BulkApi()
    keys = ["a", "b", "ghost", "c", "a", "d", "e"]
    out = (
        await enrich_frame(
            pl.DataFrame({"k": keys}), make_spec(BULK), transport=httpx.MockTransport(api), clock=clock
        )
    ).frame
    assert out["name"].to_list() == ["A", "B", None, "C", "A", "D", "E"]
    assert out["_enrich_error"].to_list() == [None, None, "mapping", None, None, None, None]
    assert out.filter(pl.col("k") == "ghost")["_enrich_message"][0] == "key missing from the bulk answer"
    assert sorted(len(r) for r in api.requests) == [2, 4]  # 6 distinct keys in chunks of 4


@pytest.mark.asyncio
async def test_bulk_results_are_mapped_as_their_chunk_arrives(clock: MockClock) -> None:
    """In bulk too, each result is mapped as its chunk arrives: kept is its own body (for the
    cache and the answer log), not its document, about seven times bigger here."""
    unread = list(range(1_000, 4_000))
    document_bytes = _allocated(
        lambda: orjson.loads(orjson.dumps({"key": "k0", "name": "K0", "unread": unread}))
    )

    def answer(request: httpx.Request) -> httpx.Response:
        keys = orjson.loads(request.content)["keys"]
        results = [{"key": key, "name": key.upper(), "unread": unread} for key in keys]
        # A body of its own size, as one read from a socket (orjson's sits in a bigger buffer).
        return httpx.Response(200, content=bytes(memoryview(orjson.dumps({"results": results}))))

    keys = [f"k{i}" for i in range(200)]
    tracemalloc.start()
    try:
        spec = make_spec(BULK)
        result = await enrich_frame(
            pl.DataFrame({"k": keys}), spec, transport=httpx.MockTransport(answer), clock=clock
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.frame["name"].to_list() == [key.upper() for key in keys]
    assert peak < 200 * document_bytes / 2  # held to the end, 200 documents would be there at once


def _allocated(make: Callable[[], object]) -> int:
    """The bytes of Python objects that ``make()`` returns (traced while it is kept)."""
    tracemalloc.start()
    try:
        made = make()
        size = tracemalloc.get_traced_memory()[0]
        del made
        return size
    finally:
        tracemalloc.stop()


@pytest.mark.asyncio
async def test_bulk_failure_is_split_to_isolate_the_bad_key(clock: MockClock) -> None:
    """A chunk that keeps failing is split in halves until the failing key stands alone."""
    api = BulkApi()
    keys = ["a", "b", "poison1", "c"]
    out = (
        await enrich_frame(
            pl.DataFrame({"k": keys}), make_spec(BULK), transport=httpx.MockTransport(api), clock=clock
        )
    ).frame
    assert out["_enrich_status"].to_list() == ["ok", "ok", "failed", "ok"]
    assert out["_enrich_error"][2] == "http_4xx"
    assert out["name"].to_list() == ["A", "B", None, "C"]
    assert api.requests == [["a", "b", "poison1", "c"], ["a", "b"], ["poison1", "c"], ["poison1"], ["c"]]


@pytest.mark.parametrize("engine", ["in-memory", "streaming"])
@pytest.mark.asyncio
async def test_rows_keep_their_order_on_every_polars_engine(clock: MockClock, engine: str) -> None:
    """60,000 rows over 3,000 keys in random order (a null key among them): every row comes back
    in input order, on polars' in-memory engine and on its streaming one (which reorders a join
    unless told to keep the order)."""
    generator = random.Random(7)
    keys: list[str | None] = [f"k{generator.randrange(3_000)}" for _ in range(60_000)]
    keys[1234] = None
    frame = pl.DataFrame({"k": keys, "row": range(60_000)})
    api = Api()
    with pl.Config() as config:
        config.set_engine_affinity(engine)  # type: ignore[arg-type]
        out = (await enrich_frame(frame, make_spec(), transport=api.transport, clock=clock)).frame
    assert out["row"].to_list() == list(range(60_000))
    assert out["k"].to_list() == keys
