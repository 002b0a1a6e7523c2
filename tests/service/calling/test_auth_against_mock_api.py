"""OAuth2 client credentials against the mock API's token endpoint, counted by the server: one
token for many concurrent requests, a refresh before expiry and after a 401, a 401 that stays
final, the token never shown, and a refusing token endpoint as one line before any request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import polars as pl
import pytest

from service import SENDER_NAMES, Caller, enrich_frame, parse_spec
from tests.helpers import run_cli, running_mock_api, server_stats

pytestmark = pytest.mark.integration

CLIENT = "client-7"
SECRET = "s3cr3t-7f1e"
TRANSPORTS = SENDER_NAMES


def oauth_spec(url: str, extra: str = "", secret: str = "${CLIENT_SECRET}") -> str:
    return f"""
[api]
url = "{url}/v1/lookup/{{ip}}"
[input]
key = "ip"
[output.columns]
country = {{ path = "country.iso_code", type = "str" }}
[auth]
type = "oauth2_client_credentials"
token_url = "{url}/oauth/token"
client_id = "{CLIENT}"
client_secret = "{secret}"
scope = "lookup"
{extra}"""


async def post(url: str) -> None:
    async with httpx.AsyncClient() as client:
        (await client.post(url, timeout=5)).raise_for_status()


def started(*options: str) -> Iterator[str]:
    with running_mock_api("--oauth-client", f"{CLIENT}:{SECRET}", *options) as url:
        yield url


@pytest.fixture(scope="module")
def oauth_process() -> Iterator[str]:
    yield from started()


@pytest.fixture
def oauth_api(oauth_process: str) -> str:
    """The mock API in OAuth2 mode (tokens live an hour), its counts reset, its tokens revoked."""
    for path in ("/_reset", "/_revoke"):
        httpx.post(f"{oauth_process}{path}", timeout=5).raise_for_status()
    return oauth_process


@pytest.mark.asyncio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_one_token_for_64_concurrent_requests(oauth_api: str, transport: str) -> None:
    spec = parse_spec(
        oauth_spec(oauth_api, "[limits]\nconcurrency = 64\n"), environ={"CLIENT_SECRET": SECRET}
    )
    result = await enrich_frame(
        pl.DataFrame({"ip": [f"o{i}" for i in range(300)]}), spec, transport=transport
    )
    stats = server_stats(oauth_api)
    assert result.stats.rows_ok == 300
    assert stats["faults"].get("tokens_issued") == 1
    assert stats["faults"].get("unauthorized_token", 0) == 0
    assert stats["requests"] == 300


@pytest.mark.asyncio
async def test_a_revoked_token_is_replaced_once_and_a_401_after_that_is_final(oauth_api: str) -> None:
    """Two frames on one caller, one request at a time; the tokens revoked between them: the next
    request meets one 401, one new token is fetched, and every row is answered. A key the API
    refuses whatever the token (401-) is asked twice, then fails, and costs no token: a refusal
    so soon after a refresh is the key's (service.calling.oauth.REFUSAL_REFRESH_FLOOR_S)."""
    spec = parse_spec(oauth_spec(oauth_api, "[limits]\nconcurrency = 1\n"), environ={"CLIENT_SECRET": SECRET})
    async with Caller(spec) as caller:
        first = await enrich_frame(pl.DataFrame({"ip": ["a1", "a2"]}), spec, caller=caller)
        await post(f"{oauth_api}/_revoke")
        second = await enrich_frame(pl.DataFrame({"ip": ["b1", "b2", "401-x"]}), spec, caller=caller)
    stats = server_stats(oauth_api)
    assert first.stats.rows_ok == 2
    assert second.frame["_enrich_status"].to_list() == ["ok", "ok", "failed"]
    assert second.frame["_enrich_error"][2] == "http_4xx"
    assert stats["faults"]["unauthorized_token"] == 1
    assert stats["faults"]["tokens_issued"] == 2  # at the start, after the revocation
    assert stats["per_key"]["401-x"] == 2
    assert stats["per_key"]["b1"] == 2  # refused once, then answered


