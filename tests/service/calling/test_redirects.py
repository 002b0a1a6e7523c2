"""Redirects by policy, never silently: followed only as [api].redirects says, each hop a request
under the limits, and nothing secret ever reaching another origin."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import polars as pl
import pytest

from service import SENDER_NAMES, Caller, CallError, enrich_frame, parse_spec
from service.calling.redirects import RedirectPolicy, Redirects, origin_of
from service.calling.requests import PreparedRequest
from service.redact import Redactor
from service.testing import MockClock
from service.testing.mock_answers import answer_for
from tests.helpers import running_mock_api, server_stats

SECRET = "k3y/s3cr3t+1"
HOME = "http://api.test:80"


def hop(
    policy: RedirectPolicy, status: int, location: str, request: PreparedRequest | None = None
) -> PreparedRequest:
    redirects = Redirects(policy, origin_of(HOME), Redactor([SECRET]))
    sent = request or PreparedRequest("POST", f"{HOME}/v1/a", b'{"q": 1}', ("a",))
    return redirects.next_hop(sent, status, location, hops=0)


def test_a_relative_location_stays_home_and_303_asks_for_a_get() -> None:
    """A relative Location resolves against the request; 301/302/303 become a GET with no body;
    the default port is the same origin."""
    following = hop("same-origin", 303, "/v1/b?x=1")
    assert (following.method, following.url, following.body, following.foreign) == (
        "GET",
        "http://api.test/v1/b?x=1",
        None,
        False,
    )


def test_307_and_308_repeat_the_request_as_it_was() -> None:
    """Method and body are kept; another origin is marked foreign."""
    following = hop("any", 307, "https://other.test/v1/b")
    assert (following.method, following.body, following.foreign) == ("POST", b'{"q": 1}', True)


@pytest.mark.parametrize(
    ("policy", "status", "location", "words"),
    [
        ("none", 302, "/v1/b", 'HTTP 302 redirect to http://api.test/v1/b ([api].redirects = "none")'),
        ("same-origin", 301, "https://other.test/x", "another origin"),
        ("same-origin", 302, "http://api.test:8080/x", "another origin"),  # another port
        ("any", 302, "file:///etc/passwd", "not an http(s) URL"),
        ("any", 302, "https://other.test/x?token=k3y%2Fs3cr3t%2B1", "would send a secret to another origin"),
    ],
)
def test_what_is_not_followed_says_why(
    policy: RedirectPolicy, status: int, location: str, words: str
) -> None:
    """Each refusal is a final redirect error naming the status, the target (redacted) and why."""
    with pytest.raises(CallError, match=re.escape(words)) as raised:
        hop(policy, status, location)
    assert raised.value.error_class == "redirect"
    assert SECRET not in raised.value.message


def test_a_body_holding_a_secret_is_never_re_sent_elsewhere() -> None:
    """A 307 to another origin would repeat a body with the secret: refused; at home: followed."""
    request = PreparedRequest("POST", f"{HOME}/v1/a", f'{{"token": "{SECRET}"}}'.encode(), ("a",))
    with pytest.raises(CallError, match="would re-send a body holding a secret elsewhere"):
        hop("any", 307, "https://other.test/v1/a", request)
    assert hop("any", 307, "/v1/b", request).body == request.body


# Loopback: "home" redirects redirect- keys to "landing", another origin that records what it got.

TRANSPORTS = SENDER_NAMES


@pytest.fixture(scope="module")
def origins() -> Iterator[tuple[str, str]]:
    with running_mock_api() as landing, running_mock_api("--redirect-to", landing) as home:
        yield home, landing


@pytest.fixture
def reset(origins: tuple[str, str]) -> tuple[str, str]:
    for url in origins:
        httpx.post(f"{url}/_reset", timeout=5).raise_for_status()
    return origins


def spec_for(home: str, policy: str, extra: str = "") -> str:
    return f"""
