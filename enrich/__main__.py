"""``python -m enrich``: the ``enrich`` command."""

import sys

from enrich.cli import main

sys.exit(main())
