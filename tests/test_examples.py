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


def test_the_readmes_spec_examples_are_valid_specs() -> None:
    """Every TOML block under README's "The spec" compiles (the bulk one completed with the first's
    other sections, the [auth] one added to that): a field renamed in the code cannot stay
    documented under its old name."""
    from service.spec import parse_spec

    section = (ROOT / "README.md").read_text().split("\n## The spec\n", 1)[1].split("\n## ", 1)[0]
    blocks = [part.split("```", 1)[0] for part in section.split("```toml\n")[1:]]
    assert len(blocks) == 3
    full = parse_spec(blocks[0], environ={"GEO_TOKEN": "t"})
    assert full.conditions is not None
    assert full.conditions.paths == {
        "error_when": "error",
        "error_message": "error.message",
        "retry_when": "status == 'pending'",
    }
    rest = blocks[0].split("\n[input]\n", 1)[1]
    bulk_text = blocks[1] + "[input]\n" + rest
    bulk = parse_spec(bulk_text, environ={"GEO_TOKEN": "t"})
    assert bulk.bulk is not None
    assert bulk.bulk.size == 100
    with_auth = parse_spec(bulk_text + blocks[2], environ={"API_TOKEN": "a"})
    assert ("Authorization", "Bearer a") in with_auth.request.headers
