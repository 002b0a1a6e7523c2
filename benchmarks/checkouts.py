"""Measuring another checkout of Enrich beside this one (``git worktree add /tmp/before COMMIT``):
its code, run as program text in a process of its own, so that a change's before and after are
measured alike."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

THIS_CHECKOUT = Path(__file__).resolve().parents[1]


class CheckoutError(RuntimeError):
    """A checkout's program ended without its figure (the checkout broken, or too old to run it)."""


def add_checkout_option(parser: argparse.ArgumentParser, what: str) -> None:
    """``--checkout PATH``, repeatable: also ``what`` (e.g. "the engine") of that checkout."""
    parser.add_argument(
        "--checkout", type=Path, action="append", default=[],
        help=f"also {what} of this checkout (e.g. a git worktree of an earlier commit)",
    )  # fmt: skip


def checked(parser: argparse.ArgumentParser, checkouts: list[Path], needs: str) -> list[Path]:
    """``checkouts``, resolved; one that lacks ``needs`` (a file every checkout has) is a usage error."""
    for path in checkouts:
        if not (path / needs).is_file():
            parser.error(f"--checkout {path}: not a checkout of Enrich (no {needs})")
    return [path.resolve() for path in checkouts]


def run_in(checkout: Path, what: str, program: str, *args: str, stdin: str | None = None) -> str:
    """The standard output of ``program`` run with ``checkout``'s code; ``CheckoutError`` with its
    last word when it fails."""
    done = subprocess.run(
        [sys.executable, "-c", program, *args], input=stdin,
        cwd=checkout, env={**os.environ, "PYTHONPATH": str(checkout)},
        capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
        raise CheckoutError(f"{what} of {checkout} failed: {last}")
    return done.stdout