[api]
url = "{home}/v1/lookup/{{k}}"
params = {{ key = "${{API_KEY}}" }}
redirects = "{policy}"
{extra}
[api.headers]
Authorization = "Bearer ${{API_KEY}}"
X-Api-Key = "${{API_KEY}}"
Cookie = "session=1"
X-Trace = "plain"
[input]
key = "k"
[output.columns]
country = {{ path = "country.iso_code", type = "str" }}
[retry]
attempts = 2
backoff = {{ initial_s = 0.01, max_s = 0.02 }}
"""


async def enrich(spec_text: str, keys: list[str], transport: str) -> pl.DataFrame:
    spec = parse_spec(spec_text, environ={"API_KEY": SECRET})
    return (await enrich_frame(pl.DataFrame({"k": keys}), spec, transport=transport, clock=MockClock())).frame


@pytest.mark.integration
@pytest.mark.asyncio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_by_default_no_redirect_is_followed(reset: tuple[str, str], transport: str) -> None:
    """redirects = "none": each 3xx fails its row as redirect, on its first attempt; nothing lands."""
    home, landing = reset
    out = await enrich(spec_for(home, "none"), ["redirect-a", "redirectrel-b"], transport)
    assert out["_enrich_error"].to_list() == ["redirect", "redirect"]
    assert out["_enrich_attempts"].to_list() == [1, 1]
    assert (
        out["_enrich_message"][0]
        == f'HTTP 302 redirect to {landing}/v1/lookup/landed-a ([api].redirects = "none")'
    )
    assert server_stats(landing)["requests"] == 0
    assert server_stats(home)["per_key"] == {"redirect-a": 1, "redirectrel-b": 1}


@pytest.mark.integration
@pytest.mark.asyncio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_same_origin_follows_home_only(reset: tuple[str, str], transport: str) -> None:
    """redirects = "same-origin": a relative redirect is followed with the request's headers and
    query; one to another origin fails; the other origin gets nothing."""
    home, landing = reset
    out = await enrich(spec_for(home, "same-origin"), ["redirectrel-a", "redirect-b"], transport)
    assert out["_enrich_error"].to_list() == [None, "redirect"]
    assert out["country"][0] == answer_for("landed-a")["country"]["iso_code"]
    assert "another origin" in out["_enrich_message"][1]
    got = server_stats(home)["received"]["landed-a"]
    assert got["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert server_stats(landing)["requests"] == 0


@pytest.mark.integration
@pytest.mark.asyncio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_any_follows_elsewhere_without_a_secret(reset: tuple[str, str], transport: str) -> None:
    """redirects = "any": the other origin gets the redirected request without Authorization,
    Cookie or any header holding the secret (other headers kept), and nothing when the Location
    copies the secret query parameter."""
    home, landing = reset
    out = await enrich(spec_for(home, "any"), ["redirect-a", "redirectcopy-b"], transport)
    assert out["_enrich_error"].to_list() == [None, "redirect"]
    assert out["country"][0] == answer_for("landed-a")["country"]["iso_code"]
    assert "would send a secret to another origin" in out["_enrich_message"][1]
    received = server_stats(landing)["received"]
    assert set(received) == {"landed-a"}
    headers = {name.lower(): value for name, value in received["landed-a"]["headers"].items()}
    assert "authorization" not in headers
    assert "x-api-key" not in headers
    assert "cookie" not in headers  # a credential header, even one holding no secret of the spec
    assert headers["x-trace"] == "plain"
    assert SECRET not in str(received)


@pytest.mark.integration
@pytest.mark.asyncio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_307_re_sends_a_secret_body_only_at_home(reset: tuple[str, str], transport: str) -> None:
    """A POST whose body holds the secret: a 307 home repeats it; a 307 elsewhere is refused."""
    home, landing = reset
    spec_text = spec_for(home, "any", 'method = "POST"\nbody = { token = "${API_KEY}", k = "{k}" }')
    out = await enrich(spec_text, ["redirectrel307-a", "redirect307-b"], transport)
    assert out["_enrich_error"].to_list() == [None, "redirect"]
    assert server_stats(home)["received"]["landed-a"]["method"] == "POST"
    assert SECRET in server_stats(home)["received"]["landed-a"]["body"]
    assert server_stats(landing)["requests"] == 0


@pytest.mark.integration
@pytest.mark.asyncio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_every_hop_is_a_request_under_the_limits(reset: tuple[str, str], transport: str) -> None:
    """A redirect loop stops after 5 hops: 6 requests in one attempt, each taking a rate-limit
    token; a file:// target is refused."""
    home, _ = reset
    spec = parse_spec(spec_for(home, "any", "") + '[limits]\nrate = "100/s"\n', environ={"API_KEY": SECRET})
    frame = pl.DataFrame({"k": ["redirectloop-a", "redirectfile-b"]})
    async with Caller(spec, transport=transport, clock=MockClock()) as caller:
        out = (await enrich_frame(frame, spec, caller=caller)).frame
        tokens = caller.limiter.statistics().acquisitions
    assert out["_enrich_error"].to_list() == ["redirect", "redirect"]
    assert "more than 5 redirects" in out["_enrich_message"][0]
    assert "not an http(s) URL" in out["_enrich_message"][1]
    assert out["_enrich_attempts"].to_list() == [1, 1]
    assert server_stats(home)["per_key"] == {"redirectloop-a": 6, "redirectfile-b": 1}
    assert tokens == 7
