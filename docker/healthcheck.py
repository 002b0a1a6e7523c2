#!/usr/bin/env python3
"""The image's healthcheck: while an ``enrich serve`` runs in the container (as its command or
under a shell), its runner must answer /health on loopback; while an ``enrich api`` runs, its
/healthz must answer on its port; any other command (a one-shot job, the mock API) has no health
endpoint and is healthy while it runs."""

import os
import sys
import urllib.request
from pathlib import Path


def main_command(argv: list[str]) -> tuple[str | None, list[str]]:
    """The enrich command of a process's ``argv`` (``python /opt/enrich/bin/enrich serve ...``)
    and the words after it."""
    for position, word in enumerate(argv):
        if Path(word).name == "enrich":
            after = argv[position + 1 :]
            rest = [w for w in after if not w.startswith("-")]
            return (rest[0] if rest else None), after
    return None, []


def option(words: list[str], name: str, default: str) -> str:
    """The value of ``--name VALUE`` or ``--name=VALUE`` among ``words``."""
    for position, word in enumerate(words):
        if word == name and position + 1 < len(words):
            return words[position + 1]
        if word.startswith(name + "="):
            return word.split("=", 1)[1]
    return default


def health_url() -> str | None:
    """What to probe for the serving command running in this container, if one is."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:  # it exited meanwhile
            continue
        command, words = main_command(argv)
        if command == "serve":
            return f"http://127.0.0.1:{os.environ.get('PREFECT_RUNNER_SERVER_PORT', '8080')}/health"
        if command == "api":
            host = option(words, "--host", "127.0.0.1")
            host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
            return f"http://{host}:{option(words, '--port', '8000')}/healthz"
    return None


def main() -> int:
    url = health_url()
    if url is None:
        return 0
    try:
        with urllib.request.urlopen(url, timeout=4) as answer:
            return 0 if answer.status == 200 else 1
    except OSError as exc:  # refused, timed out, an HTTP error status (URLError is an OSError)
        print(f"health endpoint {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
