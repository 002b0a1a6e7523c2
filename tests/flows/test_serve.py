"""enrich serve in a subprocess: health, a submitted job, an inbox sweep, SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import httpx
import polars as pl
import pytest

from tests.helpers import (
    child_pids,
    enrich_command,
    free_port,
    healthy,
    journal,
    run_cli,
    running,
    running_mock_api,
    server_stats,
    stop_serving,
    wait_until,
    write_lookup_job,
)

pytestmark = pytest.mark.integration


@pytest.mark.timeout(400)
def test_serve_submit_inbox_and_sigterm(tmp_path: Path, server: str, prefect_home: Path) -> None:
    """Health within a bound; serve says what it serves, its UI asks its own API; submit runs a
    job and shows its page and summary; a dropped file is enriched and filed; SIGTERM stops it."""
    source, spec = write_lookup_job(tmp_path, server, [f"s{i}" for i in range(20)])
    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    serving, api_url, runner_port = start_serving(tmp_path, spec, interval_s=2, home=prefect_home)
    try:
        wait_until(lambda: healthy(f"http://127.0.0.1:{runner_port}/health"), "the runner's health", 180)
        assert healthy(f"{api_url}/health")  # the URL the checks below (and after the stop) use
        ui = api_url.removesuffix("/api")
        # The UI served on a port other than Prefect's default asks its own API, not 4200's.
        assert httpx.get(f"{ui}/ui-settings", timeout=10).json()["api_url"] == api_url
        log = (tmp_path / "serve.log").read_text()
        assert f"  Prefect UI    {ui}\n" in log
        assert f"  health        http://localhost:{runner_port}/health\n" in log
        assert "  enrich-inbox/enrich-inbox  every 2 s: each new file of " in log
        assert "  at most 5 runs at once (--limit); more wait their turn\n" in log
        output = tmp_path / "submitted.parquet"
        done = run_cli(
            "submit", str(source), "--spec", str(spec), "--output", str(output),
            "--api-url", api_url, "--timeout", "120",
            env={"PREFECT_HOME": str(tmp_path / "prefect")}, timeout_s=150,
        )  # fmt: skip
        assert (done.returncode, done.stderr) == (0, ""), done.stdout + done.stderr
        assert pl.read_parquet(output)["row"].to_list() == list(range(20))
        lines = done.stdout.splitlines()
        page = lines[0].split(" submitted: ")[1]
        assert page.startswith(f"{ui}/runs/flow-run/")
        assert "rows        20 (20 ok, 0 failed)" in lines
        assert lines[-2:] == [f"output      {output}", f"flow run    {page}"]
        # Written under a hidden name, then renamed into place: sweeps skip hidden files.
        pl.DataFrame({"ip": ["i1", "i2"]}).write_csv(inbox / ".drop.csv")
        (inbox / ".drop.csv").rename(inbox / "drop.csv")
        # No trigger: the server's scheduler creates the sweep runs from the 2 s interval.
        wait_until(lambda: (inbox / "done" / "drop.csv").exists(), "a scheduled inbox sweep", 150)
        assert pl.read_parquet(outbox / "drop.csv.enriched.parquet")["ip"].to_list() == ["i1", "i2"]
    finally:
        code = stop_serving(serving)
    log = (tmp_path / "serve.log").read_text()
    assert code == 0, log[-3000:]
    assert not healthy(f"{api_url}/health")  # its local server stopped too
    # Health probes before the runner's first poll were answered, not failed with a traceback.
    assert "_health_check" not in log, log[-3000:]


def _two_jobs_at_once_run_one_after_the_other(tmp_path: Path, api_url: str) -> None:
    """Two jobs submitted with --no-wait (each 4 requests in flight for about 3 s) to a serve of
    --limit 1: the API never sees more than one job's 4 at once (both at once would be 8). Its
    inbox sweeps must be rare: sweeps due every 2 s take that one slot in turn (each run a
    process start) and, late, queue ahead of the jobs (on a loaded CI machine, for minutes)."""
    ui = api_url.removesuffix("/api")
    with running_mock_api("--latency-ms", "20") as api:
        outputs = []
        for name in ("first", "second"):
            keys = [f"{name}{i:03d}" for i in range(600)]
            (tmp_path / name).mkdir()
            source, spec = write_lookup_job(tmp_path / name, api, keys, "[limits]\nconcurrency = 4\n")
            outputs.append(tmp_path / f"{name}.parquet")
            done = run_cli(
                "submit", str(source), "--spec", str(spec), "--output", str(outputs[-1]),
                "--api-url", api_url, "--no-wait",
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            (line,) = done.stdout.splitlines()  # --no-wait: the run's id and page, at once
            flow_run_id = line.split("(")[1].split(")")[0]
            assert line.endswith(f"submitted: {ui}/runs/flow-run/{flow_run_id}")
        for output in outputs:
            wait_until(output.exists, f"{output.name}, submitted without waiting", 120)
        assert server_stats(api, totals_only=True)["most_in_flight"] == 4


@pytest.mark.timeout(200)
def test_a_sigterm_while_starting_stops_serve_and_its_server(tmp_path: Path) -> None:
    """SIGTERM while the local Prefect server starts (a container stopped seconds after its
    start): serve exits 143 at once with one line, and takes its server with it."""
    _, spec = write_lookup_job(tmp_path, "http://127.0.0.1:9", ["a"])
    serving, _, _ = start_serving(tmp_path, spec)
    try:
        wait_until(lambda: bool(child_pids(serving.pid)), "serve to start its Prefect server", 60)
        (prefect_server,) = child_pids(serving.pid)
        serving.send_signal(signal.SIGTERM)
    finally:
        code, log = ended(serving, tmp_path, within_s=60)
    assert code == 128 + signal.SIGTERM, log
    assert log.splitlines()[-1] == "enrich: error: stopped by SIGTERM while starting; nothing was served"
    assert "Traceback" not in log
    assert not running(prefect_server)


@pytest.mark.timeout(300)
def test_serve_stops_when_its_local_server_dies(tmp_path: Path, prefect_home: Path) -> None:
    """The local Prefect server killed under a healthy serve: serve stops too, non-zero, in one
    line, rather than living on half-dead (its runner polling a server that is gone)."""
    _, spec = write_lookup_job(tmp_path, "http://127.0.0.1:9", ["a"])
    serving, api_url, runner_port = start_serving(tmp_path, spec, home=prefect_home)
    try:
        wait_until(lambda: healthy(f"http://127.0.0.1:{runner_port}/health"), "the runner's health", 180)
        wait_until(lambda: deployment_ready(api_url), "the runner's first poll", 60)
        (prefect_server,) = child_pids(serving.pid)
        os.kill(prefect_server, signal.SIGKILL)
    finally:
        code, log = ended(serving, tmp_path, within_s=60)
    assert code == 1, log
    assert log.splitlines()[-1].startswith(
        "enrich: error: the local Prefect server stopped (exit -9) while serving"
    ), log[-3000:]
    # Prefect's own observers may log their lost connections above it (tracebacks included):
    # what its server's death does to Prefect's internals is Prefect's to say.


@pytest.mark.timeout(200)
def test_a_taken_api_port_is_one_line(tmp_path: Path) -> None:
    """--api-port where something else listens: serve's server cannot start, and serve says so in
    one line naming the option, exit 1, rather than a traceback."""
    _, spec = write_lookup_job(tmp_path, "http://127.0.0.1:9", ["a"])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        serving, _, _ = start_serving(tmp_path, spec, api_port=squatter.getsockname()[1])
        code, log = ended(serving, tmp_path, within_s=150)
    assert code == 1, log
    assert log.splitlines()[-1].startswith("enrich: error: the local Prefect server did not start"), log
    assert "--api-port chooses another" in log.splitlines()[-1]
    assert "Traceback" not in log


def ended(serving: subprocess.Popen[bytes], tmp_path: Path, within_s: float) -> tuple[int | None, str]:
    """Serve's exit status once it ended by itself (None if it had to be killed after
    ``within_s``), and its log."""
    try:
        code: int | None = serving.wait(timeout=within_s)
    except subprocess.TimeoutExpired:
        serving.kill()
        serving.wait(timeout=30)
        code = None
    return code, (tmp_path / "serve.log").read_text()


def deployment_ready(api_url: str) -> bool:
    """Whether enrich-file's runner has polled the server (Prefect marks the deployment READY)."""
    answer = httpx.get(f"{api_url}/deployments/name/enrich-file/enrich-file", timeout=5)
    return answer.status_code == 200 and answer.json()["status"] == "READY"


