"""The endpoint on uvicorn, with a drain: on SIGTERM (or Ctrl-C) new requests get 503 while those in
flight finish, for at most ``drain_s``; then uvicorn stops. A second signal stops it at once."""

from __future__ import annotations

import socket
import time
from types import FrameType

import uvicorn

from enrich.online.app import OnlineService, online_app


class DrainingServer(uvicorn.Server):
    """uvicorn's server, draining ``service`` before its own shutdown (which closes the listener,
    so a caller would see refused connections rather than a 503 it can act on)."""

    def __init__(self, config: uvicorn.Config, service: OnlineService, drain_s: float) -> None:
        super().__init__(config)
        self._service = service
        self._drain_s = drain_s
        self._drain_until: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """The first signal drains; a second one is uvicorn's (exit now)."""
        if self._drain_until is None:
            self._drain_until = time.monotonic() + self._drain_s
            self._service.begin_draining()
            return
        super().handle_exit(sig, frame)
        self.force_exit = True

    async def on_tick(self, counter: int) -> bool:
        """Once drained (or out of time), tell uvicorn to stop."""
        draining = self._drain_until is not None and not self.should_exit
        if draining and (self._service.in_flight == 0 or time.monotonic() >= (self._drain_until or 0)):
            self.should_exit = True
        return await super().on_tick(counter)


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` and listening (``OSError`` naming the address if it cannot)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


def serve_online(service: OnlineService, sock: socket.socket, *, drain_s: float, access_log: bool) -> None:
    """Serve ``service`` on ``sock`` until a signal, then drain and stop."""
    config = uvicorn.Config(
        online_app(service),
        log_level="info",
        access_log=access_log,
        timeout_graceful_shutdown=max(1, int(drain_s)),
        lifespan="on",
        loop="uvloop",
        http="httptools",
    )
    DrainingServer(config, service, drain_s).run(sockets=[sock])
