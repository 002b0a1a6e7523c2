"""A real S3-compatible server on loopback for tests and benchmarks: moto's standalone server (a
dev dependency, ``moto[server]``) in a child process, and the environment that points a process
at it (the variables a user of any S3-compatible store sets)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator

import httpx

from service.testing.child_process import running_until_stopped


@contextlib.contextmanager
def running_s3_server(port: int, *, start_timeout_s: float = 60.0) -> Iterator[str]:
    """moto's S3 server on 127.0.0.1:``port``, stopped on exit; yields its endpoint URL."""
    code = f"from moto.server import main; main(['-H', '127.0.0.1', '-p', '{port}'])"
    endpoint = f"http://127.0.0.1:{port}"
    with running_until_stopped(
        [sys.executable, "-c", code],
        lambda: _answers(endpoint),
        f"moto's S3 server on {endpoint} (is moto[server] installed?)",
        start_timeout_s=start_timeout_s,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ):
        yield endpoint


def _answers(endpoint: str) -> bool:
    try:
        httpx.get(endpoint, timeout=2)
    except httpx.TransportError:
        return False
    return True


def s3_environment(endpoint: str) -> dict[str, str]:
    """What a process needs to reach the server at ``endpoint`` (moto takes any key)."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "enrich-test-key",
        "AWS_SECRET_ACCESS_KEY": "enrich-test-secret",
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
    }


def create_bucket(endpoint: str, name: str) -> None:
    """Create the bucket ``name`` (moto does not check the request's signature)."""
    httpx.put(f"{endpoint}/{name}", timeout=10).raise_for_status()
