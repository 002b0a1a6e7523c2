"""``enrich api``: the online endpoint, one or more specs by name, until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

import anyio

from enrich.api import CacheChoice, Session
from enrich.cli.cache import cache_location
from enrich.cli.exits import EXIT_ENVIRONMENT, UsageError
from enrich.cli.one_line import error
from enrich.cli.process import StoppedBySignalError, stopped_by_signals_while_starting
from service import Spec, load_spec

if TYPE_CHECKING:
    from enrich.online.app import OnlineService


def named_spec(text: str) -> tuple[str, str]:
    """``NAME=SPEC`` (argparse type): a URL-safe name and a spec file's path."""
    name, equals, path = text.partition("=")
    if not equals or not path:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=SPEC, e.g. ip=spec.toml")
    if not name or not all(c.isalnum() or c in "-_." for c in name):
        raise argparse.ArgumentTypeError(f"{name!r}: a name is letters, digits, '-', '_' and '.'")
    return name, path


def api_command(args: argparse.Namespace) -> int:
    """Serve POST /v1/enrich/NAME for every --spec, with /metrics, /healthz and /readyz."""
    # Not around serve_online: uvicorn takes the signals over, and raises a second one again
    # once stopped, which must end the process as the signal's own, not as a start-up's.
    with stopped_by_signals_while_starting():
        try:
            from enrich.online.server import listening_socket, serve_online  # uvicorn: only here

            specs, service = _online_service(args)
        except StoppedBySignalError as exc:
            error(f"stopped by {exc} while starting; nothing was served")
            return 128 + exc.signal_number
    try:
        sock = listening_socket(args.host, args.port)
    except OSError as exc:
        error(exc.strerror or str(exc))
        return EXIT_ENVIRONMENT
    with sock:
        print(_headline(specs, f"http://{args.host}:{args.port}", args.drain), flush=True)
        serve_online(service, sock, drain_s=args.drain, access_log=args.access_log)
    return 0


def _online_service(args: argparse.Namespace) -> tuple[dict[str, Spec], OnlineService]:
    """The specs loaded and their caches opened (an unreachable one fails here, in one line)."""
    from enrich.online.app import OnlineOptions, OnlineService
    from enrich.online.endpoint import EndpointLimits

    specs = _specs(args.spec)
    cache: CacheChoice = False if args.no_cache else str(cache_location(args))
    anyio.run(_open_each, specs, cache)
    limits = EndpointLimits(
        default_timeout_s=args.timeout,
        max_pending_rows=args.max_pending_rows,
        circuit_cooldown_s=args.circuit_cooldown,
    )
    return specs, OnlineService(specs, OnlineOptions(cache, limits, args.max_body_bytes))


def _specs(named: list[tuple[str, str]]) -> dict[str, Spec]:
    specs: dict[str, Spec] = {}
    for name, path in named:
        if name in specs:
            raise UsageError(f"--spec {name}=...: the name {name!r} is given twice")
        specs[name] = load_spec(path, environ=os.environ)
    return specs


def _headline(specs: dict[str, Spec], base: str, drain_s: float) -> str:
    served = "\n".join(f"  {name:<12} POST {base}/v1/enrich/{name}" for name in specs)
    return (
        f"enrich api serving:\n{served}\n  metrics      GET  {base}/metrics  (and /healthz, /readyz)\n"
        f"stop with Ctrl-C or SIGTERM (requests in flight finish, at most {drain_s:g} s)"
    )


async def _open_each(specs: dict[str, Spec], cache: CacheChoice) -> None:
    for spec in specs.values():
        async with Session(spec, cache=cache):
            pass
