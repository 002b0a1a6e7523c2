"""The spec: how to call an API and which typed columns to take from its answers.

``sections`` is the file as written (pydantic), ``compile`` turns it into the frozen ``Spec`` of
``model``; ``templates``, ``units`` and ``answer_paths`` are the small languages inside it.
"""

from service.spec.column_types import ColumnKind, ListOf, Scalar, StructOf, parse_column_type
from service.spec.compile import compile_spec, load_spec, parse_spec, spec_from_dict
from service.spec.model import (
    AnswerConditions,
    BulkSpec,
    ClientCredentials,
    OutputColumn,
    RequestSpec,
    Spec,
    digest,
    with_batch_limits,
    with_limit_overrides,
    with_transport,
)
from service.spec.sections import (
    RESERVED_PREFIX,
    BackoffSection,
    CacheSection,
    CircuitSection,
    LimitsSection,
    RetrySection,
    SpecFile,
)

__all__ = [
    "RESERVED_PREFIX",
    "AnswerConditions",
    "BackoffSection",
    "BulkSpec",
    "CacheSection",
    "CircuitSection",
    "ClientCredentials",
    "ColumnKind",
    "LimitsSection",
    "ListOf",
    "OutputColumn",
    "RequestSpec",
    "RetrySection",
    "Scalar",
    "Spec",
    "SpecFile",
    "StructOf",
    "compile_spec",
    "digest",
    "load_spec",
    "parse_column_type",
    "parse_spec",
    "spec_from_dict",
    "with_batch_limits",
    "with_limit_overrides",
    "with_transport",
]
