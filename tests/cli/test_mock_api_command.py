"""``enrich mock-api`` as a long-running process: it stops cleanly when asked."""

from __future__ import annotations

import signal
import subprocess

import httpx
import pytest

from service.testing.mock_process import READY
from tests.helpers import enrich_command


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT])
def test_the_mock_api_stops_cleanly_on_a_signal(number: signal.Signals) -> None:
    """Exit 0 on SIGTERM as on Ctrl-C: as a container's PID 1 a signal without a handler is
    ignored, and elsewhere the default action ends it with 143."""
    command = enrich_command("mock-api", "--host", "127.0.0.1", "--port", "0")
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            url = process.stdout.readline().removeprefix(READY).strip()
            assert httpx.get(f"{url}/v1/lookup/a", timeout=10).status_code == 200
            process.send_signal(number)
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()
