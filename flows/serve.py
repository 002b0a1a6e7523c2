"""``enrich serve``: a long-running process hosting the enrich-file and enrich-inbox deployments.

It starts a local Prefect server (SQLite under PREFECT_HOME) unless ``PREFECT_API_URL`` points at
one, then serves both deployments with the runner's health endpoint on. SIGTERM (or Ctrl-C) stops
the runner (Prefect cancels runs in flight; their checkpoints make a rerun resume) and the server.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from flows.environment import prefect_environment

LOCAL_PREFECT_PORT = 4200  # where enrich serve starts its local Prefect server, and submit looks


def start_local_server(
    port: int, timeout_s: float = 120.0, home: Path | None = None, database_url: str | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``prefect server start`` on 127.0.0.1:``port``; return it and its API URL once healthy.

    ``home`` is its PREFECT_HOME (where its SQLite database lives); default: the current one.
    ``database_url`` (``postgresql+asyncpg://...``) puts its database elsewhere.
    """
    settings = {}
    if database_url is not None:
        settings["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = database_url
    if home is not None:
        settings["PREFECT_HOME"] = str(home)
    process = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=prefect_environment(os.environ, **settings),
    )
    url = f"http://127.0.0.1:{port}/api"
    give_up = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > give_up:
            process.kill()
            raise RuntimeError(f"the Prefect server did not start on port {port}")
        time.sleep(0.25)


def serve_deployments(
    inbox: Path, outbox: Path, spec: Path, interval_s: float, api_port: int, cache_dir: str | None
) -> None:
    """Serve enrich-file (on demand) and enrich-inbox (every ``interval_s``) until stopped; their
    jobs use the response cache at ``cache_dir`` unless a run's parameters say otherwise."""
    server = None
    if not os.environ.get("PREFECT_API_URL"):
        server, url = start_local_server(api_port)
        os.environ["PREFECT_API_URL"] = url  # before Prefect reads its settings below
        print(f"local Prefect server at {url} (UI at {url.removesuffix('/api')})", flush=True)
    try:
        serve_until_stopped(*_deployments(inbox, outbox, spec, interval_s, cache_dir))
        print(f"served enrich-file on demand and enrich-inbox every {interval_s:g} s", flush=True)
    finally:
        if server is not None:
            _deliver_pending_logs_and_events()
            _stop(server)


def _deployments(
    inbox: Path, outbox: Path, spec: Path, interval_s: float, cache_dir: str | None
) -> tuple[Any, Any]:
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

    from flows.enrich_file import enrich_file
    from flows.inbox import enrich_inbox

    # Called from sync code, to_deployment returns the deployment (its stubs say "or a coroutine").
    on_demand: Any = enrich_file.to_deployment(
        name="enrich-file", parameters={"options": {"cache_dir": cache_dir}}
    )
    sweep: Any = enrich_inbox.to_deployment(
        name="enrich-inbox",
        interval=interval_s,
        # A sweep still running when the next is due: skip the new one (a file is swept once).
        concurrency_limit=ConcurrencyLimitConfig(
            limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
        ),
        parameters={
            "inbox": str(inbox.resolve()),
            "outbox": str(outbox.resolve()),
            "spec": str(spec.resolve()),
            "cache_dir": cache_dir,
        },
    )
    return on_demand, sweep


def _deliver_pending_logs_and_events() -> None:
    """Send what this process's Prefect log and event workers still hold while the local server
    runs: at exit they would send it to a stopped server ("Error logging to API"), retrying."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=5, at_exit=False)
    EventsWorker.drain_all(timeout=5, at_exit=False)


def _stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=30)


def serve_until_stopped(*deployments: Any) -> None:
    """``prefect.serve(*deployments)`` with the runner's health endpoint, until SIGTERM or SIGINT.

    Either signal stops the runner through ``Runner.astop``: runs in flight are cancelled (their
    checkpoints let a rerun resume) and polling stops. Prefect 3.8.8's own SIGTERM handler calls
    the async ``stop`` from sync code, so the coroutine is never awaited and the process leaves
    from inside the event loop; we replace that handler.
    """
    from prefect.runner import Runner

    class StoppableRunner(Runner):
        request_stop: Any = None

        def handle_sigterm(self, *args: Any, **kwargs: Any) -> None:  # Runner.start installs it
            if self.request_stop is not None:
                self.request_stop()

    runner = StoppableRunner(webserver=True)
    for deployment in deployments:
        runner.add_deployment(deployment)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        stopping: list[asyncio.Task[None]] = []

        def stop() -> None:
            if not stopping and runner.started:
                stopping.append(loop.create_task(runner.astop()))

        # The SIGTERM handler runs in the main thread, maybe while the loop waits in select:
        # call_soon_threadsafe wakes it.
        runner.request_stop = lambda: loop.call_soon_threadsafe(stop)
        loop.add_signal_handler(signal.SIGINT, stop)
        await runner.start()
        for task in stopping:
            await task

    asyncio.run(run())
