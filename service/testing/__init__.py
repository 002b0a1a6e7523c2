"""What tests, demos and benchmarks need: the mock API (a real server on loopback, with fault
injection and its own counters), its process helpers, the demo's files, and a mock clock."""

from service.testing.clock import MockClock
from service.testing.demo import demo_input, write_demo_files
from service.testing.mock_answers import FaultRates
from service.testing.mock_api import MockApi, MockConfig
from service.testing.mock_process import (
    add_mock_api_arguments,
    run_mock_api,
    start_mock_api,
    stop_mock_api,
)

__all__ = [
    "FaultRates",
    "MockApi",
    "MockClock",
    "MockConfig",
    "add_mock_api_arguments",
    "demo_input",
    "run_mock_api",
    "start_mock_api",
    "stop_mock_api",
    "write_demo_files",
]
