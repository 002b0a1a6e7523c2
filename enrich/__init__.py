"""Enrich: add an HTTP/JSON API's answers to a table's rows, as fast as the API allows and never
faster.

    import enrich

    result = enrich.enrich(frame, "spec.toml")              # a polars DataFrame or LazyFrame
    result.frame, result.stats                                # the enriched frame, this call's figures
    result = await enrich.enrich_async(frame, spec)          # the same, in async code
    async with enrich.Session(spec) as session:               # one pool, limits and cache for many calls
        result = await session.enrich(frame)
    frame.enrich("spec.toml")                                  # the polars namespace
    enrich.enrich(frame, spec, retry=enrich.spec_retry(spec) | retry_if_result(pending))  # tenacity
    stats = await enrich.run_job("in.parquet", spec, Path("out.parquet"))  # file to file, resumable

A spec is a path, TOML text, a dict shaped as the file, or a ``Spec``. The command line is
``enrich`` (``enrich.cli``); the engine is ``service``, usable without Prefect; the Prefect flows,
deployments and ``serve`` are ``flows``.
"""

import importlib
import typing

from enrich.namespace import EnrichNamespace

if typing.TYPE_CHECKING:
    from enrich.api import (
        Session,
        SessionOptions,
        enrich,
        enrich_async,
        load_spec,
        parse_spec,
        spec_of,
        spec_retry,
    )
    from service import (
        Caller,
        CallError,
        CircuitOpenError,
        Clock,
        EnrichError,
        EnrichResult,
        EnrichStats,
        ErrorClass,
        InputError,
        JobOptions,
        JobProgress,
        OnThisLoop,
        Outcome,
        Spec,
        SpecError,
        SystemClock,
        enrich_frame,
        run_job,
    )

__version__ = "0.1.0"

__all__ = [
    "CallError",
    "Caller",
    "CircuitOpenError",
    "Clock",
    "EnrichError",
    "EnrichNamespace",
    "EnrichResult",
    "EnrichStats",
    "ErrorClass",
    "InputError",
    "JobOptions",
    "JobProgress",
    "OnThisLoop",
    "Outcome",
    "Session",
    "SessionOptions",
    "Spec",
    "SpecError",
    "SystemClock",
    "__version__",
    "enrich",
    "enrich_async",
    "enrich_frame",
    "load_spec",
    "parse_spec",
    "run_job",
    "spec_of",
    "spec_retry",
]

# Loaded on first use: the engine and its libraries take about a second to import, which a
# command's start should not pay before it can answer a Ctrl-C (or a typo) in one line.
_FROM_API = (
    "Session",
    "SessionOptions",
    "enrich",
    "enrich_async",
    "load_spec",
    "parse_spec",
    "spec_of",
    "spec_retry",
)
# The rest of __all__ but what is bound here comes from the engine.
_HOME_OF = {
    name: "enrich.api" if name in _FROM_API else "service"
    for name in __all__
    if name not in {"EnrichNamespace", "__version__"}
}


def __getattr__(name: str) -> typing.Any:
    home = _HOME_OF.get(name)
    if home is None:
        raise AttributeError(f"module 'enrich' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
