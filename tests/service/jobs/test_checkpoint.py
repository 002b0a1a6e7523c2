"""A job's state: readable by its owner only (its parts hold the API's answers)."""

from __future__ import annotations

import stat
from pathlib import Path

import polars as pl

from service import JobState, state_dir_for


def test_a_jobs_state_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    """OUT.enrich/ is 0700; its manifest, parts and journal are 0600."""
    state = JobState(state_dir_for(tmp_path / "out.parquet"))
    state.open("fingerprint", restart=False)
    state.write_part(0, pl.DataFrame({"answer": ["private"]}))
    state.record_done(0)
    assert stat.S_IMODE(state.directory.stat().st_mode) == 0o700
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in state.directory.iterdir()}
    assert modes == {"manifest.json": 0o600, "part-000000000.parquet": 0o600, "done.log": 0o600}
