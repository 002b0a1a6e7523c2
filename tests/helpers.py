"""Helpers the tests share: a spec builder, the mock API and the CLI in child processes, waits."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import httpx
import polars as pl
import pytest

from service import Spec, parse_spec
from service.calling.caller import RATE_HEADROOM
from service.testing import MockClock, start_mock_api, stop_mock_api

SHOWN_WITH_A_FAILURE = pytest.StashKey[dict[str, Callable[[], str]]]()


def show_with_a_failure(item: pytest.Item, title: str, describe: Callable[[], str]) -> None:
    """Have a failure of ``item``'s call show ``describe()`` under ``title`` (what another process
    printed meanwhile: a CI run's machine is gone by the time its log is read)."""
    item.stash.setdefault(SHOWN_WITH_A_FAILURE, {})[title] = describe


def redis_test_url() -> str:
    """The Redis database the tests may empty: ENRICH_TEST_REDIS, or database 15 of the local one,
    15 - N on parallel test worker gwN (two workers flushing one database would erase each
    other's entries)."""
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    return os.environ.get("ENRICH_TEST_REDIS", f"redis://127.0.0.1:6379/{15 - worker}")


def make_spec(
    body: str = "", *, url: str = "http://api.test/v1/lookup/{k}", key: str = '["k"]', **env: str
) -> Spec:
    """A spec for tests: ``body`` holds extra TOML sections (they replace the defaults below)."""
    sections = {
        "api": f'[api]\nurl = "{url}"\ntimeout_s = 5\n',
        "input": f"[input]\nkey = {key}\n",
        "output": '[output.columns]\nname = { path = "name", type = "str" }\n',
        "retry": "[retry]\nattempts = 3\nbackoff = { initial_s = 1, max_s = 8, jitter = 0 }\n",
    }
    text = textwrap.dedent(body)
    for name in list(sections):
        if f"[{name}" in text:
            del sections[name]
    return parse_spec("".join(sections.values()) + text, environ=env)


@contextlib.contextmanager
def running_mock_api(*options: str) -> Iterator[str]:
    """The mock API in a child process with ``options``, stopped on exit; yields its URL."""
    process, url = start_mock_api(*options)
    try:
        yield url
    finally:
        stop_mock_api(process)


def server_stats(url: str, *, totals_only: bool = False) -> dict[str, Any]:
    """The mock API's own counters (``totals_only``: without those per key, cheap to poll)."""
    counters: dict[str, Any] = httpx.get(f"{url}/_stats{'?totals' if totals_only else ''}", timeout=5).json()
    return counters


def release_held_keys(url: str) -> None:
    """Let the mock API answer its held- keys' requests, waiting until now."""
    httpx.post(f"{url}/_release", timeout=5).raise_for_status()


def enrich_command(*args: str) -> list[str]:
    """The argv of ``enrich ARGS`` in a child process."""
    return [sys.executable, "-m", "enrich", *args]


# Under the suite's per-test timeout (60 s, pyproject.toml): a command that hangs fails its test
# with this bound's clear error, not with pytest's timeout. Tests running longer commands pass
# their own bound and mark their own, longer, test timeout.
CLI_TIMEOUT_S = 50


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout_s: float = CLI_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """Run ``enrich ARGS`` to the end (at most ``timeout_s``), with ``env`` added to this environment."""
    return subprocess.run(
        enrich_command(*args),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, **(env or {})},
        check=False,
    )


