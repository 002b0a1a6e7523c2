"""Enrich: add an HTTP/JSON API's answers to a table's rows, as fast as the API allows and never
faster.

    import enrich

    spec = enrich.load_spec("spec.toml", environ=os.environ)
    result = await enrich.enrich_frame(frame, spec)               # one frame, in memory
    stats = await enrich.run_job("in.parquet", spec, Path("out.parquet"))  # file to file, resumable

The command line is ``enrich`` (``enrich.cli``); the engine is ``service``, usable without
Prefect; the Prefect flows, deployments and ``serve`` are ``flows``.
"""

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
    OnThisLoop,
    Outcome,
    Spec,
    SpecError,
    SystemClock,
    enrich_frame,
    load_spec,
    parse_spec,
    run_job,
)

__version__ = "0.1.0"

__all__ = [
    "CallError",
    "Caller",
    "CircuitOpenError",
    "Clock",
    "EnrichError",
    "EnrichResult",
    "EnrichStats",
    "ErrorClass",
    "InputError",
    "JobOptions",
    "OnThisLoop",
    "Outcome",
    "Spec",
    "SpecError",
    "SystemClock",
    "__version__",
    "enrich_frame",
    "load_spec",
    "parse_spec",
    "run_job",
]
