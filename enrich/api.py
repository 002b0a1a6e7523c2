"""The Python API: a polars frame enriched with an API's answers, from a script, a notebook or a
service.

    result = enrich.enrich(frame, "spec.toml")          # scripts and notebooks: blocks until done
    result = await enrich.enrich_async(frame, spec)      # services: on the running event loop
    async with enrich.Session(spec) as session:           # many calls, one pool, limits and cache
        result = await session.enrich(frame)
    frame.enrich("spec.toml")                              # the polars namespace: the enriched frame

A frame is a ``DataFrame`` or a ``LazyFrame`` (collected first: for tables larger than memory, use
``run_job`` or ``enrich run``, which stream). A spec is a ``Spec``, a TOML file's path, TOML text,
or a dict shaped as the file; its ``${NAME}`` come from ``environ`` (default: this process's
environment). Answers are cached across calls and runs, in the command line's cache by default
(``$ENRICH_CACHE_DIR`` or ``~/.cache/enrich``): ``cache=False`` turns that off, a folder or a
``redis://`` URL puts it elsewhere. Every result's statistics are its call's own.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypedDict, TypeVar, Unpack

import anyio.to_thread
import httpx
import polars as pl
import tenacity
from tenacity.wait import wait_base

import service
from enrich.cache_location import cache_location_of
from service import (
    AnswerStore,
    Caller,
    EnrichResult,
    EnrichStats,
    Spec,
    TransportChoice,
    enrich_frame,
    open_cache,
    spec_from_dict,
)

T = TypeVar("T")
SpecSource = Spec | str | os.PathLike[str] | Mapping[str, Any]
CacheChoice = bool | str | os.PathLike[str]
Frame = pl.DataFrame | pl.LazyFrame


def load_spec(path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None) -> Spec:
    """The spec in the TOML file at ``path``; ``${NAME}`` from ``environ`` (default: this process's)."""
    return service.load_spec(path, environ=os.environ if environ is None else environ)


def parse_spec(text: str, *, environ: Mapping[str, str] | None = None) -> Spec:
    """The spec in TOML ``text``; ``${NAME}`` from ``environ`` (default: this process's)."""
    return service.parse_spec(text, environ=os.environ if environ is None else environ)


def spec_of(source: SpecSource, environ: Mapping[str, str] | None = None) -> Spec:
    """A ``Spec`` from a ``Spec``, a path to a TOML file, TOML text (a string holding a line break
    or starting with ``[``), or a dict shaped as the file; ``SpecError`` naming what is wrong."""
    if isinstance(source, Spec):
        return source
    environ = os.environ if environ is None else environ
    if isinstance(source, Mapping):
        return spec_from_dict(source, environ=environ)
    if isinstance(source, str) and ("\n" in source or source.lstrip().startswith("[")):
        return service.parse_spec(source, environ=environ)
    if isinstance(source, str | os.PathLike):
        return service.load_spec(source, environ=environ)
    raise TypeError(f"a spec is a Spec, a path, TOML text or a dict, not {type(source).__name__}")


def spec_retry(spec: SpecSource, environ: Mapping[str, str] | None = None) -> tenacity.retry_base:
    """The retry condition ``spec``'s ``[retry]`` section compiles to (its retryable statuses,
    timeouts and connection errors, and ``retry_when``), as a tenacity object to build on:
    ``retry=spec_retry(spec) | retry_if_result(...)`` keeps the spec's rules and adds one."""
    return service.spec_retry(spec_of(spec, environ))


def cache_place(cache: CacheChoice, environ: Mapping[str, str] | None = None) -> Path | str | None:
    """Where ``cache=`` puts the response cache: the default place for True, none for False."""
    if cache is False:
        return None
    environ = os.environ if environ is None else environ
    return cache_location_of(None if cache is True else cache, environ)


class SessionOptions(TypedDict, total=False):
    """What every entry point takes besides the frame and the spec."""

    cache: CacheChoice  # True (default): the command line's cache; False: none; or a folder / redis:// URL
    environ: Mapping[str, str] | None  # where the spec's ${NAME} come from (default: os.environ)
    transport: TransportChoice  # "aiohttp" (default), "httpx", or any httpx transport
    auth: httpx.Auth | None  # an httpx.Auth (with the httpx sender)
    # tenacity's vocabulary in place of the spec's retry condition and backoff, e.g.
    # retry=spec_retry(spec) | retry_if_result(lambda answer: answer.get("status") == "pending")
    retry: tenacity.retry_base | None
    wait: wait_base | None  # e.g. wait_exponential_jitter(initial=0.5, max=30)


class Session:
    """Many calls sharing one connection pool, one set of limits, the response cache, and keys in
    flight (a key two calls ask for at once is requested once); an async context manager."""

    def __init__(self, spec: SpecSource, **options: Unpack[SessionOptions]) -> None:
        environ = options.get("environ")
        self.spec = spec_of(spec, environ)
        self._cache_place = cache_place(options.get("cache", True), environ)
        self._transport = options.get("transport")
        self._auth = options.get("auth")
        self._retry = options.get("retry")
        self._wait = options.get("wait")
        self._store: AnswerStore | None = None
        self._caller: Caller | None = None

    async def __aenter__(self) -> Session:
        place = None if self._cache_place is None else str(self._cache_place)
        self._store = await anyio.to_thread.run_sync(open_cache, place, self.spec)
        self._caller = Caller(
            self.spec,
            transport=self._transport,
            auth=self._auth,
            cache=self._store,
            retry=self._retry,
            wait=self._wait,
        )
        try:
            await self._caller.__aenter__()
        except BaseException:
            await self._close_store()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            if self._caller is not None:
                await self._caller.__aexit__(*exc_info)
        finally:
            self._caller = None
            await self._close_store()

    async def _close_store(self) -> None:
        if self._store is not None:
            await anyio.to_thread.run_sync(self._store.close)
            self._store = None

    async def enrich(self, frame: Frame) -> EnrichResult:
        """``frame`` with the spec's columns and ``_enrich_*``, every row once, in order; the
        statistics are this call's own. ``InputError`` before any request if the frame does not
        fit the spec; ``CircuitOpenError`` (with the partial result) if the API kept failing."""
        caller = self._open_caller()
        collected = await _collected(frame)
        return await enrich_frame(collected, self.spec, caller=caller)

    def statistics(self) -> EnrichStats:
        """Everything the session's calls did so far."""
        return self._open_caller().statistics()

    def latency_histogram(self, bounds: list[float]) -> tuple[list[int], int, float]:
        """The API's latencies so far: per bound (seconds, ascending) the attempts that took at
        most that long, then every attempt's count and their latencies' sum."""
        return self._open_caller().counts.counters().latency_histogram(bounds)

    def redact(self, text: str) -> str:
        """``text`` with every secret the session knows (the spec's, tokens it obtained) replaced."""
        return self._open_caller().redact(text)

    @property
    def circuit_open(self) -> str | None:
        """Why the session stopped calling the API (it kept failing), or None while it calls it."""
        return self._open_caller().breaker.reason

    def close_circuit(self) -> None:
        """Call the API again after it kept failing and the session stopped calling it."""
        self._open_caller().breaker.close()

    def _open_caller(self) -> Caller:
        if self._caller is None:
            raise RuntimeError("use the session inside 'async with'")
        return self._caller


async def enrich_async(frame: Frame, spec: SpecSource, **options: Unpack[SessionOptions]) -> EnrichResult:
    """``frame`` enriched with ``spec`` (see ``Session.enrich``), on the running event loop."""
    async with Session(spec, **options) as session:
        return await session.enrich(frame)


def enrich(frame: Frame, spec: SpecSource, **options: Unpack[SessionOptions]) -> EnrichResult:
    """``frame`` enriched with ``spec`` (see ``Session.enrich``), blocking until done; works in a
    notebook too, whose event loop already runs in this thread."""
    return run_blocking(enrich_async(frame, spec, **options))


def run_blocking(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to its end: here, or, when an event loop already runs in this thread (Jupyter),
    on a loop of its own in another thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main)
    with ThreadPoolExecutor(1, thread_name_prefix="enrich") as pool:
        return pool.submit(asyncio.run, main).result()


async def _collected(frame: Frame) -> pl.DataFrame:
    if isinstance(frame, pl.LazyFrame):
        collected: pl.DataFrame = await anyio.to_thread.run_sync(frame.collect)
        return collected
    if isinstance(frame, pl.DataFrame):
        return frame
    raise TypeError(f"a frame to enrich is a polars DataFrame or LazyFrame, not {type(frame).__name__}")
