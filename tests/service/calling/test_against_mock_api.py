"""The engine and the CLI against the mock API in a child process, checked on the server's counters."""

from __future__ import annotations

import gc
import itertools
import types
from collections.abc import Iterator
from pathlib import Path

import httpx
import polars as pl
import pytest

from service import SENDER_NAMES, Caller, enrich_frame, parse_spec
from service.testing.mock_api import MockApi, MockConfig
from tests.helpers import most_per_second_allowed, run_cli, running_mock_api, server_stats

pytestmark = pytest.mark.integration

TRANSPORTS = SENDER_NAMES


def spec_for(url: str, extra: str = "") -> str:
    return f"""
[api]
url = "{url}/v1/lookup/{{ip}}"
timeout_s = 5
[input]
key = "ip"
[output.columns]
country = {{ path = "country.iso_code", type = "str" }}
lat = {{ path = "location.lat", type = "f64" }}
{extra}
"""


@pytest.mark.asyncio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_limits_hold_as_the_server_counts_them(server: str, transport: str) -> None:
    """Most in flight <= concurrency, most per second <= rate + burst, one request per distinct key."""
    spec = parse_spec(spec_for(server, '[limits]\nconcurrency = 4\nrate = "200/s"\n'), environ={})
    keys = [f"10.0.{i % 300 // 256}.{i % 300 % 256}" for i in range(900)]
    result = await enrich_frame(pl.DataFrame({"ip": keys}), spec, transport=transport)
    stats = server_stats(server)
    summary = {k: v for k, v in stats.items() if k not in ("per_key", "times")}
    assert stats["most_in_flight"] <= 4, summary
    assert stats["most_per_second"] <= most_per_second_allowed(200, spec.limits.effective_burst), summary
    assert stats["requests"] == stats["distinct_keys"] == 300, (summary, result.stats)
    assert result.frame["ip"].to_list() == keys
    assert set(result.frame["_enrich_status"]) == {"ok"}


@pytest.fixture(scope="module")
def slow_api_process() -> Iterator[str]:
    with running_mock_api("--latency-ms", "50") as url:
        yield url


@pytest.fixture
def slow_api(slow_api_process: str) -> str:
    """The mock API answering after 50 ms (four requests sent together are in flight together),
    its counters reset."""
    httpx.post(f"{slow_api_process}/_reset", timeout=5).raise_for_status()
    return slow_api_process


@pytest.mark.asyncio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_the_concurrency_cap_is_reached_not_only_respected(slow_api: str, transport: str) -> None:
    """40 keys, 4 in flight, answers taking 50 ms: the server sees exactly 4 at once at some
    moment (a cap of 1 would pass a check of "at most 4"), and never more."""
    spec = parse_spec(spec_for(slow_api, "[limits]\nconcurrency = 4\n"), environ={})
    result = await enrich_frame(pl.DataFrame({"ip": [f"c{i}" for i in range(40)]}), spec, transport=transport)
    assert result.stats.rows_ok == 40
    assert server_stats(slow_api)["most_in_flight"] == 4


