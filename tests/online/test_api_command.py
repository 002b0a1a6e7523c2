"""``enrich api`` as a user runs it: a real server on loopback, SIGTERM drains, one-line errors."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import (
    enrich_command,
    free_port,
    healthy,
    release_held_keys,
    run_cli,
    server_stats,
    signalled_while_reading,
    stop_serving,
    wait_until,
    write_lookup_job,
)

pytestmark = pytest.mark.integration


def write_spec(tmp_path: Path, url: str) -> Path:
    return write_lookup_job(tmp_path, url, [], api_options="timeout_s = 20")[1]


@pytest.fixture
def endpoint(
    tmp_path: Path, mock_url: str, request: pytest.FixtureRequest
) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    """``enrich api`` serving the spec as "ip" (more options: the test's indirect parameter); its
    process, base URL and log."""
    port, log = free_port(), tmp_path / "api.log"
    spec = write_spec(tmp_path, mock_url)
    more: list[str] = getattr(request, "param", [])
    with log.open("wb") as output:
        serving = subprocess.Popen(
            enrich_command("api", "--spec", f"ip={spec}", "--port", str(port), "--no-cache", *more),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: healthy(f"{base}/readyz") or serving.poll() is not None, "enrich api to be ready", 30
        )
        assert serving.poll() is None, log.read_text()
        yield serving, base, log
    finally:
        stop_serving(serving)


def test_sigterm_lets_requests_in_flight_finish_and_refuses_new_ones(
    endpoint: tuple[subprocess.Popen[bytes], str, Path], mock_url: str
) -> None:
    serving, base, log = endpoint
    first = httpx.post(f"{base}/v1/enrich/ip", json={"rows": [{"ip": "sigterm-first"}]}, timeout=20)
    assert first.json()["rows"][0]["_enrich_status"] == "ok"  # the caller's first request goes alone
    answers: list[httpx.Response] = []
    asking = threading.Thread(
        target=lambda: answers.append(
            httpx.post(f"{base}/v1/enrich/ip", json={"rows": [{"ip": "held-sigterm"}]}, timeout=30)
        )
    )
    asking.start()
    try:
        wait_until(lambda: "held-sigterm" in server_stats(mock_url)["per_key"], "the held key asked", 20)
        serving.send_signal(signal.SIGTERM)
        wait_until(lambda: httpx.get(f"{base}/readyz", timeout=2).status_code == 503, "draining", 20)
        refused = httpx.post(f"{base}/v1/enrich/ip", json={"rows": [{"ip": "sigterm-late"}]}, timeout=10)
    finally:
        release_held_keys(mock_url)
        asking.join(30)
    assert refused.status_code == 503
    assert refused.json() == {"error": "shutting down: ask another instance"}
    [held] = answers
    assert held.status_code == 200
    assert held.json()["rows"][0]["_enrich_status"] == "ok"
    assert serving.wait(timeout=30) == 0
    assert f"  ip           POST {base}/v1/enrich/ip" in log.read_text()
    assert "sigterm-late" not in server_stats(mock_url)["per_key"]


@pytest.mark.parametrize("endpoint", [["--drain", "600"]], indirect=True)
def test_a_second_signal_stops_it_without_waiting_for_the_drain(
    endpoint: tuple[subprocess.Popen[bytes], str, Path], mock_url: str
) -> None:
    """SIGTERM starts a drain of up to 600 s behind a request the API never answers; a second
    SIGTERM ends the process now (the held request's connection goes with it)."""
    serving, base, log = endpoint
    answers: list[httpx.Response | Exception] = []

    def ask() -> None:
        try:
            answers.append(
                httpx.post(f"{base}/v1/enrich/ip", json={"rows": [{"ip": "held-twice"}]}, timeout=60)
            )
        except httpx.TransportError as exc:
            answers.append(exc)

    asking = threading.Thread(target=ask)
    asking.start()
    try:
        wait_until(lambda: "held-twice" in server_stats(mock_url)["per_key"], "the held key asked", 20)
        serving.send_signal(signal.SIGTERM)
        wait_until(lambda: httpx.get(f"{base}/readyz", timeout=2).status_code == 503, "draining", 20)
        serving.send_signal(signal.SIGTERM)
        code = serving.wait(timeout=30)  # the drain alone would last 600 s: the key stays held
        asking.join(30)
    finally:
        release_held_keys(mock_url)
    assert code != 0, log.read_text()
    assert "Traceback" not in log.read_text()
    [unanswered] = answers
    assert isinstance(unanswered, httpx.TransportError) or unanswered.status_code >= 500, unanswered


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_a_port_in_use_is_one_line(tmp_path: Path, mock_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_cli(
            "api", "--spec", f"ip={write_spec(tmp_path, mock_url)}", "--port", str(port), "--no-cache"
        )
    assert done.returncode == 1
    assert one_line_error(done) == f"enrich: error: cannot listen on 127.0.0.1:{port}: Address already in use"


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        (
            ["--spec", "ip={spec}", "--spec", "ip={spec}"],
            "enrich: error: --spec ip=...: the name 'ip' is given twice",
        ),
        (["--spec", "ip={missing}"], "spec file not found"),
        (["--spec", "ip={spec}", "--cache-dir", "redis://127.0.0.1:1/0"], "enrich: error: "),
    ],
)
def test_what_a_user_gets_wrong_is_one_line(
    tmp_path: Path, mock_url: str, arguments: list[str], says: str
) -> None:
    spec, missing = write_spec(tmp_path, mock_url), tmp_path / "nope.toml"
    filled = [argument.format(spec=spec, missing=missing) for argument in arguments]
    done = run_cli("api", *filled, "--port", str(free_port()))
    assert done.returncode == 2
    line = one_line_error(done)
    assert line.startswith("enrich: error: ")
    assert says in line


def test_a_spec_without_a_name_is_a_usage_error() -> None:
    done = run_cli("api", "--spec", "spec.toml")
    assert done.returncode == 2
    assert "argument --spec: 'spec.toml': expected NAME=SPEC, e.g. ip=spec.toml" in done.stderr


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_starting_stops_it_in_one_line(tmp_path: Path, stop: signal.Signals) -> None:
    """Ctrl-C or SIGTERM while ``enrich api`` is still starting (here: reading its spec, which
    comes through a pipe the test holds): it exits 128 + the signal at once, in one line, without
    ever serving; a Ctrl-C was a KeyboardInterrupt's traceback."""
    spec = tmp_path / "spec.fifo"
    args = ["api", "--spec", f"ip={spec}", "--port", str(free_port()), "--no-cache"]
    starting = signalled_while_reading(spec, args, stop)
    assert starting.returncode == 128 + stop, starting.stderr
    assert starting.stderr == f"enrich: error: stopped by {stop.name} while starting; nothing was served\n"
    assert "serving" not in starting.stdout
