"""What this process's Prefect workers still hold, sent while its server still answers.

Prefect sends logs and events from background workers and drains them at exit: by then a local
server may have stopped ("Error logging to API", retried), and a command that has said its last
line gets a warning printed after it ("EventsWorker - Still processing items"). Draining first
keeps both the server's record and the terminal's last line whole.
"""

from __future__ import annotations

from prefect.events.worker import EventsWorker
from prefect.logging.handlers import APILogWorker


def deliver_pending_logs_and_events(timeout_s: float = 5.0) -> None:
    """Send the logs and events this process's workers hold, waiting at most ``timeout_s`` each."""
    APILogWorker.drain_all(timeout=timeout_s, at_exit=False)
    EventsWorker.drain_all(timeout=timeout_s, at_exit=False)