@pytest.mark.asyncio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_fault_keys_are_requested_as_the_policy_says(server: str, transport: str) -> None:
    """404 once, always-503 exactly `attempts` times, 429 retried no sooner than its Retry-After."""
    retry = "[retry]\nattempts = 3\nbackoff = { initial_s = 0.01, max_s = 0.02 }\n"
    spec = parse_spec(spec_for(server, retry), environ={})
    keys = ["404-a", "503-a", "429-a", "400-a", "badjson-a", "1.1.1.1"]
    out = (await enrich_frame(pl.DataFrame({"ip": keys}), spec, transport=transport)).frame
    stats = server_stats(server)
    assert stats["per_key"] == {"404-a": 1, "503-a": 3, "429-a": 3, "400-a": 1, "badjson-a": 1, "1.1.1.1": 1}
    stamps = stats["times"]["429-a"]
    assert all(later - earlier >= 2.0 for earlier, later in itertools.pairwise(stamps))
    assert out["_enrich_error"].to_list() == [
        "http_4xx",
        "http_5xx",
        "rate_limited",
        "http_4xx",
        "invalid_json",
        None,
    ]


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".ndjson"])
def test_cli_run_each_format(server: str, tmp_path: Path, suffix: str) -> None:
    """enrich run reads and writes each format; every row once, in input order."""
    frame = pl.DataFrame({"row": range(50), "ip": [f"10.1.0.{i % 20}" for i in range(50)]})
    source = tmp_path / f"in{suffix}"
    {".parquet": frame.write_parquet, ".csv": frame.write_csv, ".ndjson": frame.write_ndjson}[suffix](source)
    (tmp_path / "spec.toml").write_text(spec_for(server))
    output = tmp_path / f"out{suffix}"
    done = run_cli(
        "run", "--no-flow", str(source), "--spec", str(tmp_path / "spec.toml"), "--output", str(output)
    )
    assert done.returncode == 0, done.stderr
    assert "rows        50 (50 ok, 0 failed)" in done.stdout
    assert "progress: 50/50 rows" in done.stderr  # not a terminal: plain progress lines
    read = {".parquet": pl.read_parquet, ".csv": pl.read_csv, ".ndjson": pl.read_ndjson}[suffix]
    out = read(output)
    assert out["row"].to_list() == list(range(50))
    assert out["country"].null_count() == 0
    assert server_stats(server)["requests"] == 20
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_cli_bad_inputs_fail_clearly_without_output(server: str, tmp_path: Path) -> None:
    """Missing file, corrupt Parquet, missing column, bad TOML or JMESPath, closed port: exit != 0, no OUT."""
    good_spec = tmp_path / "spec.toml"
    good_spec.write_text(spec_for(server))
    good_input = tmp_path / "in.csv"
    good_input.write_text("ip\n1.1.1.1\n1.1.1.2\n")
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"PAR1garbagePAR1")
    wrong_column = tmp_path / "addr.csv"
    wrong_column.write_text("addr\n1.1.1.1\n")
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text(spec_for(server) + "\n[limits\n")
    bad_path = tmp_path / "badpath.toml"
    bad_path.write_text(spec_for(server).replace('"country.iso_code"', '"country.[["'))
    closed = tmp_path / "closed.toml"
    closed.write_text(
        spec_for(
            "http://127.0.0.1:9",
            "[retry]\nattempts = 6\nbackoff = { initial_s = 0.001, max_s = 0.002 }\n"
            "[circuit]\nconsecutive_failures = 5\n",
        )
    )
    cases = [
        (tmp_path / "absent.csv", good_spec, "no such file", 2),
        (corrupt, good_spec, "cannot read as parquet", 2),
        (wrong_column, good_spec, "input.key column 'ip' is not in the input", 2),
        (good_input, bad_toml, "invalid TOML", 2),
        (good_input, bad_path, "output.columns.country.path: invalid JMESPath", 2),
        (good_input, closed, "stopped calling the API", 3),
    ]
    for source, spec, words, code in cases:
        output = tmp_path / "out.parquet"
        done = run_cli("run", "--no-flow", str(source), "--spec", str(spec), "--output", str(output))
        assert done.returncode == code, (source, spec, done.stderr)
        assert words in done.stderr, (source, spec, done.stderr)
        assert not output.exists()


