"""The online endpoint as an ASGI application (Starlette, already installed with Prefect's server):

    POST /v1/enrich/NAME   JSON {"rows": [...]} or an Arrow IPC stream -> the rows enriched, same format
    GET  /metrics          Prometheus text format
    GET  /healthz          the process answers
    GET  /readyz           the sessions are open and the endpoint is not draining (else 503)

Draining (``begin_draining``, on SIGTERM): new requests get 503 and ``Connection: close`` while
those in flight finish.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

import anyio
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from enrich.api import CacheChoice, Session
from enrich.online.bodies import JSON, RefusedError, body_format, encoded, error_body, rows_from
from enrich.online.endpoint import EndpointLimits, SpecEndpoint
from enrich.online.metrics import registry_for
from service import Spec

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
TIMEOUT_HEADER = "X-Enrich-Timeout"


@dataclass(frozen=True, slots=True)
class OnlineOptions:
    """What the endpoint is told besides its specs."""

    cache: CacheChoice = True
    limits: EndpointLimits = field(default_factory=EndpointLimits)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES


class OnlineService:
    """The endpoint's state: one ``SpecEndpoint`` per spec name, opened by the app's lifespan."""

    def __init__(self, specs: Mapping[str, Spec], options: OnlineOptions) -> None:
        self._specs = dict(specs)
        self._options = options
        self.endpoints: dict[str, SpecEndpoint] = {}
        self.draining = False
        self.in_flight = 0

    @asynccontextmanager
    async def opened(self, app: Starlette) -> AsyncIterator[None]:
        """Every spec's session open (and the task group their rows are enriched in) while the
        app runs; the work still running is cancelled when it stops."""
        async with AsyncExitStack() as stack:
            sessions = {
                name: await stack.enter_async_context(Session(spec, cache=self._options.cache))
                for name, spec in self._specs.items()
            }
            tasks = await stack.enter_async_context(anyio.create_task_group())
            self.endpoints = {
                name: SpecEndpoint(name, session, tasks, self._options.limits)
                for name, session in sessions.items()
            }
            try:
                yield
            finally:
                tasks.cancel_scope.cancel()
                self.endpoints = {}

    def begin_draining(self) -> None:
        """Refuse new requests (503) from now on; those in flight go on."""
        self.draining = True

    async def enrich(self, request: Request) -> Response:
        """``POST /v1/enrich/NAME``."""
        name = request.path_params["name"]
        endpoint = self.endpoints.get(name)
        if self.draining:
            return _refused(RefusedError(503, "shutting down: ask another instance"), close=True)
        if endpoint is None:
            known = ", ".join(sorted(self.endpoints)) or "none"
            return _refused(RefusedError(404, f"no spec named {name!r} (served: {known})"))
        self.in_flight += 1
        endpoint.counts.in_flight += 1
        try:
            response = await self._enriched(request, endpoint)
        except RefusedError as refusal:
            response = _refused(refusal)
        finally:
            self.in_flight -= 1
            endpoint.counts.in_flight -= 1
        endpoint.counts.count_request(response.status_code)
        return response

    async def _enriched(self, request: Request, endpoint: SpecEndpoint) -> Response:
        media = body_format(request.headers.get("content-type"))
        timeout_s = endpoint.timeout_of(
            request.headers.get(TIMEOUT_HEADER) or request.query_params.get("timeout")
        )
        body = await _body(request, self._options.max_body_bytes)
        frame = rows_from(body, media, endpoint.session.spec.key)
        if not frame.height:
            return Response(encoded(frame, media), media_type=media)
        enriched = await endpoint.enrich(frame, timeout_s)
        endpoint.counts.count_rows(enriched)
        return Response(encoded(enriched, media), media_type=media)


def online_app(service: OnlineService) -> Starlette:
    """The ASGI application serving ``service``."""
    registry = registry_for(lambda: service.endpoints)

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def healthz(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type=JSON)

    async def readyz(request: Request) -> Response:
        """503 before the sessions open and while draining: a balancer sends requests elsewhere."""
        if service.draining or not service.endpoints:
            return Response(b'{"status":"not ready"}', status_code=503, media_type=JSON)
        return Response(b'{"status":"ready"}', media_type=JSON)

    async def no_route(request: Request, exc: Exception) -> Response:
        """Starlette's 404 and 405 as the JSON errors every other refusal is."""
        status = getattr(exc, "status_code", 404)
        known = "POST /v1/enrich/NAME, GET /metrics, /healthz, /readyz"
        message = f"{request.method} {request.url.path}: no such route (served: {known})"
        return _refused(RefusedError(status, message))

    routes = [
        Route("/v1/enrich/{name}", service.enrich, methods=["POST"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
    return Starlette(
        routes=routes, lifespan=service.opened, exception_handlers={404: no_route, 405: no_route}
    )


async def _body(request: Request, most: int) -> bytes:
    """The request's body; 413 as soon as it is known to exceed ``most`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > most:
        raise RefusedError(413, f"the body is {declared} bytes, over the limit of {most}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > most:
            raise RefusedError(413, f"the body is over the limit of {most} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _refused(refusal: RefusedError, *, close: bool = False) -> Response:
    headers = {"Connection": "close"} if close else {}
    if refusal.status == 503:
        headers["Retry-After"] = "1"
    return Response(error_body(refusal.message), refusal.status, headers, media_type=JSON)
