"""``enrich serve``: a long-running process hosting the enrich-file and enrich-inbox deployments.

It starts a local Prefect server (SQLite under PREFECT_HOME) unless ``PREFECT_API_URL`` points at
one, then serves both deployments with the runner's health endpoint on. SIGTERM (or Ctrl-C) stops
the runner (Prefect cancels runs in flight; their checkpoints make a rerun resume) and the server.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx


def start_local_server(
    port: int, timeout_s: float = 120.0, home: Path | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``prefect server start`` on 127.0.0.1:``port``; return it and its API URL once healthy.

    ``home`` is its PREFECT_HOME (where its SQLite database lives); default: the current one.
    """
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}  # no telemetry off loopback
    if home is not None:
        env["PREFECT_HOME"] = str(home)
    process = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
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


def serve_deployments(inbox: Path, outbox: Path, spec: Path, interval_s: float, api_port: int) -> None:
    """Serve enrich-file (on demand) and enrich-inbox (every ``interval_s``) until stopped."""
    server = None
    if not os.environ.get("PREFECT_API_URL"):
        server, url = start_local_server(api_port)
        os.environ["PREFECT_API_URL"] = url  # before Prefect reads its settings below
        print(f"local Prefect server at {url} (UI at {url.removesuffix('/api')})", flush=True)
    os.environ.setdefault("PREFECT_RUNNER_SERVER_ENABLE", "true")
    try:
        from prefect import serve
        from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

        from flows.enrich_file import enrich_file
        from flows.inbox import enrich_inbox

        # Called from sync code, to_deployment returns the deployment (its stubs say "or a coroutine").
        on_demand: Any = enrich_file.to_deployment(name="enrich-file")
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
            },
        )
        serve(on_demand, sweep)
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