@pytest.fixture(scope="module")
def short_lived_process() -> Iterator[str]:
    yield from started("--token-ttl-s", "1")


@pytest.mark.asyncio
async def test_a_token_is_refreshed_before_it_expires(short_lived_process: str) -> None:
    """Tokens living 1 s, a job paced at 40 requests a second for 120 keys (about 3 s): tokens
    are renewed as they near their end (0.9 s), so the API refuses none."""
    await post(f"{short_lived_process}/_reset")
    spec = parse_spec(
        oauth_spec(short_lived_process, '[limits]\nconcurrency = 4\nrate = "40/s"\n'),
        environ={"CLIENT_SECRET": SECRET},
    )
    result = await enrich_frame(pl.DataFrame({"ip": [f"r{i}" for i in range(120)]}), spec)
    stats = server_stats(short_lived_process)
    assert result.stats.rows_ok == 120
    assert stats["faults"].get("unauthorized_token", 0) == 0
    assert stats["faults"]["tokens_issued"] >= 3
    assert stats["requests"] == 120


def test_the_token_is_never_shown(oauth_api: str, tmp_path: Path) -> None:
    """The mock echoes the Authorization header of echo- keys in a 400: the row's message carries
    `Bearer ***`, and no token (tok-...) nor the client secret is in the output, the cache or what
    the command printed."""
    (tmp_path / "spec.toml").write_text(oauth_spec(oauth_api))
    pl.DataFrame({"ip": ["1.2.3.4", "echo-a"]}).write_csv(tmp_path / "in.csv")
    out = tmp_path / "out.csv"
    job = ("run", "--no-flow", str(tmp_path / "in.csv"), "--spec", str(tmp_path / "spec.toml"))
    done = run_cli(
        *job, "--output", str(out), env={"CLIENT_SECRET": SECRET, "ENRICH_CACHE_DIR": str(tmp_path / "c")}
    )
    assert done.returncode == 0, done.stderr
    rows = pl.read_csv(out)
    assert "Bearer ***" in rows["_enrich_message"][1]
    written = [out.read_bytes(), done.stdout.encode(), done.stderr.encode()]
    cached = [path for path in (tmp_path / "c").rglob("*") if path.is_file()]
    assert cached  # the cache was written: its files are searched too
    written += [path.read_bytes() for path in cached]
    assert all(b"tok-" not in blob and SECRET.encode() not in blob for blob in written)


def test_a_refusing_token_endpoint_is_one_line_before_any_request(oauth_api: str, tmp_path: Path) -> None:
    (tmp_path / "spec.toml").write_text(oauth_spec(oauth_api, secret="wrong-secret"))
    pl.DataFrame({"ip": ["1.2.3.4"]}).write_csv(tmp_path / "in.csv")
    out = tmp_path / "out.csv"
    job = ("run", "--no-flow", str(tmp_path / "in.csv"), "--spec", str(tmp_path / "spec.toml"))
    done = run_cli(*job, "--output", str(out))
    assert done.returncode == 2
    assert done.stderr == (
        f'enrich: error: token endpoint {oauth_api}/oauth/token: HTTP 401: {{"error":"invalid_client"}}\n'
    )
    assert not out.exists()
    assert server_stats(oauth_api)["requests"] == 0


def test_try_asks_with_a_token_and_shows_none(oauth_api: str, tmp_path: Path) -> None:
    """enrich try fetches a token too: the key is answered with one request, and neither the
    token nor the client secret is printed."""
    (tmp_path / "spec.toml").write_text(oauth_spec(oauth_api))
    done = run_cli("try", str(tmp_path / "spec.toml"), "ip=1.2.3.4", env={"CLIENT_SECRET": SECRET})
    assert done.returncode == 0, done.stderr
    assert "row ok" in done.stdout.splitlines()
    assert "tok-" not in done.stdout + done.stderr
    assert SECRET not in done.stdout + done.stderr
    stats = server_stats(oauth_api)
    assert (stats["requests"], stats["faults"]["tokens_issued"]) == (1, 1)
