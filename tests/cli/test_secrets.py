"""A secret from the environment goes to the API and nowhere else, in whatever form it comes back.

The mock API's echo- keys answer 400 with what they were sent: the URL with its query
(percent-encoded) or the Authorization header (JSON-escaped). The secret, in any of those forms,
must appear in no output stream, no output file, no cache entry, no job state and (as a flow) in
nothing Prefect records: logs, artifacts, events, parameters, all in its database.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote, quote_plus

import polars as pl
import pytest

from tests.helpers import run_cli

pytestmark = pytest.mark.integration

TOKEN = 'sk-live/7c1f+9a=2b"00'


def forms(secret: str) -> list[bytes]:
    """The secret as sent, percent-encoded, form-encoded and JSON-escaped."""
    texts = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}
    return [text.encode() for text in texts]


def spec_for(url: str) -> str:
    return f"""
[api]
url = "{url}/v1/lookup/{{ip}}"
params = {{ key = "${{API_TOKEN}}" }}
headers = {{ Authorization = "Bearer ${{API_TOKEN}}" }}
timeout_s = 5
[input]
key = "ip"
[output.columns]
country = {{ path = "country.iso_code", type = "str" }}
raw = {{ path = "@", type = "json" }}
[retry]
attempts = 2
backoff = {{ initial_s = 0.001, max_s = 0.002 }}
"""


def everything_written(tmp_path: Path, done_output: str) -> dict[str, bytes]:
    """Every byte the job left: streams, OUT, the cache, the kept state, Prefect's home."""
    written = {"streams": done_output.encode()}
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.name not in ("spec.toml", "in.csv"):
            written[str(path.relative_to(tmp_path))] = path.read_bytes()
    return written


# As a flow the job starts a temporary Prefect server of its own, on a fresh PREFECT_HOME (its
# database is searched too): 48 s beside the rest of the suite on a slow day here, and 50 s once.
@pytest.mark.timeout(240)
@pytest.mark.parametrize("mode", ["--no-flow", "--flow"])
def test_a_secret_is_nowhere_but_in_its_requests(server: str, tmp_path: Path, mode: str) -> None:
    """Keys echoing the token back in the URL or the header (400, cached), refusing it (401) and
    failing (500): every row gets its outcome, and nothing the job leaves holds the token."""
    (tmp_path / "spec.toml").write_text(spec_for(server))
    (tmp_path / "in.csv").write_text("ip\necho-url-a\necho-header-a\n401-a\n500-a\n1.1.1.1\n")
    output = tmp_path / "out.csv"
    done = run_cli(
        "run",
        *([mode] if mode == "--no-flow" else []),
        str(tmp_path / "in.csv"),
        "--spec",
        str(tmp_path / "spec.toml"),
        "--output",
        str(output),
        "--keep-state",
        "--cache-dir",
        str(tmp_path / "cache"),
        env={"API_TOKEN": TOKEN, "PREFECT_HOME": str(tmp_path / "prefect")},
        timeout_s=200,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = pl.read_csv(output)
    assert out["_enrich_error"].to_list() == ["http_4xx", "http_4xx", "http_4xx", "http_5xx", None]
    assert out["_enrich_message"][:2].to_list() == [
        f'HTTP 400: {{"rejected": "{server}/v1/lookup/echo-url-a?key=***"}}',
        'HTTP 400: {"rejected": "Bearer ***"}',
    ]
    written = everything_written(tmp_path, done.stdout + done.stderr)
    assert any(name.endswith("responses.sqlite") for name in written)  # the echo's 400 is cached
    if mode == "--flow":
        assert any(name.startswith("prefect/prefect.db") for name in written)
    leaks = [(name, form) for name, data in written.items() for form in forms(TOKEN) if form in data]
    assert leaks == []
