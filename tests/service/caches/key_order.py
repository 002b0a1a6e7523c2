"""Pages a store writes for keys in random order, as a user's table has them, and for the same
keys in order (``service.caches.sqlite_rows``)."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path


def pages_in_any_order_and_in_order(
    pages_written: Callable[[list[str], Path], int], folder: Path
) -> tuple[int, int]:
    """``pages_written(keys, folder)`` for 20,000 keys in random order, then for them sorted."""
    rng = random.Random(7)
    in_any_order = [f"{rng.getrandbits(64):016x}" for _ in range(20_000)]
    counts = []
    for name, keys in (("any", in_any_order), ("ordered", sorted(in_any_order))):
        (folder / name).mkdir()
        counts.append(pages_written(keys, folder / name))
    return counts[0], counts[1]
