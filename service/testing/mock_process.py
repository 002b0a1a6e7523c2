"""The mock API in a process of its own: its options, running it, starting and stopping it.

    python -m service.testing [--port 0] [--latency-ms 2] [--rate-503 0.1] ...

``enrich mock-api`` takes the same options (``add_mock_api_arguments``); the demo, the tests and
the benchmarks start it with ``start_mock_api`` and read the URL it prints once it listens.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
from collections.abc import Sequence

from service.testing.hostile import HostileSizes
from service.testing.mock_answers import FaultRates
from service.testing.mock_api import MockConfig, serve_forever

READY = "mock API listening on "
_FAULTS = ("500", "503", "429", "reset", "hang", "malformed", "bulk-missing")


def _share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def add_mock_api_arguments(parser: argparse.ArgumentParser) -> None:
    """The mock API's options: where it listens, its latency, the faults it injects."""
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="0: a free port (printed when ready)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="each answer's delay (0)")
    parser.add_argument(
        "--latency-jitter-ms",
        type=float,
        default=0.0,
        help="up to this much more, drawn per answer (0)",
    )
    for name in _FAULTS:
        parser.add_argument(
            f"--rate-{name}", type=_share, default=0.0, help=f"share of requests answered with {name}"
        )
    parser.add_argument("--retry-after", type=int, default=1, help="Retry-After seconds sent with 429")
    parser.add_argument("--retry-after-date", action="store_true", help="send Retry-After as an HTTP-date")
    parser.add_argument("--bomb-mib", type=int, default=1024, help="what the bomb- keys' gzip inflates to")
    parser.add_argument("--stream-mib", type=int, default=2048, help="how much huge- and sized- keys send")
    parser.add_argument("--drip-s", type=float, default=5.0, help="how long drip- keys take to answer")
    parser.add_argument("--redirect-to", metavar="URL", help="the other origin redirect- keys point to")
    parser.add_argument(
        "--seed", type=int, default=0, help="seeds the fault draws: the same seed, the same faults (0)"
    )
    _add_api_behaviours(parser)


def _add_api_behaviours(parser: argparse.ArgumentParser) -> None:
    """What real APIs do that tests need: pending answers, a quota, OAuth2, a capacity."""
    parser.add_argument(
        "--pending-attempts",
        type=int,
        default=2,
        help='how many requests pending- keys answer 200 {"status": "pending"} before their document',
    )
    parser.add_argument(
        "--quota", type=int, default=0, help="quota mode: requests per window, told in headers, 429 past it"
    )
    parser.add_argument("--quota-window-s", type=float, default=1.0, help="the quota's window (1)")
    parser.add_argument(
        "--quota-headers", choices=("ietf", "x"), default="ietf", help="RateLimit or X-RateLimit-*"
    )
    parser.add_argument(
        "--oauth-client", metavar="ID:SECRET", help="OAuth2 mode: POST /oauth/token, lookups need its token"
    )
    parser.add_argument("--token-ttl-s", type=float, default=3600.0, help="how long a token lives (3600)")
    parser.add_argument(
        "--capacity",
        type=int,
        default=0,
        help="capacity mode: past this many requests in flight the latency grows with them, past twice"
        " as many it answers 503",
    )


def mock_config(args: argparse.Namespace) -> MockConfig:
    """The mock API's configuration from options parsed by ``add_mock_api_arguments``."""
    return MockConfig(
        latency_ms=args.latency_ms,
        latency_jitter_ms=args.latency_jitter_ms,
        faults=FaultRates(
            http_500=args.rate_500,
            http_503=args.rate_503,
            rate_limited=args.rate_429,
            reset=args.rate_reset,
            hang=args.rate_hang,
            malformed=args.rate_malformed,
            bulk_missing=args.rate_bulk_missing,
        ),
        retry_after_s=args.retry_after,
        retry_after_as_date=args.retry_after_date,
        hostile=HostileSizes(
            bomb_bytes=args.bomb_mib * 1024**2, stream_bytes=args.stream_mib * 1024**2, drip_s=args.drip_s
        ),
        redirect_to=args.redirect_to,
        pending_attempts=args.pending_attempts,
        quota=args.quota,
        quota_window_s=args.quota_window_s,
        quota_headers=args.quota_headers,
        oauth_client=args.oauth_client,
        token_ttl_s=args.token_ttl_s,
        capacity=args.capacity,
        seed=args.seed,
    )


def run_mock_api(args: argparse.Namespace) -> None:
    """Run the mock API in this process until interrupted, on uvloop (about 1.5x the requests/s)."""
    import uvloop

    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(serve_forever(mock_config(args), args.host, args.port, ready=READY))


def start_mock_api(*options: str) -> tuple[subprocess.Popen[str], str]:
    """Start the mock API on a free loopback port in a child process; return it and its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "service.testing", "--host", "127.0.0.1", "--port", "0", *options],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith(READY):
        process.kill()
        process.wait(timeout=10)
        process.stdout.close()
        raise RuntimeError(f"the mock API did not start: {line!r}")
    return process, line.removeprefix(READY).strip()


def stop_mock_api(process: subprocess.Popen[str]) -> None:
    """Stop a mock API started by ``start_mock_api`` and release its pipe."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
    if process.stdout is not None:
        process.stdout.close()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m service.testing``: run the mock API until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m service.testing", description="The mock API.")
    add_mock_api_arguments(parser)
    run_mock_api(parser.parse_args(argv))
    return 0
