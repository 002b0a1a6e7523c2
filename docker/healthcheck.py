#!/usr/bin/env python3
"""The image's healthcheck: while an ``enrich serve`` runs in the container (as its command or
under a shell), its runner must answer /health on loopback; any other command (a one-shot job, the
mock API) has no health endpoint and is healthy while it runs."""

import os
import sys
import urllib.request
from pathlib import Path

SERVING_COMMANDS = {"serve"}


def main_command(argv: list[str]) -> str | None:
    """The enrich command of a process's ``argv`` (``python /opt/enrich/bin/enrich serve ...``)."""
    for position, word in enumerate(argv):
        if Path(word).name == "enrich":
            rest = [w for w in argv[position + 1 :] if not w.startswith("-")]
            return rest[0] if rest else None
    return None


def serving() -> bool:
    """Whether a process in this container runs a serving command."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:  # it exited meanwhile
            continue
        if main_command(argv) in SERVING_COMMANDS:
            return True
    return False


def main() -> int:
    if not serving():
        return 0
    port = os.environ.get("PREFECT_RUNNER_SERVER_PORT", "8080")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=4) as answer:
            return 0 if answer.status == 200 else 1
    except OSError as exc:  # refused, timed out, an HTTP error status (URLError is an OSError)
        print(f"runner health endpoint on port {port}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
