"""What the SQLite stores cost a row when keys come in random order (a user's table's order), at
the sizes a user's job reaches: the job's answer log (its adds, and its commits of 1,000 as a fast
job makes them) and the response cache (each 10,000-key frame's lookup, then its store), in CPU
time of the thread that runs them.

    .venv/bin/python -m benchmarks.store_costs [--keys 1000000] [--checkout PATH ...]

Each checkout (this one, and each ``--checkout``: ``git worktree add /tmp/before COMMIT``) runs in
a process of its own, on the same keys, one after the other: a change's before and after.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks.checkouts import THIS_CHECKOUT, CheckoutError, add_checkout_option, checked, run_in

# One checkout's measurement, as program text run in that checkout: only what every checkout has.
_PROGRAM = r"""
import json, random, shutil, sys, tempfile, time
from pathlib import Path
from service import Outcome
from service.caches.answer_log import AnswerLog
from service.caches.entries import EntryKind, key_text
from service.caches.sqlite_store import ResponseCache

count = int(sys.argv[1])
rng = random.Random(11)
keys = [(f"{rng.getrandbits(64):016x}",) for _ in range(count)]
body = b'{"country": "DE", "asn": 12345, "org": "Example Org", "score": 0.5}'
folder = Path(tempfile.mkdtemp())
try:
    log = AnswerLog(folder / "answers.sqlite")
    started = time.thread_time()
    for start in range(0, count, 1000):
        for key in keys[start : start + 1000]:
            log.add(key, Outcome({"country": "DE"}, 1, status=200, raw=body))
        log.flush()
    log.close()
    log_cpu = time.thread_time() - started
    cache = ResponseCache(folder / "responses.sqlite", "ns", ttl_s=1e6, negative_ttl_s=10)
    looked = stored = 0.0
    for start in range(0, count, 10_000):
        frame = keys[start : start + 10_000]
        started = time.thread_time()
        cache.get_many(frame)
        looked += time.thread_time() - started
        entries = [(key_text(key), EntryKind.ANSWER, body) for key in frame]
        started = time.thread_time()
        cache.put_entries(entries)
        stored += time.thread_time() - started
    started = time.thread_time()
    cache.close()
    stored += time.thread_time() - started
finally:
    shutil.rmtree(folder)
per_key = 1e6 / count
print(json.dumps({"log": log_cpu * per_key, "lookup": looked * per_key, "store": stored * per_key}))
"""


def measure(checkout: Path, keys: int) -> dict[str, float]:
    """µs of thread CPU a key: the answer log's adds and commits, the cache's lookups and stores."""
    figures: dict[str, float] = json.loads(
        run_in(checkout, "the stores", _PROGRAM, str(keys)).splitlines()[-1]
    )
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.store_costs", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--keys", type=int, default=200_000, help="distinct keys, in random order")
    add_checkout_option(parser, "the stores")
    options = parser.parse_args(argv)
    checkouts = checked(parser, options.checkout, "service/caches/answer_log.py")
    print(f"µs of thread CPU a key, {options.keys:,} keys in random order", flush=True)
    print(f"{'checkout':<40} {'answer log':>11} {'cache lookup':>13} {'cache store':>12}", flush=True)
    for name, checkout in [
        ("this checkout", THIS_CHECKOUT),
        *((str(path), path) for path in checkouts),
    ]:
        try:
            figures = measure(checkout, options.keys)
        except CheckoutError as exc:
            print(f"{parser.prog}: error: {exc}", file=sys.stderr)
            return 1
        print(
            f"{name:<40} {figures['log']:>11.2f} {figures['lookup']:>13.2f} {figures['store']:>12.2f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
