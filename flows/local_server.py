"""The local Prefect server ``enrich serve`` starts (and the tests share): started on loopback,
waited for, watched, stopped."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from flows.environment import prefect_environment

LOCAL_PREFECT_PORT = 4200  # where enrich serve starts its local Prefect server, and submit looks


class LocalServerError(RuntimeError):
    """The local Prefect server ``serve`` depends on did not start, or stopped while serving."""


def start_local_server(
    port: int,
    timeout_s: float = 120.0,
    home: Path | None = None,
    database_url: str | None = None,
    log: Path | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``prefect server start`` on 127.0.0.1:``port``; return it and its API URL once healthy.

    ``home`` is its PREFECT_HOME (where its SQLite database lives); default: the current one.
    ``database_url`` (``postgresql+asyncpg://...``) puts its database elsewhere; ``log`` keeps what
    it prints (by default, nothing does). Whatever interrupts the wait (a signal's exception
    included) stops the server on the way out.
    """
    url = f"http://127.0.0.1:{port}/api"
    # The UI asks the API at PREFECT_UI_API_URL, by default on port 4200 whatever --port says:
    # on another port it showed "Can't connect to Server API", or another server's runs.
    settings = {"PREFECT_UI_API_URL": url}
    if database_url is not None:
        settings["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = database_url
    if home is not None:
        settings["PREFECT_HOME"] = str(home)
    with open(log if log is not None else os.devnull, "ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=prefect_environment(os.environ, **settings),
        )
    try:
        _wait_until_healthy(process, url, port, give_up=time.monotonic() + timeout_s)
    except BaseException:
        stop_local_server(process)
        raise
    return process, url


def _wait_until_healthy(process: subprocess.Popen[bytes], url: str, port: int, give_up: float) -> None:
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            raise LocalServerError(
                f"the local Prefect server did not start on 127.0.0.1:{port} (exit {process.returncode}; "
                "is the port taken? --api-port chooses another)"
            )
        if time.monotonic() > give_up:
            raise LocalServerError(f"the local Prefect server did not answer on 127.0.0.1:{port} in time")
        time.sleep(0.25)


def stop_local_server(server: subprocess.Popen[bytes]) -> None:
    """Stop a server ``start_local_server`` started, and wait for it."""
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=30)


def when_exited(
    loop: asyncio.AbstractEventLoop, process: subprocess.Popen[bytes], then: Callable[[int], None]
) -> Callable[[], None]:
    """Call ``then(exit status)`` on ``loop`` once ``process`` exits; returns what stops watching.

    A pidfd is readable once its process exits: no polling, no thread (Linux 5.3+).
    """
    descriptor = os.pidfd_open(process.pid)
    watching = [True]

    def exited() -> None:
        stop_watching()
        then(process.wait())

    def stop_watching() -> None:
        if watching:
            watching.clear()
            loop.remove_reader(descriptor)
            os.close(descriptor)

    loop.add_reader(descriptor, exited)
    return stop_watching
