"""Prefect's runner as ``enrich serve`` runs it: stopped cleanly by SIGTERM or SIGINT whenever they
come, healthy before its first poll, and stopped when the local server it talks to dies.

Imported only by ``serve`` (it imports Prefect).
"""

from __future__ import annotations

import asyncio
import datetime
import signal
import subprocess
from typing import Any

from prefect.runner import Runner
from prefect.utilities.annotations import NotSet

from flows.local_server import LocalServerError, when_exited


class StoppableRunner(Runner):
    """A runner that serves until asked to stop (a signal, or its server's exit).

    Prefect 3.8.8's own SIGTERM handler calls the async ``stop`` from sync code, so the coroutine
    is never awaited and the process leaves from inside the event loop; this one only asks, and
    ``run_until_stopped`` stops the runner through ``astop`` (runs in flight are cancelled: their
    checkpoints let a rerun resume), once it has started if the signal came earlier.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.created_at = datetime.datetime.now(datetime.UTC)
        self.stop_requested = asyncio.Event()
        self.entered = asyncio.Event()
        self.server_exit: int | None = None
        self._ask_to_stop: Any = None

    # Prefect 3.8.8's /health subtracts last_polled, None until the first poll: a probe in the
    # first seconds got a 500 and a traceback in the log. Counted from the runner's creation
    # instead, a runner that never polls still turns unhealthy after the tolerance.
    @property
    def last_polled(self) -> Any:
        polled = Runner.last_polled.fget(self)  # type: ignore[attr-defined]
        return self.created_at if polled is None else polled

    @last_polled.setter
    def last_polled(self, value: Any) -> None:
        Runner.last_polled.fset(self, value)  # type: ignore[attr-defined]

    def handle_sigterm(self, *args: Any, **kwargs: Any) -> None:  # Runner.start installs it
        if self._ask_to_stop is not None:
            self._ask_to_stop()

    async def __aenter__(self) -> StoppableRunner:
        await super().__aenter__()
        self.entered.set()
        return self

    async def run_until_stopped(self, server: subprocess.Popen[bytes] | None) -> None:
        """Start, and serve until a signal or ``server``'s exit (kept in ``server_exit``)."""
        loop = asyncio.get_running_loop()
        # The SIGTERM handler runs in the main thread, maybe while the loop waits in select:
        # call_soon_threadsafe wakes it.
        self._ask_to_stop = lambda: loop.call_soon_threadsafe(self.stop_requested.set)
        for number in (signal.SIGTERM, signal.SIGINT):  # until Runner.start takes SIGTERM over
            loop.add_signal_handler(number, self.stop_requested.set)
        stopper = loop.create_task(self._stop_when_asked())
        stop_watching = None if server is None else when_exited(loop, server, self._server_exited)
        try:
            await self.start()
            if self.stop_requested.is_set():
                await stopper  # astop's last steps, after it cancelled the runner's loops
        finally:
            stopper.cancel()
            if stop_watching is not None:
                stop_watching()

    async def _stop_when_asked(self) -> None:
        await self.stop_requested.wait()
        await self.entered.wait()  # astop before the runner is up raises, and stops nothing
        await self.astop()

    def _server_exited(self, exit_status: int) -> None:
        self.server_exit = exit_status
        self.pause_on_shutdown = False  # it would ask the dead server, retrying for a minute
        self.stop_requested.set()


def serve_until_stopped(
    *deployments: Any, server: subprocess.Popen[bytes] | None = None, limit: int | None = None
) -> None:
    """Serve ``deployments`` with the runner's health endpoint until SIGTERM or SIGINT, at most
    ``limit`` runs at once (None: Prefect's setting); raises ``LocalServerError`` when ``server``
    (the local Prefect server the runner talks to) exits."""
    runner = StoppableRunner(webserver=True, limit=limit if limit is not None else NotSet)
    for deployment in deployments:
        runner.add_deployment(deployment)
    try:
        asyncio.run(runner.run_until_stopped(server))
    except Exception as exc:
        if runner.server_exit is None:
            raise
        raise _server_stopped(runner.server_exit) from exc  # what failed failed for want of it
    if runner.server_exit is not None:
        raise _server_stopped(runner.server_exit)


def _server_stopped(exit_status: int) -> LocalServerError:
    return LocalServerError(
        f"the local Prefect server stopped (exit {exit_status}) while serving; serve stopped too, "
        "so that a supervisor can restart both"
    )
