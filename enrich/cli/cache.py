"""Where the response cache lives (``--cache-dir``, ``$ENRICH_CACHE_DIR``, ``~/.cache/enrich``),
and ``enrich cache stats|clear``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from enrich.cache_location import cache_location_of
from service import CACHE_FILE, is_redis_url, open_store


def add_cache_dir_option(parser: argparse.ArgumentParser) -> None:
    """``--cache-dir``: a folder, or a Redis URL."""
    parser.add_argument(
        "--cache-dir",
        help="where the response cache lives: a folder, or redis://HOST:PORT/DB to share it between "
        "machines (default: $ENRICH_CACHE_DIR, else ~/.cache/enrich)",
    )


def cache_location(args: argparse.Namespace) -> Path | str:
    """The cache's folder, or the ``redis://`` URL of a shared one."""
    return cache_location_of(args.cache_dir or None, os.environ)


CACHE_PASSWORD_VARIABLE = "ENRICH_CACHE_PASSWORD"


def without_recorded_password(location: str) -> str:
    """``location`` with a Redis URL's password replaced by ``${ENRICH_CACHE_PASSWORD}``, which is
    set in this process's environment: what a flow records as its parameters (in Prefect's
    database) then holds no password, and the flow resolves it where it runs."""
    split = urlsplit(location)
    if not is_redis_url(location) or not split.password or "${" in split.password:
        return location
    os.environ[CACHE_PASSWORD_VARIABLE] = unquote(split.password)
    userinfo = f"{split.username or ''}:${{{CACHE_PASSWORD_VARIABLE}}}"
    host = split.netloc.rsplit("@", 1)[1]
    return urlunsplit(split._replace(netloc=f"{userinfo}@{host}"))


def recorded_cache_dir(args: argparse.Namespace) -> str | None:
    """The response cache of a job run as a flow, as the flow records it (a folder made absolute,
    a Redis password replaced by ``${ENRICH_CACHE_PASSWORD}``); None for --no-cache."""
    if args.no_cache:
        return None
    location = cache_location(args)
    if isinstance(location, Path):
        return str(location.resolve())
    return without_recorded_password(location)


def cache_command(args: argparse.Namespace) -> int:
    """``enrich cache stats|clear [--expired]``."""
    location = cache_location(args)
    if isinstance(location, Path) and not (location / CACHE_FILE).exists():
        print(f"no cache at {location / CACHE_FILE}")
        return 0
    cache = open_store(location, "", ttl_s=0, negative_ttl_s=0)
    try:
        if args.action == "clear":
            removed = cache.clear(expired_only=args.expired)
            print(f"removed {removed:,} entries from {cache.where}")
        else:
            stats = cache.statistics()
            print(
                f"{stats.path}: {stats.entries:,} entries ({stats.answers:,} answers, "
                f"{stats.negative:,} cached client errors, {stats.expired:,} expired) "
                f"for {stats.namespaces:,} API specs, {stats.size_bytes / 1e6:.1f} MB"
            )
    finally:
        cache.close()
    return 0
