"""``enrich demo``: the mock API on loopback, a generated input, one job on the engine, a summary;
and ``enrich mock-api``, the mock API on its own."""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

from enrich.cli.run import run_and_report
from service import JobOptions, load_spec
from service.testing import run_mock_api, start_mock_api, stop_mock_api, write_demo_files


def demo_command(args: argparse.Namespace) -> int:
    """Enrich a generated input against the mock API (2-5 ms answers, 2% 503), then stop it."""
    process, url = start_mock_api("--latency-ms", "2", "--latency-jitter-ms", "3", "--rate-503", "0.02")
    try:
        if not args.quiet:
            print(f"mock API on {url}; writing a {args.rows:,}-row input into {args.dir}/")
        spec_path, source, output = write_demo_files(Path(args.dir), url, args.rows)
        spec = load_spec(spec_path, environ=os.environ)
        cache_dir = Path(args.dir) / "cache"
        shutil.rmtree(cache_dir, ignore_errors=True)  # a fresh cache: the demo shows real calls
        options = JobOptions(restart=True, overwrite=True, cache_dir=str(cache_dir))
        return run_and_report(str(source), spec, str(output), options, max_error_ratio=1.0, quiet=args.quiet)
    finally:
        stop_mock_api(process)


def mock_api_command(args: argparse.Namespace) -> int:
    """Run the mock API in this process until interrupted."""
    run_mock_api(args)
    return 0
