"""Which ASGI server ``enrich api`` runs on, measured: the same app on uvicorn (h11, httptools)
and granian, against the mock API at 20 ms, 64 callers, three interleaved repeats.

    .venv/bin/python -m benchmarks.online_servers      (granian: pip install granian, else skipped)

Prints, per server, GET /healthz per second (the server alone), one-row enrich requests per second
with their p50, and rows/s with 100-row requests (medians).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import statistics
import sys
import tempfile
from pathlib import Path

from benchmarks import online
from benchmarks.run import free_port, mock_api
from service.testing.child_process import running_until_stopped

APP = """
import os
from enrich.online.app import OnlineOptions, OnlineService, online_app
from service import load_spec
service = OnlineService({"ip": load_spec(os.environ["SPEC"], environ=os.environ)}, OnlineOptions(cache=False))
app = online_app(service)
"""


def commands(port: int) -> dict[str, list[str]]:
    uvicorn = [sys.executable, "-m", "uvicorn", "bench_app:app", "--loop", "uvloop", "--port", str(port)]
    quiet = ["--no-access-log", "--log-level", "warning"]
    found = {
        "uvicorn, h11": [*uvicorn, "--http", "h11", *quiet],
        "uvicorn, httptools": [*uvicorn, "--http", "httptools", *quiet],
    }
    if importlib.util.find_spec("granian") is not None:
        found["granian"] = [
            sys.executable, "-m", "granian", "--interface", "asgi", "--loop", "uvloop", "--port", str(port),
            "--workers", "1", "--log-level", "warning", "bench_app:app",
        ]  # fmt: skip
    return found


def measure(
    command: list[str], env: dict[str, str], folder: Path, tag: str
) -> tuple[float, float, float, float]:
    base = f"http://127.0.0.1:{command[command.index('--port') + 1]}"
    with running_until_stopped(command, lambda: online._ready(base), str(command), env=env, cwd=folder):
        _, seconds = asyncio.run(online._callers(64, 100, online._healthz(base)))
        health = 6400 / seconds
        latencies, seconds = asyncio.run(online._callers(64, 20, online._through(base, f"one{tag}")))
        one_row = 1280 / seconds
        _, seconds = asyncio.run(online._callers(64, 4, online._through(base, f"hundred{tag}", 100)))
        return health, one_row, 1000 * statistics.median(latencies), 25_600 / seconds


def main() -> int:
    found: dict[str, list[tuple[float, float, float, float]]] = {}
    with mock_api("--latency-ms", "20") as api, tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        (folder / "bench_app.py").write_text(APP)
        spec = online.write_lookup_spec(api, folder / "spec.toml")
        path = os.pathsep.join(filter(None, [scratch, os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "SPEC": str(spec), "PYTHONPATH": path}
        for repeat in range(3):
            for name, command in commands(free_port()).items():
                found.setdefault(name, []).append(measure(command, env, folder, f"{repeat}{name}"))
    for name, runs in found.items():
        health, one_row, p50, rows = (statistics.median(values) for values in zip(*runs, strict=True))
        print(
            f"{name:<20} GET /healthz {health:7,.0f}/s   one-row requests {one_row:5,.0f}/s "
            f"(p50 {p50:.0f} ms)   100-row requests {rows:7,.0f} rows/s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
