"""A Redis password given in --cache-dir reaches the job, and nowhere it would be recorded."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from enrich.cli.cache import CACHE_PASSWORD_VARIABLE, without_recorded_password
from service import SpecError, expand_environment
from tests.helpers import redis_test_url, run_cli, server_stats, service_missing, write_lookup_job

REDIS_URL = redis_test_url()


def test_a_redis_password_is_replaced_by_a_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """The URL keeps its user, host and database; the (decoded) password goes to the variable."""
    monkeypatch.delenv(CACHE_PASSWORD_VARIABLE, raising=False)
    hidden = without_recorded_password("redis://bob:p%40ss@cache.internal:6380/2")
    assert hidden == "redis://bob:${ENRICH_CACHE_PASSWORD}@cache.internal:6380/2"
    assert os.environ[CACHE_PASSWORD_VARIABLE] == "p@ss"
    for unchanged in ("/var/cache/enrich", "redis://cache.internal:6379/0", "rediss://:${PW}@h:6379/0"):
        assert without_recorded_password(unchanged) == unchanged


def test_environment_references_in_a_setting_are_resolved_where_the_job_runs() -> None:
    """${NAME} from the given environment; a missing one names the setting."""
    assert expand_environment("redis://:${PW}@h/0", {"PW": "x"}, "cache_dir") == "redis://:x@h/0"
    assert expand_environment("/plain/{folder}", {}, "cache_dir") == "/plain/{folder}"
    with pytest.raises(SpecError, match="cache_dir: environment variable 'PW' is not set"):
        expand_environment("redis://:${PW}@h/0", {}, "cache_dir")


@pytest.fixture
def redis_user() -> Iterator[tuple[str, str]]:
    """A Redis user with a password, for this test only; its URL and password."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        service_missing(f"no Redis at {REDIS_URL} ({exc}); set ENRICH_TEST_REDIS to use another")
    name, password = f"enrich-test-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    client.execute_command("ACL", "SETUSER", name, "on", f">{password}", "~*", "+@all")
    host = REDIS_URL.split("://", 1)[1]
    try:
        yield f"redis://{name}:{password}@{host}", password
    finally:
        client.execute_command("ACL", "DELUSER", name)
        client.flushdb()
        client.close()


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_a_cache_password_never_reaches_prefects_database(
    tmp_path: Path, server: str, redis_user: tuple[str, str], prefect_home: Path
) -> None:
    """enrich run (as a flow) with a password in its Redis URL: the job authenticates and uses the
    cache (a second run asks nothing), while the password appears neither in the output streams
    nor anywhere in Prefect's database."""
    url, password = redis_user
    source, spec = write_lookup_job(tmp_path, server, [f"c{i}" for i in range(20)])
    env = {"PREFECT_HOME": str(prefect_home)}
    args = ("run", str(source), "--spec", str(spec), "--cache-dir", url)
    first = run_cli(*args, "--output", str(tmp_path / "one.parquet"), env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert server_stats(server)["requests"] == 20
    second = run_cli(*args, "--output", str(tmp_path / "two.parquet"), env=env)
    assert second.returncode == 0, second.stderr[-3000:]
    assert server_stats(server)["requests"] == 20  # answered from the cache
    assert password not in first.stdout + first.stderr + second.stdout + second.stderr
    database = prefect_home / "prefect.db"
    recorded = b"".join(path.read_bytes() for path in database.parent.glob("prefect.db*"))
    assert b"ENRICH_CACHE_PASSWORD" in recorded  # the flow's parameters are in there...
    assert password.encode() not in recorded  # ...without the password