def write_lookup_job(
    tmp_path: Path, url: str, keys: list[str], extra_spec: str = "", *, api_options: str = ""
) -> tuple[Path, Path]:
    """An input (row number, ip) and a spec looking each ip up on the mock API at ``url``;
    ``api_options``: more lines of its [api] table."""
    source = tmp_path / "in.parquet"
    pl.DataFrame({"row": range(len(keys)), "ip": keys}).write_parquet(source)
    spec = tmp_path / "spec.toml"
    spec.write_text(
        f'[api]\nurl = "{url}/v1/lookup/{{ip}}"\n{api_options}\n[input]\nkey = "ip"\n'
        '[output.columns]\ncountry = { path = "country.iso_code", type = "str" }\n' + extra_spec
    )
    return source, spec


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(condition: Callable[[], bool], what: str, deadline_s: float) -> None:
    """Poll ``condition`` (another process's progress) until it holds; fail after ``deadline_s``."""
    give_up = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > give_up:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def signalled_while_reading(
    pipe: Path,
    args: list[str],
    sent: signal.Signals,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``enrich ARGS`` (``pipe``, made here a named pipe, is one of them, or what ``env``
    tells it to read) and send it ``sent`` once it has opened the pipe to read (its moment known:
    blocked there); then close the pipe. How it ended."""
    os.mkfifo(pipe)
    process = subprocess.Popen(
        enrich_command(*args), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    written: list[int] = []

    def opened() -> bool:
        try:
            written.append(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))  # ENXIO while nobody reads
        except OSError:
            assert process.poll() is None, process.communicate()[1][-2000:]
            return False
        return True

    try:
        wait_until(opened, f"the process to read {pipe.name}", 30)
        process.send_signal(sent)
        os.close(written.pop())
        # The signal may land on another of its threads: the read goes on until the pipe closed.
        stdout, stderr = process.communicate(timeout=30)
    finally:
        for descriptor in written:
            os.close(descriptor)
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=30)
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)


def prefect_api(method: str, url: str, **options: Any) -> httpx.Response:
    """A request to a Prefect server, asked again while it answers 503 (its database busy,
    which under the parallel test run's load happens), as Prefect's own client does; at most 30 s."""
    answers: list[httpx.Response] = []

    def answered() -> bool:
        answers.append(httpx.request(method, url, timeout=30, **options))
        return answers[-1].status_code != 503

    wait_until(answered, f"an answer other than 503 to {method} {url}", 30)
    return answers[-1]


def healthy(url: str) -> bool:
    """Whether ``url`` answers 200 now."""
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def journal(output: Path) -> list[int]:
    """The batches recorded as done in the state of the job writing ``output``."""
    path = output.parent / f"{output.name}.enrich" / "done.log"
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def stop_serving(serving: subprocess.Popen[bytes]) -> int | None:
    """SIGTERM, then its exit status; None when it had not exited within 60 s (it is killed then,
    so that the caller's assertion shows its log rather than a timeout)."""
    serving.send_signal(signal.SIGTERM)
    try:
        return serving.wait(timeout=60)
    except subprocess.TimeoutExpired:
        serving.kill()
        serving.wait(timeout=30)
        return None


def child_pids(pid: int) -> list[int]:
    """The process ``pid``'s children, now (Linux's /proc)."""
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(word) for word in text.split()]


def running(pid: int) -> bool:
    """Whether ``pid`` is alive and not a zombie."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return status.rsplit(")", 1)[1].split()[0] != "Z"


def service_missing(reason: str) -> NoReturn:
    """A test needing a local service (PostgreSQL, Redis) that is not there: skipped, saying why;
    failed when ``ENRICH_REQUIRE_SERVICES=1`` (CI, where they run: a skip there would hide a
    broken machine or a broken test)."""
    if os.environ.get("ENRICH_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (ENRICH_REQUIRE_SERVICES=1: the service must be there)", pytrace=False)
    pytest.skip(reason)


# How much longer one request's trip to the mock API may take than another's on a loaded 2-core
# machine (a send delayed by the event loop, a scheduling gap, a collection): arrivals bunch up by
# that much, so a server-side one-second window may see the starts of a window this much longer.
ARRIVAL_JITTER_S = 0.05


def most_per_second_allowed(rate: float, burst: int, senders: int = 1) -> int:
    """The most requests the mock API may count in any one-second window from ``senders`` paced
    processes (or batches), each sending at ``rate / senders`` with ``burst``: the client paces
    at the rate less its headroom (``RATE_HEADROOM``), so starts in a window of ``w`` seconds are
    at most ``burst + rate * (1 - headroom) * w`` per sender; arrivals, jittered by up to
    ``ARRIVAL_JITTER_S``, fit in a window that much longer."""
    paced = rate * (1 - RATE_HEADROOM)
    return math.floor(senders * burst + paced * (1 + ARRIVAL_JITTER_S))


def scripted_transport(
    answer: Callable[[str, int], httpx.Response], clock: MockClock
) -> tuple[httpx.MockTransport, dict[str, list[float]]]:
    """A transport answering ``answer(key, n)`` to the n-th request for a key (the URL's last
    segment); when each key was asked, on ``clock``."""
    asked: dict[str, list[float]] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        key = request.url.path.rsplit("/", 1)[-1]
        times = asked.setdefault(key, [])
        times.append(clock.now())
        return answer(key, len(times))

    return httpx.MockTransport(handler), asked
