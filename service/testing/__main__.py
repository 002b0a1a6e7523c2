"""``python -m service.testing [--port 0] [--latency-ms 2] [--rate-503 0.1] ...``: the mock API."""

import sys

from service.testing.mock_process import main

sys.exit(main())
