"""The online endpoint against the real mock API: rows in, rows out, callers sharing one caller."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import orjson
import polars as pl
import pyarrow as pa
import pytest
from prometheus_client.parser import text_string_to_metric_families

from enrich.online.app import OnlineOptions
from enrich.online.bodies import ARROW
from enrich.online.endpoint import EndpointLimits
from service import parse_spec
from tests.helpers import most_per_second_allowed, release_held_keys
from tests.online.conftest import lookup_spec, mock_stats, serving, until

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


def fresh(prefix: str = "") -> str:
    """A key prefix no other test asks for (the mock API and its counters are shared)."""
    return f"{prefix}{uuid.uuid4().hex[:8]}-"


async def test_json_rows_come_back_enriched_in_order(mock_url: str) -> None:
    tag = fresh()
    rows = [
        {"ip": f"{tag}a", "n": 1},
        {"ip": f"404-{tag}", "n": 2},
        {"ip": None, "n": 3},
        {"ip": f"{tag}a", "n": 4},
    ]
    async with serving({"ip": lookup_spec(mock_url)}) as (client, _):
        answer = await client.post("/v1/enrich/ip", json={"rows": rows})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    back = answer.json()["rows"]
    assert [row["n"] for row in back] == [1, 2, 3, 4]
    assert [row["_enrich_status"] for row in back] == ["ok", "failed", "failed", "ok"]
    assert [row["_enrich_error"] for row in back] == [None, "http_4xx", "invalid_key", None]
    assert back[0]["country"] is not None
    assert back[0]["country"] == back[3]["country"]
    assert (await mock_stats(mock_url))["per_key"][f"{tag}a"] == 1  # type: ignore[index]


async def test_arrow_in_arrow_out(mock_url: str) -> None:
    tag = fresh()
    frame = pl.DataFrame({"ip": [f"{tag}a", f"{tag}b"], "n": [1, 2]}, schema={"ip": pl.String, "n": pl.Int8})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, frame.to_arrow().schema) as writer:
        writer.write_table(frame.to_arrow())
    async with serving({"ip": lookup_spec(mock_url)}) as (client, _):
        answer = await client.post(
            "/v1/enrich/ip", content=bytes(sink.getvalue()), headers={"content-type": ARROW}
        )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == ARROW
    back = pl.from_arrow(pa.ipc.open_stream(answer.content).read_all())
    assert isinstance(back, pl.DataFrame)
    assert back["n"].dtype == pl.Int8
    assert back["n"].to_list() == [1, 2]
    assert back["_enrich_status"].to_list() == ["ok", "ok"]
    assert back.columns[-4:] == ["_enrich_status", "_enrich_error", "_enrich_message", "_enrich_attempts"]


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "names"),
    [
        ("/v1/enrich/nope", b'{"rows": []}', {}, 404, "no spec named 'nope' (served: ip)"),
        ("/v1/enrich/ip", b'{"rows": [{"n": 1}]}', {}, 422, "rows[0]: no key column 'ip'"),
        ("/v1/enrich/ip", b'{"rows": [{"ip": [1, 2]}]}', {}, 422, "ip"),
        (
            "/v1/enrich/ip",
            b'{"rows": [{"ip": "a", "pad": "' + b"x" * 600 + b'"}]}',
            {},
            413,
            "over the limit",
        ),
        ("/v1/enrich/ip?timeout=-1", b'{"rows": [{"ip": "a"}]}', {}, 400, "timeout '-1'"),
        ("/v1/enrich/ip", b'{"rows": [{"ip": "a"}]}', {"x-enrich-timeout": "soon"}, 400, "timeout 'soon'"),
        ("/v1/enrich/ip", b"ip=a", {"content-type": "text/csv"}, 415, "'text/csv' is not one of"),
    ],
)
async def test_bad_requests_get_a_json_error_naming_the_problem(
    mock_url: str, path: str, body: bytes, headers: dict[str, str], status: int, names: str
) -> None:
    options = OnlineOptions(cache=False, max_body_bytes=500)
    async with serving({"ip": lookup_spec(mock_url)}, options) as (client, _):
        answer = await client.post(
            path, content=body, headers={"content-type": "application/json", **headers}
        )
    assert answer.status_code == status, answer.text
    assert names in answer.json()["error"]


async def test_callers_asking_the_same_keys_at_once_cause_one_request_per_key(mock_url: str) -> None:
    tag = fresh("held-")
    keys = [f"{tag}{i}" for i in range(10)]
    asks = [[{"ip": key} for key in keys[start : start + 5]] for start in range(6)]  # overlapping
    async with serving({"ip": lookup_spec(mock_url)}) as (client, service):
        # A caller's first request goes alone (it learns the API's answers): not a held one.
        await client.post("/v1/enrich/ip", json={"rows": [{"ip": f"{fresh()}first"}]})
        calls = [asyncio.create_task(client.post("/v1/enrich/ip", json={"rows": rows})) for rows in asks]

        async def all_asked() -> bool:
            per_key = (await mock_stats(mock_url))["per_key"]
            asked = sum(1 for key in keys if key in per_key)  # type: ignore[operator]
            return asked == len(keys) and service.endpoints["ip"].counts.in_flight == len(asks)

        await until(all_asked, "every caller in flight and every key asked")
        release_held_keys(mock_url)
        answers = await asyncio.gather(*calls)
    assert all(answer.status_code == 200 for answer in answers)
    assert all(row["_enrich_status"] == "ok" for answer in answers for row in answer.json()["rows"])
    per_key = (await mock_stats(mock_url))["per_key"]
    assert {key: per_key[key] for key in keys} == dict.fromkeys(keys, 1)  # type: ignore[index]


async def test_the_spec_limits_hold_for_all_callers_together(slow_api: str) -> None:
    spec = lookup_spec(slow_api, '[limits]\nconcurrency = 3\nrate = "40/s"\nburst = 1\n')
    await _reset(slow_api)
    tag = fresh()
    asks = [[{"ip": f"{tag}{caller}-{i}"} for i in range(8)] for caller in range(8)]
    async with serving({"ip": spec}) as (client, _):
        answers = await asyncio.gather(*(client.post("/v1/enrich/ip", json={"rows": rows}) for rows in asks))
    assert all(answer.status_code == 200 for answer in answers)
    stats = await mock_stats(slow_api)
    assert stats["requests"] == 64
    assert stats["most_in_flight"] <= 3  # type: ignore[operator]
    assert stats["most_per_second"] <= most_per_second_allowed(40, burst=1)  # type: ignore[operator]


async def _reset(url: str) -> None:
    import httpx

    async with httpx.AsyncClient(timeout=5) as client:
        (await client.post(f"{url}/_reset")).raise_for_status()


async def test_rows_past_the_deadline_fail_as_timeout_and_the_answer_still_lands(
    mock_url: str, tmp_path: Path
) -> None:
    key = f"{fresh('held-')}a"
    options = OnlineOptions(cache=str(tmp_path / "cache"))
    async with serving({"ip": lookup_spec(mock_url)}, options) as (client, _):
        late = await client.post("/v1/enrich/ip?timeout=0.2", json={"rows": [{"ip": key, "n": 1}]})
        assert late.status_code == 200, late.text
        [row] = late.json()["rows"]
        assert (row["_enrich_status"], row["_enrich_error"], row["n"]) == ("failed", "timeout", 1)
        assert row["country"] is None
        assert "0.2 s" in row["_enrich_message"]
        release_held_keys(mock_url)
        again = await client.post(
            "/v1/enrich/ip", json={"rows": [{"ip": key}]}, headers={"X-Enrich-Timeout": "20"}
        )
    assert again.json()["rows"][0]["_enrich_status"] == "ok"
    assert (await mock_stats(mock_url))["per_key"][key] == 1  # type: ignore[index]


async def test_metrics_count_requests_rows_and_the_api(mock_url: str, tmp_path: Path) -> None:
    tag = fresh()
    rows = [{"ip": f"{tag}a"}, {"ip": f"{tag}b"}, {"ip": f"404-{tag}"}]
    options = OnlineOptions(cache=str(tmp_path / "cache"))
    async with serving({"ip": lookup_spec(mock_url)}, options) as (client, _):
        for _ in range(2):  # the second time, from the cache
            assert (await client.post("/v1/enrich/ip", json={"rows": rows})).status_code == 200
        assert (await client.post("/v1/enrich/ip", json={"rows": [{"n": 1}]})).status_code == 422
        text = (await client.get("/metrics")).text
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert samples[("enrich_api_requests_total", (("code", "200"), ("spec", "ip")))] == 2
    assert samples[("enrich_api_requests_total", (("code", "422"), ("spec", "ip")))] == 1
    assert samples[("enrich_api_rows_total", (("outcome", "ok"), ("spec", "ip")))] == 4
    assert samples[("enrich_api_rows_total", (("outcome", "http_4xx"), ("spec", "ip")))] == 2
    assert samples[("enrich_upstream_requests_total", (("outcome", "ok"), ("spec", "ip")))] == 2
    assert samples[("enrich_upstream_latency_seconds_count", (("spec", "ip"),))] == 3
    assert samples[("enrich_upstream_latency_seconds_bucket", (("le", "+Inf"), ("spec", "ip")))] == 3
    assert samples[("enrich_cache_hits_total", (("spec", "ip"),))] == 3
    assert samples[("enrich_circuit_open", (("spec", "ip"),))] == 0
    assert samples[("enrich_api_requests_in_flight", (("spec", "ip"),))] == 0


@pytest.mark.parametrize(("cooldown_s", "second_time"), [(0.0, "ok"), (3600.0, "circuit_open")])
async def test_the_api_is_tried_again_after_the_cooldown(
    mock_url: str, cooldown_s: float, second_time: str
) -> None:
    tag = fresh()
    spec = lookup_spec(mock_url, "[circuit]\nconsecutive_failures = 2\nfailure_ratio = 0.5\nwindow = 4\n")
    options = OnlineOptions(cache=False, limits=EndpointLimits(circuit_cooldown_s=cooldown_s))
    failing = [{"ip": f"503-{tag}{i}"} for i in range(8)]
    async with serving({"ip": spec}, options) as (client, _):
        first = (await client.post("/v1/enrich/ip", json={"rows": failing})).json()["rows"]
        assert "circuit_open" in {row["_enrich_error"] for row in first}
        assert 'enrich_circuit_open{spec="ip"} 1.0' in (await client.get("/metrics")).text
        await client.post(
            "/v1/enrich/ip", json={"rows": [{"ip": f"{tag}x"}]}
        )  # sees it open: the cool-down starts
        later = (await client.post("/v1/enrich/ip", json={"rows": [{"ip": f"{tag}y"}]})).json()["rows"]
    assert (later[0]["_enrich_error"] or later[0]["_enrich_status"]) == second_time


async def test_past_the_pending_rows_bound_requests_get_503(mock_url: str) -> None:
    tag = fresh("held-")
    options = OnlineOptions(cache=False, limits=EndpointLimits(max_pending_rows=2))
    async with serving({"ip": lookup_spec(mock_url)}, options) as (client, service):
        held = asyncio.create_task(
            client.post("/v1/enrich/ip", json={"rows": [{"ip": f"{tag}{i}"} for i in range(2)]})
        )

        async def holding() -> bool:
            return service.endpoints["ip"].counts.in_flight == 1

        await until(holding, "the first request in flight")
        busy = await client.post("/v1/enrich/ip", json={"rows": [{"ip": f"{tag}more"}]})
        pending = 'enrich_api_rows_pending{spec="ip"} 2.0' in (await client.get("/metrics")).text
        release_held_keys(mock_url)
        assert (await held).status_code == 200
    assert busy.status_code == 503
    assert pending
    assert busy.headers["retry-after"] == "1"
    assert "busy: 2 rows are being enriched" in busy.json()["error"]


@pytest.mark.parametrize(
    ("method", "path", "status"), [("GET", "/v1/enrich/ip", 405), ("POST", "/v2/enrich", 404)]
)
async def test_a_route_not_served_is_a_json_error_too(
    mock_url: str, method: str, path: str, status: int
) -> None:
    async with serving({"ip": lookup_spec(mock_url)}) as (client, _):
        answer = await client.request(method, path)
    assert answer.status_code == status
    assert answer.json()["error"].startswith(f"{method} {path}: no such route (served: POST /v1/enrich/NAME")


async def test_probes_and_draining(mock_url: str) -> None:
    async with serving({"ip": lookup_spec(mock_url)}) as (client, service):
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/readyz")).status_code == 200
        service.begin_draining()
        assert (await client.get("/readyz")).status_code == 503
        refused = await client.post("/v1/enrich/ip", json={"rows": [{"ip": "a"}]})
        assert (await client.get("/healthz")).status_code == 200
    assert refused.status_code == 503
    assert refused.headers["connection"] == "close"
    assert orjson.loads(refused.content) == {"error": "shutting down: ask another instance"}


async def test_a_surprise_while_enriching_is_logged_without_the_secrets(
    mock_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A failure the engine did not foresee is logged with its traceback, every secret of the spec
    replaced: its message may quote a header or a URL (the caller gets a 500 and no details)."""
    token = "tok-" + uuid.uuid4().hex
    spec = parse_spec(
        f'[api]\nurl = "{mock_url}/v1/lookup/{{ip}}"\nheaders = {{ Authorization = "Bearer ${{TOKEN}}" }}\n'
        '[input]\nkey = "ip"\n[output.columns]\ncountry = { path = "country.iso_code", type = "str" }\n',
        environ={"TOKEN": token},
    )

    async def surprise(*_: object, **__: object) -> None:
        raise RuntimeError(f"the request to {mock_url} with 'Authorization: Bearer {token}' went wrong")

    monkeypatch.setattr("enrich.api.enrich_frame", surprise)
    with caplog.at_level("ERROR", logger="enrich.api"):
        async with serving({"ip": spec}) as (client, _):
            answer = await client.post("/v1/enrich/ip", json={"rows": [{"ip": fresh()}]})
    assert answer.status_code == 500, answer.text
    assert token not in answer.text
    assert "ip: enriching 1 rows failed" in caplog.text
    assert "RuntimeError: the request to " in caplog.text  # the traceback is there
    assert "Bearer ***" in caplog.text
    assert token not in caplog.text
