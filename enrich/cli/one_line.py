"""The one line every failure a user can cause comes to: ``enrich: error: ...`` on stderr (the
standard library only: ``enrich.cli.main`` says it before the engine is loaded)."""

from __future__ import annotations

import sys


def error(message: str) -> None:
    """Print ``enrich: error: message`` on stderr."""
    print(f"enrich: error: {message}", file=sys.stderr)