def start_serving(
    tmp_path: Path,
    spec: Path,
    interval_s: float = 60,
    api_port: int | None = None,
    home: Path | None = None,
    limit: int | None = None,
) -> tuple[subprocess.Popen[bytes], str, int]:
    """`enrich serve` with its own local Prefect server (on ``home``, default a fresh one); the
    process, its API URL, its runner port."""
    api_port, runner_port = api_port or free_port(), free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home or tmp_path / "prefect"),
        "PREFECT_RUNNER_SERVER_PORT": str(runner_port),
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
    }
    env.pop("PREFECT_API_URL", None)
    command = enrich_command("serve", "--spec", str(spec), "--api-port", str(api_port))
    command += ["--inbox", str(tmp_path / "inbox"), "--outbox", str(tmp_path / "outbox")]
    command += ["--interval", str(interval_s)] + ([] if limit is None else ["--limit", str(limit)])
    with (tmp_path / "serve.log").open("w") as log:
        serving = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    return serving, f"http://127.0.0.1:{api_port}/api", runner_port


@pytest.mark.timeout(400)
def test_a_run_cut_short_by_shutdown_resumes(tmp_path: Path, prefect_home: Path) -> None:
    """With --limit 1, two jobs submitted at once run one after the other. SIGTERM while a
    submitted job runs: the run is cancelled, OUT is not written, submit ends by itself in one
    line, and running the job again finishes it without asking again for the batches it had
    recorded."""
    keys = [f"r{i:04d}" for i in range(2000)]
    with running_mock_api("--latency-ms", "20") as api:
        source, spec = write_lookup_job(
            tmp_path, api, keys, "[limits]\nconcurrency = 4\n[cache]\nenabled = false\n"
        )
        output = tmp_path / "out.parquet"
        serving, api_url, runner_port = start_serving(tmp_path, spec, home=prefect_home, limit=1)
        submit = None
        try:
            wait_until(lambda: healthy(f"http://127.0.0.1:{runner_port}/health"), "the runner's health", 180)
            _two_jobs_at_once_run_one_after_the_other(tmp_path, api_url)
            submit = subprocess.Popen(
                enrich_command("submit", str(source), "--spec", str(spec), "--output", str(output),
                               "--batch-size", "100", "--api-url", api_url, "--timeout", "120"),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            wait_until(lambda: len(journal(output)) >= 2, "two recorded batches", 120)
            serving.send_signal(signal.SIGTERM)
            assert serving.wait(timeout=60) == 0, (tmp_path / "serve.log").read_text()[-3000:]
            # submit sees its run end, or its server go, and says so in one line by itself.
            _, stderr = submit.communicate(timeout=60)
            assert submit.returncode == 1, stderr
            assert len(stderr.splitlines()) == 1, stderr
            assert stderr.startswith("enrich: error: "), stderr
            assert "submit again to resume" in stderr or "run the same command again" in stderr, stderr
        finally:
            for process in (serving, submit):
                if process is not None and process.poll() is None:
                    process.kill()
                if process is not None:
                    process.wait(timeout=30)
        recorded = journal(output)
        assert 2 <= len(recorded) < 20, recorded
        assert not output.exists()
        log = (tmp_path / "serve.log").read_text()
        assert "Cancelled flow run" in log
        # What serve logged while stopping reached its server before the server stopped.
        assert "Error logging to API" not in log, log[-3000:]
        before = server_stats(api)["per_key"]
        again = run_cli(
            "run",
            str(source),
            "--spec",
            str(spec),
            "--output",
            str(output),
            "--batch-size",
            "100",
            "--no-flow",
            "--concurrency",  # the limits may change on resuming: 2,000 keys at 4 in flight took 10 s
            "64",
        )
        assert again.returncode == 0, again.stdout + again.stderr
        assert pl.read_parquet(output)["ip"].to_list() == keys
        per_key = server_stats(api)["per_key"]
        resumed = {key: per_key[key] - before.get(key, 0) for key in keys}
        recorded_keys = [keys[i] for index in recorded for i in range(index * 100, index * 100 + 100)]
        assert all(resumed[key] == 0 for key in recorded_keys)  # finished batches: not asked again
        assert all(per_key[key] >= 1 for key in keys)
