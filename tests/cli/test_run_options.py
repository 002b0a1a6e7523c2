"""``enrich run``'s ``--limit`` (a dry run on the first rows) and ``--overwrite`` (an existing OUT
is never replaced without a word)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from tests.helpers import run_cli, server_stats, write_lookup_job

pytestmark = pytest.mark.integration


def _run(source: Path, spec: Path, output: Path, *options: str) -> tuple[int, str, str]:
    done = run_cli("run", "--no-flow", str(source), "--spec", str(spec), "--output", str(output), *options)
    return done.returncode, done.stdout, done.stderr


def test_limit_enriches_the_first_rows_only(tmp_path: Path, server: str) -> None:
    """--limit 25 on 100 rows: OUT holds rows 0-24, and only their keys were asked."""
    source, spec = write_lookup_job(tmp_path, server, [f"l{i}" for i in range(100)])
    output = tmp_path / "out.csv"
    status, stdout, stderr = _run(source, spec, output, "--limit", "25", "--batch-size", "10")
    assert status == 0, stderr
    assert pl.read_csv(output)["row"].to_list() == list(range(25))
    assert "rows        25 (25 ok, 0 failed)" in stdout
    assert server_stats(server)["requests"] == 25


def test_an_existing_output_is_replaced_only_when_asked(tmp_path: Path, server: str) -> None:
    """A second run onto a finished OUT exits 2 in one line and leaves it untouched, asking
    nothing; with --overwrite it replaces it."""
    source, spec = write_lookup_job(tmp_path, server, [f"o{i}" for i in range(20)])
    output = tmp_path / "out.parquet"
    assert _run(source, spec, output, "--no-cache")[0] == 0
    before = output.read_bytes()
    status, stdout, stderr = _run(source, spec, output, "--no-cache")
    assert (status, stdout) == (2, "")
    assert stderr == f"enrich: error: --output {output} exists: pass --overwrite to replace it\n"
    assert output.read_bytes() == before
    assert server_stats(server)["requests"] == 20
    status, _, stderr = _run(source, spec, output, "--no-cache", "--overwrite", "--limit", "5")
    assert status == 0, stderr
    assert pl.read_parquet(output).height == 5


def test_a_rerun_of_the_job_that_wrote_the_output_needs_no_overwrite(tmp_path: Path, server: str) -> None:
    """A job that kept its state (--keep-state) runs again onto its own OUT without --overwrite:
    every batch is done already, nothing is asked again."""
    source, spec = write_lookup_job(tmp_path, server, [f"k{i}" for i in range(20)])
    output = tmp_path / "out.ndjson"
    for _ in range(2):
        status, _, stderr = _run(source, spec, output, "--no-cache", "--keep-state", "--batch-size", "5")
        assert status == 0, stderr
    assert server_stats(server)["requests"] == 20
    assert pl.read_ndjson(output).height == 20


@pytest.mark.parametrize(
    ("in_spec", "flag", "dots_error"),
    [
        (None, None, None),
        ("pyreqwest", None, "invalid_key"),
        (None, "pyreqwest", "invalid_key"),
        ("pyreqwest", "aiohttp", None),  # the flag wins
    ],
)
def test_the_sender_is_the_spec_s_or_the_flag_s(
    tmp_path: Path, server: str, in_spec: str | None, flag: str | None, dots_error: str | None
) -> None:
    """[api].transport and --transport choose the sender. Seen from outside by pyreqwest's one
    difference: a key ".." in a URL path (which its URL parser would resolve to the parent path)
    fails as invalid_key, unasked, where the other senders send it percent-encoded."""
    source, spec = write_lookup_job(tmp_path, server, ["a", ".."])
    if in_spec is not None:
        spec.write_text(spec.read_text().replace("[input]", f'transport = "{in_spec}"\n[input]'))
    options = () if flag is None else ("--transport", flag)
    status, _, stderr = _run(source, spec, tmp_path / "out.csv", *options)
    assert status == 0, stderr
    out = pl.read_csv(tmp_path / "out.csv")
    assert out["_enrich_error"].to_list() == [None, dots_error]
    assert server_stats(server)["requests"] == (1 if dots_error else 2)


def test_an_unknown_sender_is_one_line(tmp_path: Path, server: str) -> None:
    source, spec = write_lookup_job(tmp_path, server, ["a"])
    status, stdout, stderr = _run(source, spec, tmp_path / "out.csv", "--transport", "curl")
    assert (status, stdout) == (2, "")
    assert stderr == (
        "enrich: error: --transport: unknown transport 'curl': use one of aiohttp, httpx, pyreqwest\n"
    )
