"""The response cache on a real Redis (127.0.0.1:6379, database 15; skipped when none answers)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from service import is_redis_url
from service.caches.redis_store import RedisResponseCache, without_password
from service.caches.store import store_outcomes
from service.calling.outcome import Outcome
from service.errors import ErrorClass
from tests.helpers import (
    free_port,
    redis_test_url,
    run_cli,
    server_stats,
    service_missing,
    wait_until,
    write_lookup_job,
)

REDIS_URL = redis_test_url()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """An empty Redis database, emptied again afterwards."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.flushdb()
    except redis.ConnectionError as exc:
        service_missing(f"no Redis at {REDIS_URL} ({exc}); set ENRICH_TEST_REDIS to use another")
    try:
        yield REDIS_URL
    finally:
        client.flushdb()
        client.close()


def test_answers_and_final_client_errors_are_kept_per_namespace(redis_url: str) -> None:
    cache = RedisResponseCache(redis_url, "ns1", ttl_s=60, negative_ttl_s=30)
    stored = store_outcomes(
        cache,
        [
            (("a",), Outcome({"city": "x"}, 1)),
            (("b",), Outcome(None, 1, ErrorClass.HTTP_4XX, "HTTP 404: not found", 404)),
            (("c",), Outcome(None, 3, ErrorClass.HTTP_5XX, "HTTP 503", 503)),  # may succeed later
            (("d",), Outcome(None, 1, ErrorClass.HTTP_4XX, "HTTP 401", 401)),  # credentials: not final
        ],
    )
    assert stored.entries == 2
    found = cache.get_many([("a",), ("b",), ("c",), ("d",), ("e",)])
    assert set(found) == {("a",), ("b",)}
    assert found[("a",)].answer == {"city": "x"}
    assert found[("a",)].attempts == 0
    assert found[("b",)].error is ErrorClass.HTTP_4XX
    assert found[("b",)].message == "HTTP 404: not found (cached)"
    other = RedisResponseCache(redis_url, "ns2", ttl_s=60, negative_ttl_s=30)
    assert other.get_many([("a",)]) == {}
    stats = cache.statistics()
    assert (stats.entries, stats.answers, stats.negative, stats.namespaces) == (2, 1, 1, 1)
    assert cache.clear() == 2
    assert cache.get_many([("a",)]) == {}
    cache.close()
    other.close()


def test_entries_expire_in_redis(redis_url: str) -> None:
    cache = RedisResponseCache(redis_url, "ns", ttl_s=60, negative_ttl_s=5)
    store_outcomes(
        cache, [(("a",), Outcome(1, 1)), (("b",), Outcome(None, 1, ErrorClass.HTTP_4XX, "gone", 410))]
    )
    client = redis.Redis.from_url(redis_url)
    ttls = {name.decode().rsplit(":", 1)[1]: client.pttl(name) for name in client.scan_iter("enrich:*")}
    assert 55_000 < ttls['["a"]'] <= 60_000
    assert 0 < ttls['["b"]'] <= 5_000
    client.close()
    cache.close()


def test_the_password_never_shows() -> None:
    assert (
        without_password("redis://user:s3cret@cache.internal:6380/2")
        == "redis://user:***@cache.internal:6380/2"
    )
    assert without_password("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert is_redis_url("rediss://h/0")
    assert not is_redis_url("/var/cache/enrich")


@pytest.mark.integration
def test_a_second_run_is_answered_from_redis(tmp_path: Path, server: str, redis_url: str) -> None:
    """Two jobs (separate processes) sharing the Redis cache: the second asks the API nothing."""
    keys = [f"r{i}" for i in range(50)] + ["404-gone"]
    source, spec = write_lookup_job(tmp_path, server, keys)
    for output in ("first.parquet", "second.parquet"):
        done = run_cli("run", str(source), "--spec", str(spec), "--output", str(tmp_path / output),
                       "--no-flow", "--cache-dir", redis_url)  # fmt: skip
        assert done.returncode == 0, done.stderr
        if output == "first.parquet":
            assert server_stats(server)["requests"] == 51
    assert server_stats(server)["requests"] == 51
    assert "51 keys answered from the response cache" in done.stdout
    stats = run_cli("cache", "stats", "--cache-dir", redis_url)
    assert stats.returncode == 0, stats.stderr
    assert ": 51 entries (50 answers, 1 cached client errors, 0 expired) for 1 API specs" in stats.stdout


def test_an_unreachable_redis_is_one_clear_error_without_its_password(tmp_path: Path) -> None:
    """Nothing listens on the port: exit 2, the URL named, the password not."""
    source, spec = write_lookup_job(tmp_path, "http://127.0.0.1:9", ["a"])
    url = f"redis://:hunter2secret@127.0.0.1:{free_port()}/0"
    done = run_cli(
        "run", "--no-flow", str(source), "--spec", str(spec), "--output", str(tmp_path / "o.csv"),
        "--cache-dir", url,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("enrich: error: the response cache at redis://:***@127.0.0.1:")
    assert "cannot be reached" in done.stderr
    assert "hunter2secret" not in done.stderr + done.stdout
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A Redis server of this test's own, to lose mid-job."""
    binary = shutil.which("redis-server")
    if binary is None:
        service_missing("no redis-server binary to start a Redis of the test's own")
    port = free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    try:
        wait_until(lambda: _answers(url), "the test's Redis to answer", 30)
        yield url, server
    finally:
        server.kill()
        server.wait(timeout=30)


def _answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False
    finally:
        client.close()


def test_redis_lost_mid_job_warns_once_and_the_job_goes_on(
    own_redis: tuple[str, subprocess.Popen[bytes]], caplog: pytest.LogCaptureFixture
) -> None:
    url, server = own_redis
    cache = RedisResponseCache(url, "ns", ttl_s=60, negative_ttl_s=30)
    store_outcomes(cache, [(("a",), Outcome({"v": 1}, 1))])
    assert cache.get_many([("a",)])[("a",)].answer == {"v": 1}
    server.kill()
    server.wait(timeout=30)
    assert cache.get_many([("a",), ("b",)]) == {}
    store_outcomes(cache, [(("b",), Outcome({"v": 2}, 1))])  # no error: the cache is off now
    assert cache.get_many([("b",)]) == {}
    cache.close()
    warnings = [r for r in caplog.records if "going on without it" in r.getMessage()]
    assert len(warnings) == 1
    assert url in warnings[0].getMessage()
