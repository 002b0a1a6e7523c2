"""``${prefect:NAME}``: a Prefect Secret block read when the job loads its spec, against a real
Prefect server (the session's), used as an OAuth2 client secret the mock API checks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from prefect.blocks.system import Secret
from prefect.settings import PREFECT_API_URL, temporary_settings

from tests.helpers import run_cli, running_mock_api, server_stats

pytestmark = pytest.mark.integration

SECRET = "bl0ck-s3cret-42"


@pytest.fixture(scope="module")
def oauth_api() -> Iterator[str]:
    with running_mock_api("--oauth-client", f"client-9:{SECRET}") as url:
        yield url


@pytest.fixture(scope="module")
def secret_block(prefect_server: str) -> str:
    """A Secret block holding the client secret, saved on the session's Prefect server."""
    with temporary_settings({PREFECT_API_URL: prefect_server}):
        Secret(value=SECRET).save("enrich-client-secret", overwrite=True)
    return "enrich-client-secret"


def job(tmp_path: Path, url: str, block: str) -> tuple[str, ...]:
    (tmp_path / "spec.toml").write_text(
        f'[api]\nurl = "{url}/v1/lookup/{{ip}}"\n[input]\nkey = "ip"\n'
        '[output.columns]\ncountry = { path = "country.iso_code", type = "str" }\n'
        f'[auth]\ntype = "oauth2_client_credentials"\ntoken_url = "{url}/oauth/token"\n'
        f'client_id = "client-9"\nclient_secret = "${{prefect:{block}}}"\n'
    )
    pl.DataFrame({"ip": ["1.2.3.4", "5.6.7.8"]}).write_csv(tmp_path / "in.csv")
    return ("run", "--no-flow", str(tmp_path / "in.csv"), "--spec", str(tmp_path / "spec.toml"))


def test_a_secret_block_is_read_and_never_shown(
    tmp_path: Path, oauth_api: str, secret_block: str, prefect_server: str
) -> None:
    out = tmp_path / "out.csv"
    done = run_cli(
        *job(tmp_path, oauth_api, secret_block), "--output", str(out), env={"PREFECT_API_URL": prefect_server}
    )
    assert done.returncode == 0, done.stderr
    assert pl.read_csv(out)["_enrich_status"].to_list() == ["ok", "ok"]
    assert server_stats(oauth_api)["faults"]["tokens_issued"] >= 1
    assert SECRET not in done.stdout + done.stderr + out.read_text()


def test_a_missing_block_is_one_line_naming_it(tmp_path: Path, oauth_api: str, prefect_server: str) -> None:
    out = tmp_path / "out.csv"
    done = run_cli(
        *job(tmp_path, oauth_api, "no-such-block"),
        "--output",
        str(out),
        env={"PREFECT_API_URL": prefect_server},
    )
    assert done.returncode == 2
    assert done.stderr == "enrich: error: auth.client_secret: no Prefect Secret block named 'no-such-block'\n"
    assert not out.exists()
