"""A minimal JSON server for transport measurements, run in its own process (one core).

Issue 6 replaces it with the mock API; until then it answers GET /v1/lookup/{key} with a small
JSON document after an optional fixed delay.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from aiohttp import web


def main() -> None:
    """Serve until killed; print the port when ready."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args()
    delay = args.latency_ms / 1000

    async def lookup(request: web.Request) -> web.Response:
        if delay:
            await asyncio.sleep(delay)
        key = request.match_info["key"]
        return web.json_response({"name": key, "n": len(key), "geo": {"lat": 1.5, "lon": -2.25}})

    async def serve() -> None:
        app = web.Application()
        app.router.add_get("/v1/lookup/{key}", lookup)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
        await site.start()
        print(runner.addresses[0][1], flush=True)
        await asyncio.Event().wait()

    try:
        import uvloop

        uvloop.run(serve())
    except ImportError:
        asyncio.run(serve())
    sys.exit(0)


if __name__ == "__main__":
    main()
