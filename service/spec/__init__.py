"""The spec: how to call an API and which typed columns to take from its answers.

``sections`` is the file as written (pydantic), ``compile`` turns it into the frozen ``Spec`` of
``model``; ``templates``, ``units`` and ``answer_paths`` are the small languages inside it.
"""

from service.spec.compile import compile_spec, load_spec, parse_spec
from service.spec.model import (
    BulkSpec,
    OutputColumn,
    RequestSpec,
    Spec,
    digest,
    with_batch_limits,
    with_limit_overrides,
)
from service.spec.sections import (
    RESERVED_PREFIX,
    BackoffSection,
    CacheSection,
    CircuitSection,
    ColumnType,
    LimitsSection,
    RetrySection,
    SpecFile,
)

__all__ = [
    "RESERVED_PREFIX",
    "BackoffSection",
    "BulkSpec",
    "CacheSection",
    "CircuitSection",
    "ColumnType",
    "LimitsSection",
    "OutputColumn",
    "RequestSpec",
    "RetrySection",
    "Spec",
    "SpecFile",
    "compile_spec",
    "digest",
    "load_spec",
    "parse_spec",
    "with_batch_limits",
    "with_limit_overrides",
]
