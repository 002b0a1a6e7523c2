"""What ``enrich run`` prints as a flow: the progress and the summary, Prefect's own log lines only
with ``-v``, nothing but errors with ``-q``; ``serve`` checks its spec before Prefect starts."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from tests.helpers import run_cli, write_lookup_job

pytestmark = pytest.mark.integration

PREFECT_LINE = "Finished in state Completed()"  # a task run's INFO line, in Prefect's console format


def _run_flow(tmp_path: Path, url: str, api: str, *flags: str) -> tuple[int, str, str, Path]:
    source, spec = write_lookup_job(tmp_path, url, [f"c{i}" for i in range(30)])
    output = tmp_path / "out.parquet"
    done = run_cli(
        "run", str(source), "--spec", str(spec), "--output", str(output), "--batch-size", "10", *flags,
        env={"PREFECT_API_URL": api},
    )  # fmt: skip
    return done.returncode, done.stdout, done.stderr, output


def test_a_flow_run_prints_progress_and_summary_without_prefects_info_lines(
    tmp_path: Path, server: str, prefect_server: str
) -> None:
    """By default: progress lines on stderr, the summary on stdout, no Prefect INFO line."""
    status, stdout, stderr, output = _run_flow(tmp_path, server, prefect_server)
    assert status == 0, stderr
    assert "rows        30 (30 ok, 0 failed)" in stdout
    assert "progress: 30/30 rows (100%)" in stderr
    assert PREFECT_LINE not in stdout + stderr
    assert pl.read_parquet(output).height == 30


def test_verbose_adds_prefects_own_lines(tmp_path: Path, server: str, prefect_server: str) -> None:
    """-v: Prefect's INFO lines too (task runs finishing)."""
    status, _, stderr, _ = _run_flow(tmp_path, server, prefect_server, "-v")
    assert status == 0, stderr
    assert PREFECT_LINE in stderr


def test_quiet_prints_nothing_but_errors(tmp_path: Path, server: str, prefect_server: str) -> None:
    """-q: a job that succeeds prints nothing at all; the exit status and OUT say it."""
    status, stdout, stderr, output = _run_flow(tmp_path, server, prefect_server, "-q")
    assert (status, stdout, stderr) == (0, "", "")
    assert pl.read_parquet(output).height == 30


def test_serve_checks_its_spec_before_prefect_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A broken spec: serve exits 2 in one line before Prefect starts or a folder is made."""
    monkeypatch.chdir(tmp_path)
    _, spec = write_lookup_job(tmp_path, "http://127.0.0.1:9", ["a"], "[limits]\nconcurrency = -3\n")
    done = run_cli("serve", "--spec", str(spec), "--api-port", "9", env={"PREFECT_HOME": str(tmp_path / "p")})
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("enrich: error: limits.concurrency: ")
    assert len(done.stderr.splitlines()) == 1
    assert not (tmp_path / "p").exists()  # Prefect never started: its home was never made
    assert not Path("inbox").exists()


def test_exit_statuses_through_the_flow(tmp_path: Path, server: str, prefect_server: str) -> None:
    """As a flow, as on the engine alone: 4 when more rows failed than allowed (OUT written), 3
    when the API kept failing (no OUT), each said in one line."""
    keys = [f"404-{i}" if i % 2 else f"ok{i}" for i in range(20)]
    source, spec = write_lookup_job(tmp_path, server, keys)
    output = tmp_path / "out.parquet"
    done = run_cli(
        "run", str(source), "--spec", str(spec), "--output", str(output), "--max-error-ratio", "0.4",
        env={"PREFECT_API_URL": prefect_server},
    )  # fmt: skip
    assert done.returncode == 4, done.stderr
    assert done.stderr.splitlines()[-1] == "enrich: error: 50.0% of rows failed, over --max-error-ratio 40.0%"
    assert pl.read_parquet(output).height == 20
    closed = tmp_path / "closed"
    closed.mkdir()
    source, spec = write_lookup_job(
        closed, "http://127.0.0.1:9", keys, "[retry]\nattempts = 1\n[circuit]\nconsecutive_failures = 3\n"
    )
    done = run_cli(
        "run", str(source), "--spec", str(spec), "--output", str(closed / "out.parquet"),
        env={"PREFECT_API_URL": prefect_server},
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert done.stderr.splitlines()[-1].startswith("enrich: error: stopped calling the API: ")
    assert not (closed / "out.parquet").exists()
