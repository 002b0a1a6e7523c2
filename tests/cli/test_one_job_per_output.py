"""One job per OUT, never over its input, and a clean stop on SIGTERM or SIGINT."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import polars as pl
import pytest

from service.jobs.checkpoint import state_dir_for
from tests.helpers import (
    enrich_command,
    journal,
    run_cli,
    server_stats,
    wait_until,
    write_lookup_job,
)

pytestmark = pytest.mark.integration


def _job(tmp_path: Path, url: str, rows: int = 2000) -> tuple[Path, Path]:
    return write_lookup_job(tmp_path, url, [f"s{i}" for i in range(rows)], "[limits]\nconcurrency = 8\n")


def _started(job: subprocess.Popen[str], lock: Path) -> bool:
    assert job.poll() is None, job.communicate()
    return lock.exists() and lock.read_text().strip() == str(job.pid)


def test_a_second_job_on_the_same_output_exits_2_naming_the_first(tmp_path: Path, slow_api: str) -> None:
    # About 10 s of requests: the second job starts (a second or two) well within the first.
    source, spec = _job(tmp_path, slow_api, rows=4000)
    output = tmp_path / "out.parquet"
    args = ("run", "--no-flow", str(source), "--spec", str(spec), "--output", str(output), "--no-cache")
    first = subprocess.Popen(enrich_command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: _started(first, state_dir_for(output) / "lock"), "the first job's lock", 25)
        second = run_cli(*args)
        assert second.returncode == 2
        assert second.stderr.startswith(f"enrich: error: another enrich job (pid {first.pid}) is writing")
        assert len(second.stderr.strip().splitlines()) == 1
    finally:
        first.kill()
        first.communicate(timeout=30)
    # The kill let go of the lock: the job resumes.
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    assert pl.read_parquet(output).height == 4000


def test_an_output_that_is_the_input_or_a_symbolic_link_is_refused(tmp_path: Path, slow_api: str) -> None:
    source = tmp_path / "in.csv"
    source.write_text("ip\n1.2.3.4\n")
    _, spec = _job(tmp_path, slow_api, rows=1)
    before = source.read_bytes()
    done = run_cli(
        "run", "--no-flow", str(source), "--spec", str(spec), "--output", str(tmp_path / "." / "in.csv")
    )
    assert done.returncode == 2
    assert "is the input file" in done.stderr
    assert source.read_bytes() == before
    link = tmp_path / "link.csv"
    link.symlink_to(tmp_path / "elsewhere.csv")
    done = run_cli("run", "--no-flow", str(source), "--spec", str(spec), "--output", str(link))
    assert done.returncode == 2
    assert "is a symbolic link" in done.stderr
    assert not (tmp_path / "elsewhere.csv").exists()


@pytest.mark.parametrize(("sent", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_the_job_cleanly_and_a_rerun_resumes(
    tmp_path: Path, slow_api: str, sent: signal.Signals, status: int
) -> None:
    """Stopped mid-job: one line saying how to resume, the signal's status, no OUT, the state kept;
    the rerun asks again only what was in flight at the signal."""
    source, spec = _job(tmp_path, slow_api, rows=1600)
    output = tmp_path / "out.parquet"
    args = ("run", "--no-flow", str(source), "--spec", str(spec), "--output", str(output), "--no-cache")
    before = server_stats(slow_api)["requests"]
    job = subprocess.Popen(enrich_command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: server_stats(slow_api)["requests"] > before + 200, "requests under way", 25)
        job.send_signal(sent)
        _, stderr = job.communicate(timeout=25)
    finally:
        if job.poll() is None:
            job.kill()
            job.communicate(timeout=30)
    assert job.returncode == status, stderr
    assert stderr.strip().splitlines()[-1] == (
        f"enrich: error: stopped by {sent.name}; finished batches and every answer received are "
        f"kept in {output}.enrich/: run the same command again to resume"
    )
    assert "Traceback" not in stderr
    assert not output.exists()
    assert state_dir_for(output).exists()
    asked = server_stats(slow_api)["requests"] - before
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    # Nothing answered was asked again: at most the 8 requests in flight at the signal.
    assert 1600 <= server_stats(slow_api)["requests"] - before <= 1600 + 8
    assert asked < 1600
    assert pl.read_parquet(output)["row"].to_list() == list(range(1600))
    assert journal(output) == []  # the state went with success


def test_a_deadline_stops_the_job_cleanly_and_a_rerun_resumes(tmp_path: Path, slow_api: str) -> None:
    """--deadline 2s on a job of about 4 s (1,600 keys, 20 ms, 8 at a time): exit 3, no OUT, the
    state kept; the rerun finishes, asking again at most what was in flight when the deadline
    passed."""
    source, spec = _job(tmp_path, slow_api, rows=1600)
    output = tmp_path / "out.parquet"
    args = ("run", "--no-flow", str(source), "--spec", str(spec), "--output", str(output), "--no-cache")
    before = server_stats(slow_api)["requests"]
    stopped = run_cli(*args, "--deadline", "2s")
    assert stopped.returncode == 3, stopped.stderr
    assert "the job's deadline (2 s) passed; rerun to resume" in stopped.stderr
    assert not output.exists()
    asked = server_stats(slow_api)["requests"] - before
    assert 0 < asked < 1600
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    assert 1600 <= server_stats(slow_api)["requests"] - before <= 1600 + 8
    assert pl.read_parquet(output)["row"].to_list() == list(range(1600))
