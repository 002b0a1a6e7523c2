"""The ``enrich`` command line: the outer edge, where configuration is built from argv and the
environment, over the engine (``service``) and the flows (``flows``).

One module per command (``validate``, ``run``, ``demo``, ``cache``, ``serve``), the parser that
declares them, the job options derived from their one declaration, the terminal's progress
display, the exit statuses, and the process tuning that job processes and benchmarks share.
"""

from enrich.cli.main import main

__all__ = ["main"]