@pytest.mark.asyncio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_reset_hang_and_http_date_faults(server: str, transport: str) -> None:
    """A reset ends as connect, a hang as timeout, and an HTTP-date Retry-After is waited out."""
    spec = parse_spec(
        # 1.5 s: far beyond a loopback answer on a loaded machine; the hanging key's two
        # attempts (3 s) overlap the 429's 2 s wait.
        spec_for(server, "[retry]\nattempts = 2\nbackoff = { initial_s = 0.01, max_s = 0.02 }\n").replace(
            "timeout_s = 5", "timeout_s = 1.5"
        ),
        environ={},
    )
    keys = ["reset-a", "hang-a", "429date-a", "2.2.2.2"]
    out = (await enrich_frame(pl.DataFrame({"ip": keys}), spec, transport=transport)).frame
    assert out["_enrich_error"].to_list() == ["connect", "timeout", "rate_limited", None]
    stats = server_stats(server)
    assert stats["per_key"] == {"reset-a": 2, "hang-a": 2, "429date-a": 2, "2.2.2.2": 1}
    first, second = stats["times"]["429date-a"]
    # The date says "retry at whole second floor(first) + 2" (retry_after 2 s, second resolution).
    assert second >= int(first) + 2 - 0.01


@pytest.mark.asyncio
async def test_bulk_against_the_mock_api(server: str) -> None:
    """Bulk answers match back; a missing key is a mapping error; a rejected chunk is split."""
    spec = parse_spec(
        f"""
[api]
method = "POST"
url = "{server}/v1/lookup"
body = {{ keys = "{{@keys}}" }}
[input]
key = "ip"
[bulk]
size = 4
results = "results"
match = "key"
[output.columns]
country = {{ path = "country.iso_code", type = "str" }}
[retry]
attempts = 2
backoff = {{ initial_s = 0.01, max_s = 0.02 }}
""",
        environ={},
    )
    keys = ["3.0.0.1", "ghost-1", "3.0.0.2", "400-x", "3.0.0.3", "3.0.0.1"]
    out = (await enrich_frame(pl.DataFrame({"ip": keys}), spec)).frame
    assert out["_enrich_error"].to_list() == [None, "mapping", None, "http_4xx", None, None]
    assert out["country"].null_count() == 2
    stats = server_stats(server)
    # Chunk [3.0.0.1, ghost-1, 3.0.0.2, 400-x] is refused, split into two halves, then 400-x alone.
    assert stats["per_key"]["400-x"] == 3
    assert stats["per_key"]["3.0.0.1"] == 2
    assert stats["per_key"]["3.0.0.3"] == 1


def test_cli_overrides_and_error_ratio(server: str, tmp_path: Path) -> None:
    """--concurrency caps what the server sees (or, "auto", finds it); --max-error-ratio turns many
    failed rows into exit 4."""
    (tmp_path / "spec.toml").write_text(spec_for(server, "[limits]\nconcurrency = 32\n"))
    frame = pl.DataFrame({"ip": [f"404-{i}" if i % 2 else f"4.0.0.{i}" for i in range(60)]})
    frame.write_csv(tmp_path / "in.csv")
    output = tmp_path / "out.csv"
    args = (
        "run",
        "--no-flow",
        str(tmp_path / "in.csv"),
        "--spec",
        str(tmp_path / "spec.toml"),
        "--output",
        str(output),
    )
    done = run_cli(*args, "--concurrency", "2", "--max-error-ratio", "0.4")
    assert done.returncode == 4, done.stderr
    assert "50.0% of rows failed, over --max-error-ratio 40.0%" in done.stderr
    assert output.exists()  # the job finished: its output is complete, the exit code flags the ratio
    assert server_stats(server)["most_in_flight"] <= 2
    output.unlink()
    assert run_cli(*args, "--max-error-ratio", "0.5").returncode == 0
    bad = run_cli(*args, "--rate", "fast")
    assert bad.returncode == 2
    assert "--rate: 'fast' is not a rate" in bad.stderr
    output.unlink()
    auto = run_cli(*args, "--concurrency", "auto", "--max-error-ratio", "0.5")  # at most the spec's 32
    assert auto.returncode == 0, auto.stderr
    assert "concurrency auto: settled at " in auto.stdout
    bad = run_cli(*args, "--concurrency", "fast")
    assert bad.returncode == 2
    assert "--concurrency: expected a number or auto, got 'fast'" in bad.stderr


