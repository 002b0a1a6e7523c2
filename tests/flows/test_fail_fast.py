"""A bad spec or input stops ``run`` (as a flow) and ``submit`` before Prefect starts: exit 2,
one line, and no flow run recorded on the server for a typo."""

from __future__ import annotations

from pathlib import Path

import httpx
import polars as pl
import pytest

from tests.helpers import free_port, run_cli

pytestmark = pytest.mark.integration

GOOD_COLUMNS = '[output.columns]\ncountry = { path = "country.iso_code", type = "str" }\n'
BAD_COLUMNS = '[output.columns]\ncountry = { path = "country.[", type = "str" }\n'

# name: (input file, columns, the start of the one line)
MISTAKES = {
    "a JMESPath that does not parse": (
        "in.parquet",
        BAD_COLUMNS,
        "enrich: error: output.columns.country.path: invalid JMESPath",
    ),
    "a key column the input lacks": (
        "other.parquet",
        GOOD_COLUMNS,
        "enrich: error: input.key column 'ip' is not in the input",
    ),
    "an input that does not exist": ("missing.parquet", GOOD_COLUMNS, "enrich: error: missing.parquet"),
}


def flow_runs(api_url: str) -> int:
    return int(httpx.post(f"{api_url}/flow_runs/count", json={}, timeout=10).json())


@pytest.mark.parametrize("command", ["run", "submit"])
@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_a_mistake_is_one_line_before_prefect_starts(
    tmp_path: Path, prefect_server: str, command: str, mistake: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, columns, said = MISTAKES[mistake]
    monkeypatch.chdir(tmp_path)
    pl.DataFrame({"ip": ["a", "b"]}).write_parquet("in.parquet")
    pl.DataFrame({"addr": ["a"]}).write_parquet("other.parquet")
    Path("spec.toml").write_text(
        '[api]\nurl = "http://127.0.0.1:9/v1/lookup/{ip}"\n[input]\nkey = "ip"\n' + columns
    )
    before = flow_runs(prefect_server)
    done = run_cli(
        command, source, "--spec", "spec.toml", "--output", "out.parquet",
        env={"PREFECT_API_URL": prefect_server},
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith(said), done.stderr
    assert flow_runs(prefect_server) == before
    assert not Path("out.parquet").exists()
    assert not Path("out.parquet.enrich").exists()  # no job state either


def test_submit_checks_a_spec_without_the_values_only_the_server_has(
    tmp_path: Path, prefect_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The served process holds the spec's secrets, the submitting one need not: submit checks the
    spec's shape and the input (here a missing key column), not the variable's value."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ENRICH_TEST_UNSET_TOKEN", raising=False)
    pl.DataFrame({"addr": ["a"]}).write_parquet("other.parquet")
    Path("spec.toml").write_text(
        '[api]\nurl = "http://127.0.0.1:9/v1/lookup/{ip}"\n'
        'headers = { Authorization = "Bearer ${ENRICH_TEST_UNSET_TOKEN}" }\n[input]\nkey = "ip"\n'
        + GOOD_COLUMNS
    )
    done = run_cli(
        "submit", "other.parquet", "--spec", "spec.toml", "--output", "out.parquet",
        env={"PREFECT_API_URL": prefect_server},
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith("enrich: error: input.key column 'ip' is not in the input"), done.stderr


def test_submit_with_no_api_answering_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing listens at the API URL (serve not started): one line naming the URL and what to
    do, exit 2, instead of Prefect's retries and an 80-line traceback."""
    monkeypatch.chdir(tmp_path)
    pl.DataFrame({"ip": ["a"]}).write_parquet("in.parquet")
    Path("spec.toml").write_text(
        '[api]\nurl = "http://127.0.0.1:9/v1/lookup/{ip}"\n[input]\nkey = "ip"\n' + GOOD_COLUMNS
    )
    nowhere = f"http://127.0.0.1:{free_port()}/api"
    done = run_cli(
        "submit", "in.parquet", "--spec", "spec.toml", "--output", "out.parquet", "--api-url", nowhere
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.splitlines() == [
        f"enrich: error: no Prefect API answers at {nowhere}: start `enrich serve` (its local server "
        "listens there), or name the API with --api-url or PREFECT_API_URL"
    ]
