"""The runnable examples under examples/ run, and say what they did."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_python_api_example_runs() -> None:
    """examples/from_python.py enriches against the mock API, then reuses its cache and a session."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "from_python.py")],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "4 rows, 3 distinct keys, 3 requests" in done.stdout
    assert "again: 4 rows, 3 ok, from the cache" in done.stdout
    assert "session: 100 rows, 75 requests for 75 distinct keys" in done.stdout
    assert done.stderr == ""
