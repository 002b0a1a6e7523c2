"""Every bad file, spec or environment a user can cause is one line ``enrich: error: ...`` with
the right exit status (2: the input or spec; 1: the machine), never a traceback."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import sqlite3
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
    signalled_while_reading,
    write_lookup_job,
)

pytestmark = pytest.mark.integration


def _one_line(done: subprocess.CompletedProcess[str], status: int, *needles: str) -> None:
    assert done.returncode == status, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("enrich: error: "), done.stderr
    for needle in needles:
        assert needle in last, last


def _spec(tmp_path: Path, url: str, extra: str = "") -> Path:
    return write_lookup_job(tmp_path, url, ["a"], extra)[1]


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("ragged.csv", "ip,x\n1.2.3.4,1\n5.6.7.8,2,3\n", "ragged.csv: cannot read"),
        (
            "dup.csv",
            "ip,country,ip\n1.2.3.4,x,5.6.7.8\n",
            "column names appear more than once in the header: ip",
        ),
    ],
)
def test_a_bad_csv_is_an_input_error_before_any_request(
    tmp_path: Path, server: str, name: str, content: str, needle: str
) -> None:
    """A ragged file (found while reading batches) and repeated column names (which polars would
    rename silently) both stop the job with one line."""
    source = tmp_path / name
    source.write_text(content)
    done = run_cli("run", "--no-flow", str(source), "--spec", str(_spec(tmp_path, server)),
                   "--output", str(tmp_path / "o.csv"))  # fmt: skip
    _one_line(done, 2, needle)
    assert server_stats(server)["requests"] == 0


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("http://127.0.0.1:99999/v1/{ip}", "api.url: Port out of range 0-65535"),
        ("http://[::1/v1/{ip}", "api.url: Invalid IPv6 URL"),
    ],
)
def test_an_unusable_url_is_a_spec_error(tmp_path: Path, url: str, needle: str) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(f'[api]\nurl = "{url}"\n[input]\nkey = "ip"\n[output.columns]\nc = {{ path = "c" }}\n')
    source = tmp_path / "in.csv"
    source.write_text("ip\n1.2.3.4\n")
    for command in (("validate", str(spec)), ("run", "--no-flow", str(source), "--spec", str(spec),
                                               "--output", str(tmp_path / "o.csv"))):  # fmt: skip
        _one_line(run_cli(*command), 2, needle)


def test_a_line_break_in_a_secret_is_a_spec_error_that_does_not_show_it(tmp_path: Path, server: str) -> None:
    spec = _spec(tmp_path, server, '[api.headers]\nX-Key = "${LEAKY}"\n')
    spec.write_text(spec.read_text().replace("[api.headers]", "").replace('X-Key = "${LEAKY}"', ""))
    spec.write_text(spec.read_text().replace("[input]", 'headers = { X-Key = "${LEAKY}" }\n[input]', 1))
    source = tmp_path / "in.csv"
    source.write_text("ip\n1.2.3.4\n")
    done = run_cli("run", "--no-flow", str(source), "--spec", str(spec), "--output", str(tmp_path / "o.csv"),
                   env={"LEAKY": "top\r\nSecret: 1"})  # fmt: skip
    _one_line(done, 2, "api.headers.X-Key: environment variable 'LEAKY' holds a line break")
    assert "top" not in done.stderr
    assert server_stats(server)["requests"] == 0


def test_an_output_folder_that_cannot_be_created_is_an_environment_error(tmp_path: Path, server: str) -> None:
    source, spec = write_lookup_job(tmp_path, server, ["a"])
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    done = run_cli("run", "--no-flow", str(source), "--spec", str(spec), "--output", str(blocker / "o.csv"))
    _one_line(done, 1, "Not a directory", str(blocker))


def _small_files() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))


def test_a_full_disk_mid_job_is_an_environment_error_and_the_job_resumes(tmp_path: Path, server: str) -> None:
    """Writes past 1 MB fail (RLIMIT_FSIZE: EFBIG, as a full disk gives ENOSPC): one line, exit
    1; run again with room, the job finishes without asking again what it had answered."""
    keys = [f"full-{i}" for i in range(20_000)]
    source, spec = write_lookup_job(tmp_path, server, keys)
    output = tmp_path / "o.parquet"
    command = enrich_command("run", "--no-flow", str(source), "--spec", str(spec), "--output", str(output),
                             "--no-cache", "--batch-size", "2000")  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=25, preexec_fn=_small_files, check=False
    )
    _one_line(done, 1, "then run the same command again")
    asked = server_stats(server)["requests"]
    assert 0 < asked < 20_000
    # What the job keeps: its recorded batches, and the answers its log committed before its
    # write failed; what was buffered or in flight then is lost with the process.
    logged = _logged(state_dir_for(output) / "answers.sqlite")
    assert 0 < len(logged) <= asked
    recorded = {keys[row] for batch in journal(output) for row in range(batch * 2000, batch * 2000 + 2000)}
    before = server_stats(server)["per_key"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=25, check=False)
    assert done.returncode == 0, done.stderr
    assert pl.read_parquet(output).height == 20_000
    # The rerun asks exactly the keys of unrecorded batches that the log does not hold, once each.
    after = server_stats(server)["per_key"]
    asked_again = {key: n - before.get(key, 0) for key, n in after.items() if n != before.get(key, 0)}
    assert asked_again == dict.fromkeys(set(keys) - recorded - logged, 1)


def _logged(path: Path) -> set[str]:
    """The keys a job's answer log holds (merged into its index or not yet)."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        rows = db.execute("SELECT key FROM outcomes UNION SELECT key FROM outcomes_unmerged")
        return {json.loads(text)[0] for (text,) in rows}


