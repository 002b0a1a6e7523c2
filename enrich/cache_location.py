"""Where the response cache lives when nobody says: ``$ENRICH_CACHE_DIR``, else the user's cache
folder (``$XDG_CACHE_HOME/enrich`` or ``~/.cache/enrich``). The command line and the Python API
read it here, so both share one cache by default."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from service import is_redis_url, user_cache_home


def cache_location_of(location: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> Path | str:
    """``location`` (a folder or a Redis URL) as the cache's place; the default when None."""
    if location is not None:
        text = os.fspath(location)
        return text if is_redis_url(text) else Path(text).expanduser()
    if environ.get("ENRICH_CACHE_DIR"):
        return cache_location_of(environ["ENRICH_CACHE_DIR"], environ)
    return user_cache_home(environ) / "enrich"