@pytest.mark.asyncio
async def test_failed_attempts_and_retries_leave_no_reference_cycles(server: str) -> None:
    """Failed attempts and their retries are freed as they end, none left to the cyclic garbage
    collector (which, at 10% failures, cost a quarter of the throughput when they were)."""
    extra = "[retry]\nattempts = 3\nbackoff = { initial_s = 0.001, max_s = 0.002 }\n"
    extra += "[circuit]\nenabled = false\n"  # every 503- key fails for good: not an outage
    spec = parse_spec(spec_for(server, extra), environ={})

    def frame(tag: str) -> pl.DataFrame:
        return pl.DataFrame({"ip": [f"503-{tag}{i}" for i in range(40)] + [f"{tag}{i}" for i in range(80)]})

    async with Caller(spec) as caller:
        await enrich_frame(frame("warm"), spec, caller=caller)  # connections, first-use caches
        gc.collect()
        gc.disable()
        gc.set_debug(gc.DEBUG_SAVEALL)  # what the collector finds is kept in gc.garbage, to look at
        try:
            result = await enrich_frame(frame("x"), spec, caller=caller)
            gc.collect()
            # Only cycles made by the engine or its sender count: other threads of the test
            # process (a Prefect test server started by earlier tests) make garbage of their own.
            ours = [kind_of(o) for o in gc.garbage if kind_of(o) is not None]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()
    assert result.stats.retries >= 80  # every 503- key was retried twice
    assert ours == []


def kind_of(thing: object) -> str | None:
    """What ``thing`` is, when it belongs to the engine or to aiohttp (its code or its objects)."""
    code = (
        getattr(thing, "f_code", None) or getattr(thing, "cr_code", None) or getattr(thing, "gi_code", None)
    )
    if code is None and isinstance(thing, types.TracebackType):
        code = thing.tb_frame.f_code
    if code is not None:
        path = Path(code.co_filename).as_posix()
        return (
            f"{type(thing).__name__} of {code.co_name}"
            if "/service/" in path or "/aiohttp/" in path
            else None
        )
    module = type(thing).__module__
    return type(thing).__qualname__ if module.startswith(("service.", "aiohttp.")) else None


def conditions_spec(url: str) -> str:
    """A spec reading the mock's answers that say more than their status: apierror- keys hold an
    error object in a 200, pending- keys answer "pending" twice before their document."""
    return f"""
[api]
url = "{url}/v1/lookup/{{ip}}"
timeout_s = 5
error_when = "error"
error_message = "error.message"
[input]
key = "ip"
[output.columns]
country = {{ path = "country.iso_code", type = "str" }}
[retry]
attempts = 4
retry_when = "status == 'pending'"
backoff = {{ initial_s = 0.01, max_s = 0.05 }}
"""


@pytest.mark.asyncio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_answer_conditions_as_the_server_counts_them(server: str, transport: str) -> None:
    """A pending key is asked until it is answered (3 requests), an error inside a 200 once;
    a plain key once; the server's counts say so on either sender."""
    spec = parse_spec(conditions_spec(server), environ={})
    frame = pl.DataFrame({"ip": ["1.2.3.4", "pending-a", "apierror-a"]})
    result = await enrich_frame(frame, spec, transport=transport)
    rows = result.frame.select(
        "_enrich_status", "_enrich_error", "_enrich_message", "_enrich_attempts"
    ).rows()
    assert rows == [
        ("ok", None, None, 1),
        ("ok", None, None, 3),
        ("failed", "api_error", "quota exceeded for this key", 1),
    ]
    assert server_stats(server)["per_key"] == {"1.2.3.4": 1, "pending-a": 3, "apierror-a": 1}


