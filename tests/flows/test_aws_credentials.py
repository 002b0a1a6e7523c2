"""Object-storage credentials from a prefect-aws AwsCredentials block: the job reaches the bucket
with the block's keys and endpoint, and only the block's name is recorded."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import polars as pl
import pytest
from prefect.client.orchestration import get_client
from prefect_aws import AwsCredentials
from prefect_aws.client_parameters import AwsClientParameters

from flows.aws_credentials import aws_variables
from flows.enrich_file import enrich_file
from flows.parameters import EnrichFileOptions
from service import InputError
from service.testing.s3_server import s3_environment
from tests.helpers import run_cli, write_lookup_job
from tests.object_store import Bucket

AWS_NAMES = sorted(s3_environment("http://unused"))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, {}),
        (
            {
                "aws_access_key_id": "K",
                "aws_secret_access_key": "S",
                "aws_session_token": "T",
                "region_name": "eu-west-3",
            },
            {
                "AWS_ACCESS_KEY_ID": "K",
                "AWS_SECRET_ACCESS_KEY": "S",
                "AWS_SESSION_TOKEN": "T",
                "AWS_REGION": "eu-west-3",
            },
        ),
        (
            {"aws_client_parameters": {"endpoint_url": "http://127.0.0.1:9000"}},
            {"AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_ALLOW_HTTP": "true"},
        ),
        (
            {"aws_client_parameters": {"endpoint_url": "https://minio.example"}},
            {"AWS_ENDPOINT_URL": "https://minio.example"},
        ),
        ({"aws_access_key_id": None, "aws_client_parameters": {"endpoint_url": None}}, {}),
    ],
)
def test_a_blocks_fields_become_the_standard_variables(
    data: dict[str, object], expected: dict[str, str]
) -> None:
    assert aws_variables("b", data) == expected


@pytest.mark.parametrize(
    ("field", "what"), [("profile_name", "a profile"), ("assume_role_arn", "a role to assume")]
)
def test_what_object_store_cannot_take_is_refused_naming_the_field(field: str, what: str) -> None:
    with pytest.raises(InputError, match=rf"block 'b' names {what} \({field}\)"):
        aws_variables("b", {field: "x", "aws_access_key_id": "K"})


@pytest.fixture
def credentials_block(bucket: Bucket, prefect_harness: None, monkeypatch: pytest.MonkeyPatch) -> str:
    """An AwsCredentials block holding the test store's keys and endpoint, saved as a user does;
    this process's AWS_* variables removed: only the block reaches the bucket."""
    name = f"store-{uuid.uuid4().hex[:8]}"
    block = AwsCredentials(
        aws_access_key_id="enrich-test-key",
        aws_secret_access_key="enrich-block-secret",
        region_name="us-east-1",
        aws_client_parameters=AwsClientParameters(endpoint_url=bucket.endpoint),
    )
    block.save(name)
    for variable in AWS_NAMES:
        monkeypatch.delenv(variable, raising=False)
    return name


def test_a_run_reaches_the_bucket_with_the_blocks_credentials(
    tmp_path: Path,
    server: str,
    bucket: Bucket,
    credentials_block: str,
    prefect_server: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source, spec = write_lookup_job(tmp_path, server, ["a", "b"])
    output = bucket.url("out.parquet")
    env = {"PREFECT_API_URL": prefect_server}
    assert not any(name in os.environ for name in AWS_NAMES)  # the child has none either
    done = run_cli("run", "--no-flow", str(source), "--spec", str(spec), "--output", output,
                   "--aws-credentials", credentials_block, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    for variable, value in s3_environment(bucket.endpoint).items():  # to read OUT back here
        monkeypatch.setenv(variable, value)
    assert pl.read_parquet(output).height == 2
    missing = run_cli("run", "--no-flow", str(source), "--spec", str(spec), "--output", output,
                      "--aws-credentials", "no-such-block", env=env)  # fmt: skip
    assert missing.returncode == 2, missing.stderr
    assert missing.stderr.strip().splitlines()[-1] == (
        "enrich: error: no prefect-aws AwsCredentials block named 'no-such-block'"
    )


@pytest.mark.asyncio
async def test_a_flow_run_records_the_blocks_name_never_its_keys(
    tmp_path: Path, server: str, bucket: Bucket, credentials_block: str
) -> None:
    source, spec = write_lookup_job(tmp_path, server, ["a", "b", "c"])
    output = bucket.url("flow-out.parquet")
    state = await enrich_file(
        input=str(source),
        spec=str(spec),
        output=output,
        options=EnrichFileOptions(aws_credentials=credentials_block),
        return_state=True,
    )
    assert state.is_completed(), state.message
    assert pl.read_parquet(output).height == 3
    async with get_client() as client:
        run = await client.read_flow_run(state.state_details.flow_run_id)
    recorded = json.dumps(run.parameters, default=str)
    assert credentials_block in recorded
    assert "enrich-block-secret" not in recorded
