"""Enrich's engine: add an HTTP/JSON API's answers to a table's rows, as fast as the API allows.

A plain async library, no Prefect. Everything ``flows/``, the command line and library users
need is here; the subpackages behind it are implementation detail, but for ``service.testing``
(the mock API, its process helpers, a mock clock), which is public too.

    spec/      the spec file: sections, compile step, templates, units, answer paths
    calling/   the caller and its pieces: requests, senders, limits, retries, breaker, clock
    storage/   where tables live: local paths and object storage (s3://, gs://, az://)
    tables/    formats, reading in batches, schema checks, mapping answers to columns, writing
    caches/    the response cache: one protocol, a SQLite and a Redis store
    jobs/      file-to-file jobs: options, batches, checkpoint, progress, summary
    engine     ``enrich_frame``: one frame's keys, calls and columns
"""

from service.caches.location import CACHE_FILE, is_redis_url, open_cache, open_store
from service.caches.store import AnswerStore, CacheStatistics
from service.calling.caller import Caller
from service.calling.clock import Clock, SystemClock
from service.calling.outcome import Outcome
from service.calling.retry_rules import spec_retry
from service.calling.single import Exchange, Hop, ask_once
from service.calling.transport import SENDER_NAMES, TransportChoice
from service.engine import ATTEMPTS, ERROR, MESSAGE, STATUS, EnrichResult, enrich_frame, unanswered_frame
from service.errors import (
    CacheUnavailableError,
    CallError,
    CircuitOpenError,
    EnrichError,
    ErrorClass,
    InputError,
    SpecError,
    error_leaves,
)
from service.files import user_cache_home
from service.jobs.batches import (
    DEFAULT_BATCHES_IN_FLIGHT,
    Batches,
    BatchPlacement,
    BatchRunner,
    OnThisLoop,
    enrich_and_record,
    enrich_batch,
)
from service.jobs.checkpoint import JobState, state_dir_for
from service.jobs.failures import failed_rows_sample
from service.jobs.object_state import discard_state
from service.jobs.options import DEFAULT_BATCH_SIZE, JobOptions, SpecOverrides
from service.jobs.preflight import check_job
from service.jobs.progress import JobProgress, ProgressReport, report_progress
from service.jobs.remote_batch import BatchShare, RemoteBatchDone, enrich_batch_alone, split_limits
from service.jobs.run import run_job
from service.jobs.summary import format_duration, format_progress, format_summary
from service.redact import Redactor
from service.spec import Spec, load_spec, parse_spec, spec_from_dict, with_limit_overrides
from service.spec.templates import UnsetAsPlaceholders, expand_environment
from service.stats import EnrichStats, StatsRecorder, milliseconds
from service.storage.folders import files_in, folder_location, inside, make_folder, move_into, write_text
from service.storage.locations import (
    ObjectLocation,
    TableLocation,
    absolute_location,
    is_object_url,
    location_link,
    resolved_location,
)
from service.tables.formats import FORMATS
from service.tables.reading import read_schema
from service.tables.schema_check import check_schema

__all__ = [
    "ATTEMPTS",
    "CACHE_FILE",
    "DEFAULT_BATCHES_IN_FLIGHT",
    "DEFAULT_BATCH_SIZE",
    "ERROR",
    "FORMATS",
    "MESSAGE",
    "SENDER_NAMES",
    "STATUS",
    "AnswerStore",
    "BatchPlacement",
    "BatchRunner",
    "BatchShare",
    "Batches",
    "CacheStatistics",
    "CacheUnavailableError",
    "CallError",
    "Caller",
    "CircuitOpenError",
    "Clock",
    "EnrichError",
    "EnrichResult",
    "EnrichStats",
    "ErrorClass",
    "Exchange",
    "Hop",
    "InputError",
    "JobOptions",
    "JobProgress",
    "JobState",
    "ObjectLocation",
    "OnThisLoop",
    "Outcome",
    "ProgressReport",
    "Redactor",
    "RemoteBatchDone",
    "Spec",
    "SpecError",
    "SpecOverrides",
    "StatsRecorder",
    "SystemClock",
    "TableLocation",
    "TransportChoice",
    "UnsetAsPlaceholders",
    "absolute_location",
    "ask_once",
    "check_job",
    "check_schema",
    "discard_state",
    "enrich_and_record",
    "enrich_batch",
    "enrich_batch_alone",
    "enrich_frame",
    "error_leaves",
    "expand_environment",
    "failed_rows_sample",
    "files_in",
    "folder_location",
    "format_duration",
    "format_progress",
    "format_summary",
    "inside",
    "is_object_url",
    "is_redis_url",
    "load_spec",
    "location_link",
    "make_folder",
    "milliseconds",
    "move_into",
    "open_cache",
    "open_store",
    "parse_spec",
    "read_schema",
    "report_progress",
    "resolved_location",
    "run_job",
    "spec_from_dict",
    "spec_retry",
    "split_limits",
    "state_dir_for",
    "unanswered_frame",
    "user_cache_home",
    "with_limit_overrides",
    "write_text",
]
