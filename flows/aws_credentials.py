"""Object-storage credentials from a prefect-aws ``AwsCredentials`` block the job names
(``--aws-credentials NAME``, or the flow's ``aws_credentials`` option).

The block's document is read from the Prefect API with its secrets (prefect-aws need not be
installed where the job runs: the document is data) and turned into the standard variables that
object_store, under polars and obstore, reads; they are set in this process's environment before
the job touches a bucket. Only the block's name travels in a flow run's parameters: the keys never
reach Prefect's database, a log or an artifact. Serve and workers run each flow run in a process
of its own, so one job's credentials are not another's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from service import InputError

BLOCK_TYPE = "aws-credentials"

_KEYS = {
    "aws_access_key_id": "AWS_ACCESS_KEY_ID",
    "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "aws_session_token": "AWS_SESSION_TOKEN",
    "region_name": "AWS_REGION",
}


def aws_variables(name: str, data: Mapping[str, Any]) -> dict[str, str]:
    """The environment variables the block ``name`` (its document's ``data``) stands for;
    ``InputError`` for what object_store cannot take (a profile, a role to assume)."""
    for unsupported, what in (("profile_name", "a profile"), ("assume_role_arn", "a role to assume")):
        if data.get(unsupported):
            raise InputError(
                f"AwsCredentials block {name!r} names {what} ({unsupported}): Enrich reads keys, a "
                "region and an endpoint from it; put the keys in the block, or in the environment"
            )
    found = {variable: str(data[field]) for field, variable in _KEYS.items() if data.get(field)}
    endpoint = (data.get("aws_client_parameters") or {}).get("endpoint_url")
    if endpoint:
        found["AWS_ENDPOINT_URL"] = str(endpoint)
        if str(endpoint).startswith("http://"):  # object_store refuses plain HTTP unless told
            found["AWS_ALLOW_HTTP"] = "true"
    return found


def read_aws_credentials(name: str) -> dict[str, str]:
    """The variables of the ``AwsCredentials`` block ``name``; ``InputError`` naming the block when
    it is missing or cannot be read."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound, PrefectException

    try:
        with get_client(sync_client=True) as client:
            document = client.read_block_document_by_name(name, BLOCK_TYPE, include_secrets=True)
    except ObjectNotFound:
        raise InputError(f"no prefect-aws AwsCredentials block named {name!r}") from None
    except (PrefectException, OSError) as exc:
        raise InputError(f"cannot read AwsCredentials block {name!r}: {type(exc).__name__}") from None
    return aws_variables(name, document.data)


def use_aws_credentials(name: str | None) -> None:
    """Set the block ``name``'s variables in this process's environment (None: leave it as is)."""
    if name:
        os.environ.update(read_aws_credentials(name))
