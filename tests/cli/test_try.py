"""``enrich try``: one request for one key against the mock API, shown whole, secrets redacted,
the row's columns or its error class, and the exit status saying which."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import run_cli, server_stats

pytestmark = pytest.mark.integration

TOKEN = "tok-3f9a81c2e7"


def write_spec(tmp_path: Path, url: str, extra: str = "") -> Path:
    spec = tmp_path / "spec.toml"
    spec.write_text(
        f'[api]\nurl = "{url}/v1/lookup/{{ip}}?token=${{TOKEN}}"\n'
        'headers = { Authorization = "Bearer ${TOKEN}" }\n'
        '[input]\nkey = "ip"\n[output.columns]\n'
        'country = { path = "country.iso_code", type = "str" }\n'
        'asn = { path = "asn", type = "i64" }\n'
        'tags = { path = "tags", type = "list[str]" }\n' + extra
    )
    return spec


def try_key(tmp_path: Path, url: str, *values: str) -> tuple[int, list[str], str]:
    done = run_cli("try", str(write_spec(tmp_path, url)), *values, env={"TOKEN": TOKEN})
    assert TOKEN not in done.stdout + done.stderr
    return done.returncode, done.stdout.splitlines(), done.stderr


def test_an_answer_is_shown_with_its_row(tmp_path: Path, server: str) -> None:
    """The request (token redacted in the URL and the header), the 200 with its body, and each
    column with its type and value; exit 0; exactly one request."""
    status, lines, stderr = try_key(tmp_path, server, "ip=1.2.3.4")
    assert (status, stderr) == (0, "")
    assert lines[0] == f"GET {server}/v1/lookup/1.2.3.4?token=***"
    assert "Authorization: Bearer ***" in lines
    assert any(line.startswith("HTTP 200 OK, ") and line.endswith(" ms") for line in lines)
    assert '  "key": "1.2.3.4",' in lines
    assert "row ok" in lines
    row = lines[lines.index("row ok") + 1 :]
    assert [line.split()[:2] for line in row] == [["country", "str"], ["asn", "i64"], ["tags", "list[str]"]]
    assert server_stats(server)["requests"] == 1


@pytest.mark.parametrize(
    ("key", "answer", "row"),
    [
        ("404-a", "HTTP 404 Not Found, ", "row failed: http_4xx: HTTP 404"),
        ("503-a", "HTTP 503 Service Unavailable, ", "row failed: http_5xx: HTTP 503"),
        ("badjson-a", "HTTP 200 OK, ", "row failed: invalid_json: "),
    ],
)
def test_a_failing_answer_shows_its_error_class(
    tmp_path: Path, server: str, key: str, answer: str, row: str
) -> None:
    """404, 503 and a body that is not JSON: the answer is shown, the row's error class named,
    exit 4; one request each (try never retries)."""
    status, lines, _ = try_key(tmp_path, server, f"ip={key}")
    assert status == 4
    assert any(line.startswith(answer) for line in lines), lines
    assert lines[-1].startswith(row), lines[-1]
    assert server_stats(server)["requests"] == 1


def test_an_api_echoing_the_secret_shows_it_redacted(tmp_path: Path, server: str) -> None:
    """The mock API echoes the Authorization header back in its answer: shown as ***."""
    status, lines, _ = try_key(tmp_path, server, "ip=echo-a")
    assert status == 4
    assert any("Bearer ***" in line for line in lines if not line.startswith("Authorization:"))


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        (["address=1"], "'address' is not a key column (input.key: ip)"),
        (["ip"], "'ip': give each key column as NAME=VALUE (text) or NAME:=JSON"),
        (["ip:={"], "ip:={: not JSON (use ip=TEXT for text)"),
        (["ip=1", "ip=2"], "key column 'ip' is given twice"),
    ],
)
def test_a_key_given_wrong_is_one_line(tmp_path: Path, server: str, values: list[str], problem: str) -> None:
    """A key column unknown, malformed, not JSON or twice: one line, exit 2, no request."""
    status, lines, stderr = try_key(tmp_path, server, *values)
    assert (status, lines) == (2, [])
    assert stderr == f"enrich: error: {problem}\n"
    assert server_stats(server)["requests"] == 0


@pytest.mark.parametrize(
    ("key", "row"),
    [
        ("apierror-a", "row failed: api_error: quota exceeded for this key"),
        ("pending-a", "row failed: api_error: answer matches [retry].retry_when (status == 'pending')"),
    ],
)
def test_a_200_that_says_it_failed_shows_the_condition(
    tmp_path: Path, server: str, key: str, row: str
) -> None:
    """With answer conditions, try shows the 200 and the verdict a job's attempt would get; exit 4,
    one request (a pending answer is not asked again here)."""
    spec = tmp_path / "conditions.toml"
    spec.write_text(
        f'[api]\nurl = "{server}/v1/lookup/{{ip}}"\nerror_when = "error"\nerror_message = "error.message"\n'
        '[input]\nkey = "ip"\n[output.columns]\ncountry = { path = "country.iso_code", type = "str" }\n'
        "[retry]\nretry_when = \"status == 'pending'\"\n"
    )
    done = run_cli("try", str(spec), f"ip={key}")
    lines = done.stdout.splitlines()
    assert done.returncode == 4, done.stderr
    assert any(line.startswith("HTTP 200 OK, ") for line in lines), lines
    assert lines[-1] == row
    assert server_stats(server)["requests"] == 1
