"""Enrich: add an HTTP/JSON API's answers to a table's rows, as fast as the API allows.

The public engine API; the modules behind it are implementation detail.
"""

from service.caller import Caller
from service.clock import Clock, SystemClock
from service.engine import EnrichResult, enrich_frame
from service.errors import (
    CallError,
    CircuitOpenError,
    EnrichError,
    ErrorClass,
    InputError,
    SpecError,
)
from service.outcome import Outcome
from service.spec import Spec, load_spec, parse_spec
from service.stats import EnrichStats

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
    "Outcome",
    "Spec",
    "SpecError",
    "SystemClock",
    "enrich_frame",
    "load_spec",
    "parse_spec",
]