def test_an_error_inside_a_200_is_not_cached(server: str, tmp_path: Path) -> None:
    """Run twice with the cache: the answers (one of them got after two "pending") come from the
    cache the second time; the key whose 200 said it failed is asked again, as any failure is."""
    (tmp_path / "spec.toml").write_text(conditions_spec(server))
    pl.DataFrame({"ip": ["1.2.3.4", "pending-b", "apierror-b"]}).write_csv(tmp_path / "in.csv")
    for run in (1, 2):
        output = tmp_path / f"out{run}.csv"
        args = ("run", "--no-flow", str(tmp_path / "in.csv"), "--spec", str(tmp_path / "spec.toml"))
        done = run_cli(*args, "--output", str(output))
        assert done.returncode == 0, done.stderr
        assert pl.read_csv(output)["_enrich_error"].to_list() == [None, None, "api_error"]
    assert server_stats(server)["per_key"] == {"1.2.3.4": 1, "pending-b": 3, "apierror-b": 2}


@pytest.fixture(scope="module")
def quota_api_processes() -> Iterator[dict[str, str]]:
    """Two mock APIs allowing 10 requests a second, telling it in RateLimit and in X-RateLimit-*."""
    with (
        running_mock_api("--quota", "10", "--quota-window-s", "1", "--quota-headers", "ietf") as ietf,
        running_mock_api("--quota", "10", "--quota-window-s", "1", "--quota-headers", "x") as x,
    ):
        yield {"ietf": ietf, "x": x}


@pytest.fixture
def quota_apis(quota_api_processes: dict[str, str]) -> dict[str, str]:
    for url in quota_api_processes.values():
        httpx.post(f"{url}/_reset", timeout=5).raise_for_status()
    return quota_api_processes


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("transport", "form"), [("aiohttp", "ietf"), ("httpx", "x"), ("pyreqwest", "ietf"), ("pyreqwest", "x")]
)
async def test_a_quota_told_in_headers_is_never_exceeded(
    quota_apis: dict[str, str], transport: str, form: str
) -> None:
    """25 keys, 8 in flight, no rate in the spec, against 10 requests a second: paced by the quota
    the answers announce, the server refuses none (it counts its own 429s)."""
    server = quota_apis[form]
    spec = parse_spec(spec_for(server, "[limits]\nconcurrency = 8\n"), environ={})
    result = await enrich_frame(pl.DataFrame({"ip": [f"q{i}" for i in range(25)]}), spec, transport=transport)
    stats = server_stats(server)
    assert stats["faults"].get("quota", 0) == 0, stats["faults"]
    assert result.stats.rows_ok == 25
    assert stats["requests"] == 25


@pytest.mark.asyncio
async def test_without_pacing_the_same_job_meets_the_quota(quota_apis: dict[str, str]) -> None:
    """The same job with pace_from_headers = false runs into the quota (429s, then their
    Retry-After): what the pacing avoids."""
    server = quota_apis["ietf"]
    spec = parse_spec(spec_for(server, "[limits]\nconcurrency = 8\npace_from_headers = false\n"), environ={})
    result = await enrich_frame(pl.DataFrame({"ip": [f"q{i}" for i in range(25)]}), spec)
    assert server_stats(server)["faults"]["quota"] > 0
    assert result.stats.rows_ok == 25


@pytest.mark.asyncio
async def test_a_job_starting_in_a_spent_quota_window_sends_one_request_first() -> None:
    """9 of a 2 s window's 10 requests already spent (by another client) when a job of 4 keys at
    8 in flight starts: it asks one key, learns that none is left, and holds the rest until the
    window's end; sent all at once, 3 would have been refused."""
    async with MockApi(MockConfig(quota=10, quota_window_s=2.0)) as api:
        async with httpx.AsyncClient() as other_client:
            for i in range(9):
                (await other_client.get(f"{api.url}/v1/lookup/other{i}")).raise_for_status()
        spec = parse_spec(spec_for(api.url, "[limits]\nconcurrency = 8\n"), environ={})
        result = await enrich_frame(pl.DataFrame({"ip": [f"q{i}" for i in range(4)]}), spec)
        stats = api.stats()
    assert stats["faults"].get("quota", 0) == 0, stats["faults"]
    assert stats["requests"] == 9 + 4
    assert result.stats.rows_ok == 4