def test_a_recorded_part_found_truncated_is_done_again(tmp_path: Path, server: str) -> None:
    source, spec = write_lookup_job(tmp_path, server, [f"t{i}" for i in range(300)])
    output = tmp_path / "o.parquet"
    args = ("run", "--no-flow", str(source), "--spec", str(spec), "--output", str(output),
            "--batch-size", "100", "--keep-state", "--no-cache")  # fmt: skip
    assert run_cli(*args).returncode == 0
    expected = pl.read_parquet(output)
    output.unlink()
    part = state_dir_for(output) / "part-000000001.parquet"
    part.write_bytes(part.read_bytes()[:100])
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    assert "part-000000001.parquet is damaged; its batch is done again" in done.stderr
    assert pl.read_parquet(output).equals(expected)


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (("--dask-workers", "2"), "--dask and --dask-workers run batches as Prefect tasks: drop --no-flow"),
        (
            ("--batches-per-task-run", "3"),
            "--batches-per-task-run groups batches into Prefect task runs: drop --no-flow",
        ),
    ],
)
def test_a_flow_only_option_without_the_flow_is_one_line(
    tmp_path: Path, server: str, flags: tuple[str, ...], needle: str
) -> None:
    """Options that only a flow can honour are refused with --no-flow, before any request."""
    source, spec = write_lookup_job(tmp_path, server, ["a"])
    done = run_cli("run", "--no-flow", str(source), "--spec", str(spec), "--output",
                   str(tmp_path / "o.csv"), *flags)  # fmt: skip
    _one_line(done, 2, needle)
    assert server_stats(server)["requests"] == 0


@pytest.mark.parametrize(
    "command",
    [["validate", "SPEC"], ["run", "in.parquet", "--spec", "SPEC", "--output", "out.parquet", "--no-flow"]],
)
def test_ctrl_c_before_the_work_starts_is_one_line(tmp_path: Path, command: list[str]) -> None:
    """Ctrl-C while a command reads its spec (through a pipe the test holds, so the moment is
    known): exit 130 in one line, not a KeyboardInterrupt's traceback."""
    pl.DataFrame({"ip": ["a"]}).write_parquet(tmp_path / "in.parquet")
    spec = tmp_path / "spec.fifo"
    args = [str(spec) if arg == "SPEC" else arg for arg in command]
    _one_line(
        signalled_while_reading(spec, args, signal.SIGINT, cwd=tmp_path),
        128 + signal.SIGINT,
        "stopped by SIGINT",
    )


# Python runs a ``sitecustomize`` found on its path at start-up: this one holds the import of the
# engine (``service``) on a named pipe the test holds, so the signal lands while it is loading.
_HELD_WHILE_IMPORTING = """
import importlib.abc, os, sys

class HoldTheEngine(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "service":
            sys.meta_path.remove(self)
            with open(os.environ["ENRICH_TEST_IMPORT_PIPE"]) as pipe:
                pipe.read()
        return None

sys.meta_path.insert(0, HoldTheEngine())
"""


def test_ctrl_c_while_python_loads_the_engine_is_one_line(tmp_path: Path) -> None:
    """The engine and its libraries take about a second to import, before any command runs: a
    Ctrl-C then is one line and 130 too (``enrich.cli.main`` imports them inside ``main``)."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(_HELD_WHILE_IMPORTING)
    pipe = tmp_path / "import.fifo"
    env = {**os.environ, "PYTHONPATH": f"{hook}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env["ENRICH_TEST_IMPORT_PIPE"] = str(pipe)
    done = signalled_while_reading(pipe, ["--version"], signal.SIGINT, cwd=tmp_path, env=env)
    _one_line(done, 128 + signal.SIGINT, "stopped by SIGINT")
