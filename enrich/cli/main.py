"""``enrich``'s entry point. It imports nothing beyond the standard library before ``main`` runs,
so that a Ctrl-C while Python loads the engine and its libraries (about a second) is one line too;
the command itself is ``enrich.cli.command``."""

from __future__ import annotations

import signal
from collections.abc import Sequence

from enrich.cli.one_line import error


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``enrich`` command; returns the exit status."""
    try:
        from enrich.cli.command import run_command

        return run_command(argv)
    except KeyboardInterrupt:  # Ctrl-C where no command took the signal over (a job's loop does)
        error("stopped by SIGINT")
        return 128 + signal.SIGINT
