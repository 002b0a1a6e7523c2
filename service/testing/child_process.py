"""A server in a child process for tests and benchmarks: started, waited for until it answers,
stopped at the end."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any


@contextlib.contextmanager
def running_until_stopped(
    command: list[str], ready: Callable[[], bool], what: str, *, start_timeout_s: float = 60.0, **popen: Any
) -> Iterator[subprocess.Popen[bytes]]:
    """``command`` running (``popen``: Popen's options), once ``ready()`` holds; ``RuntimeError``
    naming ``what`` when it exits or is not ready within ``start_timeout_s``. Terminated on exit."""
    process = subprocess.Popen(command, **popen)
    try:
        give_up = time.monotonic() + start_timeout_s
        while not ready():
            if process.poll() is not None or time.monotonic() > give_up:
                raise RuntimeError(f"{what} did not start (exit {process.poll()})")
            time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=60)
